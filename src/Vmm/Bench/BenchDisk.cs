using System.Runtime.InteropServices;
using Sharpvisor.Native;

namespace Sharpvisor.Vmm.Bench;

/// <summary>
/// The disk image of <c>bench virtio</c>: a file without a name (so nothing
/// is left behind, however the run ends), written with a pattern the guest
/// checks, read once so that it sits in the page cache, and held open for
/// the host's own reads (the floors). The devices open it by its
/// /proc/self/fd path, read-only, so each VM and the floors share its pages.
/// </summary>
/// <remarks>
/// The pattern, which guests/vblkbench.c checks: the u32 at byte offset 4w
/// is <c>w * 0x9e3779b1 + 0x7f4a7c15</c>, little-endian.
/// </remarks>
internal sealed class BenchDisk : IDisposable
{
    public const int BlockBytes = 4096;
    private const int WordsPerBlock = BlockBytes / 4;
    private const int ChunkBytes = 1 << 20;

    private readonly ScratchFile _file;
    private readonly DiskFile _reader;

    private BenchDisk(ScratchFile file, DiskFile reader, long bytes)
    {
        _file = file;
        _reader = reader;
        Bytes = bytes;
    }

    /// <summary>Where a device opens the image (read-only).</summary>
    public string Path => _file.Path;

    public long Bytes { get; }

    public uint Blocks => (uint)(Bytes / BlockBytes);

    public static uint Pattern(uint word) => word * 0x9e3779b1u + 0x7f4a7c15u;

    /// <summary>A new image of <paramref name="bytes"/> (a multiple of 1 MiB) in <paramref name="directory"/>, in the page cache.</summary>
    /// <exception cref="IOException">The directory has no room for it, or refuses a file (the message says which).</exception>
    public static BenchDisk Create(string directory, long bytes)
    {
        if (bytes <= 0 || bytes % ChunkBytes != 0) throw new ArgumentOutOfRangeException(nameof(bytes), "a disk image is a whole number of MiB");
        ScratchFile file = ScratchFile.Create(directory);
        DiskFile? reader = null;
        using var chunk = new AlignedBuffer(ChunkBytes, BlockBytes);
        try
        {
            if (!DiskFile.TryOpen(file.Path, readOnly: false, out DiskFile? writer, out _, out Errno errno))
                throw new ErrnoException($"opening the disk image in {directory}", errno);
            using (writer)
            {
                for (long at = 0; at < bytes; at += ChunkBytes)
                {
                    Span<uint> words = MemoryMarshal.Cast<byte, uint>(chunk.Span);
                    uint first = (uint)(at / 4);
                    for (int i = 0; i < words.Length; i++) words[i] = Pattern(first + (uint)i);
                    if (!writer!.TryWriteAt(chunk.Span, at, out errno))
                        throw new ErrnoException($"writing the disk image in {directory}", errno);
                }
            }
            if (!DiskFile.TryOpen(file.Path, readOnly: true, out reader, out _, out errno))
                throw new ErrnoException($"opening the disk image in {directory}", errno);
            // Read once, whole: from here on every read is served from the page cache.
            for (long at = 0; at < bytes; at += ChunkBytes)
                if (!reader!.TryReadAt(chunk.Span, at, out errno))
                    throw new ErrnoException($"reading the disk image in {directory}", errno);
            return new BenchDisk(file, reader!, bytes);
        }
        catch
        {
            reader?.Dispose();
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// One positioned read of block <paramref name="block"/> into
    /// <paramref name="into"/> (4 KiB or more), as the device makes
    /// one per request; then a look at its first word, so that a floor cannot
    /// pass with reads that read nothing. The caller's buffer is best page-aligned, as guest RAM is.
    /// </summary>
    public void ReadBlock(uint block, Span<byte> into)
    {
        if (!_reader.TryReadAt(into[..BlockBytes], (long)block * BlockBytes, out Errno errno))
            throw new ErrnoException($"reading block {block} of the disk image", errno);
        if (MemoryMarshal.Read<uint>(into) != Pattern(block * WordsPerBlock))
            throw new InvalidOperationException($"block {block} of the disk image does not hold its pattern");
    }

    public void Dispose()
    {
        _reader.Dispose();
        _file.Dispose();
    }
}

/// <summary>The guest's generator (sv.h's sv_rand, xorshift32), so that a floor reads the very blocks its VM row reads.</summary>
internal struct GuestRandom(uint seed)
{
    private uint _state = seed | 1; // as vblkbench.c: xorshift never leaves 0

    public uint Next()
    {
        uint x = _state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        return _state = x;
    }

    public uint NextBlock(uint blocks) => Next() % blocks;
}
