using System.Runtime.InteropServices;

namespace Sharpvisor.Native;

/// <summary>
/// Memory for machine code we generate: one file in memory (memfd) mapped
/// twice, once writable and once executable, so that no page is ever both
/// (W^X) and code can be added while other threads run what is already there,
/// with no mprotect flips under their feet. Append-only: code is written once
/// at the next free offset and stays until the whole region is disposed.
/// </summary>
/// <remarks>
/// The writable view is at <see cref="Writable"/>, the same bytes are
/// executable at <see cref="Executable"/>: write at <c>Writable + offset</c>,
/// run at <c>Executable + offset</c>. x86 keeps instruction fetch coherent
/// with stores through another mapping of the same page, so no cache flush is
/// needed; the pointer to new code is published after the code is written.
/// </remarks>
public sealed unsafe class CodeMemory : IDisposable
{
    private nint _rw, _rx;
    private readonly nuint _size;
    private nuint _used;

    private CodeMemory(nint rw, nint rx, nuint size)
    {
        _rw = rw;
        _rx = rx;
        _size = size;
    }

    /// <summary>Maps <paramref name="size"/> bytes (rounded up to pages) of code memory, or explains why it could not.</summary>
    public static CodeMemory? TryCreate(nuint size, out string? why)
    {
        size = (size + 4095) & ~(nuint)4095;
        int fd = Interop.MemfdCreate("sharpvisor-code", Interop.MFD_CLOEXEC);
        if (fd < 0)
        {
            why = $"memfd_create: {((Errno)Marshal.GetLastPInvokeError()).Name()}";
            return null;
        }
        try
        {
            if (Interop.Ftruncate(fd, (long)size) != 0)
            {
                why = $"ftruncate: {((Errno)Marshal.GetLastPInvokeError()).Name()}";
                return null;
            }
            nint rw = Interop.Mmap(0, size, Interop.PROT_READ | Interop.PROT_WRITE, Interop.MAP_SHARED, fd, 0);
            if (rw == Interop.MAP_FAILED)
            {
                why = $"mmap (writable view): {((Errno)Marshal.GetLastPInvokeError()).Name()}";
                return null;
            }
            nint rx = Interop.Mmap(0, size, Interop.PROT_READ | Interop.PROT_EXEC, Interop.MAP_SHARED, fd, 0);
            if (rx == Interop.MAP_FAILED)
            {
                // e.g. a kernel with vm.memfd_noexec set, or a policy against executable shared mappings.
                why = $"mmap (executable view): {((Errno)Marshal.GetLastPInvokeError()).Name()}";
                Interop.Munmap(rw, size);
                return null;
            }
            why = null;
            return new CodeMemory(rw, rx, size);
        }
        finally
        {
            // The two mappings keep the file alive.
            Interop.Close(fd);
        }
    }

    public nuint Size => _size;

    /// <summary>Bytes handed out so far.</summary>
    public nuint Used => _used;

    public byte* Writable => (byte*)_rw;

    public byte* Executable => (byte*)_rx;

    /// <summary>
    /// Reserves <paramref name="length"/> bytes aligned to 16 and returns their
    /// offset, or -1 when the region is full. Callers serialise (one lock per region).
    /// </summary>
    public long TryReserve(int length)
    {
        nuint start = (_used + 15) & ~(nuint)15;
        if (_rw == 0 || start + (nuint)length > _size)
            return -1;
        _used = start + (nuint)length;
        return (long)start;
    }

    /// <summary>Unmaps both views; nothing may run the code any more.</summary>
    public void Dispose()
    {
        if (_rw != 0)
        {
            Interop.Munmap(_rw, _size);
            Interop.Munmap(_rx, _size);
            _rw = _rx = 0;
        }
    }
}
