using Sharpvisor.Native;

namespace Sharpvisor.Devices.Virtio.Queues;

/// <summary>
/// A descriptor chain that <see cref="ChainWalker"/> has validated whole: its
/// buffers, device-readable ones first, every one inside guest RAM, their
/// lengths summing to at most 2^32 - 1. A device serves a request from this
/// and never from the descriptor table, which the guest may be rewriting.
/// </summary>
/// <remarks>
/// One per queue thread, reused for every request (no allocation per
/// request). The accessors take offsets into the readable or the writable
/// bytes seen as one run, and check them against those lengths; the guest
/// addresses they reach were checked against RAM by the walk, and RAM does
/// not shrink while the device lives.
/// </remarks>
public sealed unsafe class DescriptorChain
{
    private readonly BufferSegment[] _segments;
    private readonly IoVector[] _vectors;

    internal DescriptorChain(GuestMemory ram, int capacity)
    {
        Ram = ram;
        _segments = new BufferSegment[capacity];
        _vectors = new IoVector[capacity];
    }

    public GuestMemory Ram { get; }

    /// <summary>The head descriptor's index: the used entry's id.</summary>
    public ushort Head { get; private set; }

    public int Count { get; private set; }

    public int ReadableCount { get; private set; }

    public uint ReadableLength { get; private set; }

    public uint WritableLength { get; private set; }

    public ReadOnlySpan<BufferSegment> Segments => _segments.AsSpan(0, Count);

    public ReadOnlySpan<BufferSegment> Readable => _segments.AsSpan(0, ReadableCount);

    public ReadOnlySpan<BufferSegment> Writable => _segments.AsSpan(ReadableCount, Count - ReadableCount);

    internal int Capacity => _segments.Length;

    internal void Begin(ushort head)
    {
        Head = head;
        Count = 0;
        ReadableCount = 0;
        ReadableLength = 0;
        WritableLength = 0;
    }

    /// <summary>Adds a segment the walk has checked (inside RAM, order, total length, count).</summary>
    internal void Add(BufferSegment segment)
    {
        _segments[Count++] = segment;
        if (segment.Writable) WritableLength += segment.Length;
        else
        {
            ReadableCount++;
            ReadableLength += segment.Length;
        }
    }

    /// <summary>Copies readable bytes [offset, offset + destination.Length) out of guest RAM: one read of each byte.</summary>
    public void CopyFromReadable(uint offset, Span<byte> destination)
    {
        if ((ulong)offset + (ulong)destination.Length > ReadableLength)
            throw new ArgumentOutOfRangeException(nameof(offset), "past the chain's readable bytes");
        int done = 0;
        foreach (ref readonly BufferSegment s in Readable)
        {
            if (done == destination.Length) break;
            if (offset >= s.Length) { offset -= s.Length; continue; }
            int n = (int)Math.Min(s.Length - offset, (uint)(destination.Length - done));
            // SAFETY: [s.Address, s.Address + s.Length) was checked against RAM
            // by the walk and offset + n <= s.Length, so the source is inside RAM.
            new ReadOnlySpan<byte>(Ram.Base + s.Address + offset, n).CopyTo(destination[done..]);
            done += n;
            offset = 0;
        }
    }

    /// <summary>Copies <paramref name="source"/> into the writable bytes from <paramref name="offset"/> on.</summary>
    public void WriteToWritable(uint offset, ReadOnlySpan<byte> source)
    {
        if ((ulong)offset + (ulong)source.Length > WritableLength)
            throw new ArgumentOutOfRangeException(nameof(offset), "past the chain's writable bytes");
        int done = 0;
        foreach (ref readonly BufferSegment s in Writable)
        {
            if (done == source.Length) break;
            if (offset >= s.Length) { offset -= s.Length; continue; }
            int n = (int)Math.Min(s.Length - offset, (uint)(source.Length - done));
            // SAFETY: as in CopyFromReadable, for a writable segment.
            source.Slice(done, n).CopyTo(new Span<byte>(Ram.Base + s.Address + offset, n));
            done += n;
            offset = 0;
        }
    }

    /// <summary>Sets writable bytes [offset, offset + length) to zero.</summary>
    public void ZeroWritable(uint offset, uint length)
    {
        if ((ulong)offset + length > WritableLength)
            throw new ArgumentOutOfRangeException(nameof(offset), "past the chain's writable bytes");
        foreach (ref readonly BufferSegment s in Writable)
        {
            if (length == 0) break;
            if (offset >= s.Length) { offset -= s.Length; continue; }
            uint n = Math.Min(s.Length - offset, length);
            // SAFETY: as in WriteToWritable.
            GuestMemory.FillUnchecked(Ram.Base, (nuint)(s.Address + offset), n, 0);
            length -= n;
            offset = 0;
        }
    }

    /// <summary>
    /// The readable (or writable) bytes [offset, offset + length) as host
    /// I/O vectors pointing straight into guest RAM, for preadv/pwritev and
    /// getrandom. The span is scratch owned by this chain, valid until the
    /// next call.
    /// </summary>
    public Span<IoVector> Vectors(bool writable, uint offset, uint length)
    {
        ReadOnlySpan<BufferSegment> part = writable ? Writable : Readable;
        if ((ulong)offset + length > (writable ? WritableLength : ReadableLength))
            throw new ArgumentOutOfRangeException(nameof(offset), "past the chain's bytes");
        int count = 0;
        foreach (ref readonly BufferSegment s in part)
        {
            if (length == 0) break;
            if (offset >= s.Length) { offset -= s.Length; continue; }
            uint n = Math.Min(s.Length - offset, length);
            // SAFETY: the walk checked the segment against RAM; offset + n <= s.Length.
            _vectors[count++] = new IoVector(Ram.Base + s.Address + offset, n);
            length -= n;
            offset = 0;
        }
        return _vectors.AsSpan(0, count);
    }
}
