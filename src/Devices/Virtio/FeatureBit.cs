namespace Sharpvisor.Devices.Virtio;

/// <summary>One feature a device offers: its bit number (spec 2.2) and its name in the spec.</summary>
public readonly record struct FeatureBit(int Bit, string Name)
{
    public ulong Mask => 1UL << Bit;

    /// <summary>The mask of every bit in <paramref name="features"/>.</summary>
    public static ulong MaskOf(IEnumerable<FeatureBit> features)
    {
        ulong mask = 0;
        foreach (FeatureBit f in features) mask |= f.Mask;
        return mask;
    }
}
