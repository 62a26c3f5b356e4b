namespace Sharpvisor.Devices.Virtio;

/// <summary>The transport and ring features every device here offers (spec 6).</summary>
public static class CommonFeatures
{
    public static readonly FeatureBit IndirectDesc = new(28, "VIRTIO_F_INDIRECT_DESC");
    public static readonly FeatureBit EventIdx = new(29, "VIRTIO_F_EVENT_IDX");
    public static readonly FeatureBit Version1 = new(32, "VIRTIO_F_VERSION_1");

    /// <summary>The table: what <see cref="VirtioDevice.OfferedFeatures"/> adds to a device's own.</summary>
    public static readonly IReadOnlyList<FeatureBit> All = [IndirectDesc, EventIdx, Version1];
}
