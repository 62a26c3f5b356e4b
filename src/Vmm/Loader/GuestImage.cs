namespace Sharpvisor.Vmm.Loader;

/// <summary>
/// One piece of the image: <see cref="FileSize"/> bytes from the file at
/// <see cref="FileOffset"/> go to guest-physical <see cref="Address"/>, and
/// the rest of <see cref="MemorySize"/> is zeroed (bss).
/// </summary>
public readonly record struct ImageSegment(uint Address, uint FileOffset, uint FileSize, uint MemorySize)
{
    /// <summary>One past the last byte, in 64 bits so that it cannot wrap.</summary>
    public ulong End => (ulong)Address + MemorySize;
}

/// <summary>
/// A checked image: every segment lies inside the file and inside guest RAM,
/// and no two overlap, so <see cref="ImageLoader.Load"/> cannot fail.
/// </summary>
public sealed class GuestImage(uint entry, IReadOnlyList<ImageSegment> segments, byte[] file)
{
    public uint Entry { get; } = entry;
    public IReadOnlyList<ImageSegment> Segments { get; } = segments;
    internal byte[] File { get; } = file;
}
