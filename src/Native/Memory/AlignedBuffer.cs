using System.Runtime.InteropServices;

namespace Sharpvisor.Native;

/// <summary>
/// A block of native memory aligned as asked (a page, for I/O buffers that
/// should sit as guest RAM's do), freed on dispose; managed code sees it as
/// a span.
/// </summary>
/// <example>
/// <code>
/// using var buffer = new AlignedBuffer(4096, 4096);
/// disk.TryReadAt(buffer.Span, 0, out _);
/// </code>
/// </example>
public sealed unsafe class AlignedBuffer : IDisposable
{
    private byte* _data;

    /// <param name="length">Bytes, at least 1.</param>
    /// <param name="alignment">A power of two.</param>
    public AlignedBuffer(int length, int alignment)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(length, 1);
        _data = (byte*)NativeMemory.AlignedAlloc((nuint)length, (nuint)alignment);
        Length = length;
    }

    public int Length { get; }

    public Span<byte> Span
    {
        get
        {
            if (_data == null) ThrowHelper.ThrowObjectDisposed(this);
            // SAFETY: _data holds Length bytes until Dispose, after which it is null.
            return new Span<byte>(_data, Length);
        }
    }

    public void Dispose()
    {
        if (_data == null) return;
        NativeMemory.AlignedFree(_data);
        _data = null;
    }
}
