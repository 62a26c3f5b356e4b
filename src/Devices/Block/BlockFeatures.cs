using Sharpvisor.Devices.Virtio;

namespace Sharpvisor.Devices.Block;

/// <summary>The block device's feature bits this device offers (spec 5.2.3).</summary>
public static class BlockFeatures
{
    public static readonly FeatureBit SegMax = new(2, "VIRTIO_BLK_F_SEG_MAX");
    public static readonly FeatureBit ReadOnly = new(5, "VIRTIO_BLK_F_RO");
    public static readonly FeatureBit BlkSize = new(6, "VIRTIO_BLK_F_BLK_SIZE");
    public static readonly FeatureBit Flush = new(9, "VIRTIO_BLK_F_FLUSH");

    /// <summary>A writable disk's features.</summary>
    public static readonly IReadOnlyList<FeatureBit> Writable = [SegMax, BlkSize, Flush];

    /// <summary>A read-only disk's: the same and RO.</summary>
    public static readonly IReadOnlyList<FeatureBit> ReadOnlyDisk = [SegMax, ReadOnly, BlkSize, Flush];
}
