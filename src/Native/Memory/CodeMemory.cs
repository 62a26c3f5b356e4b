using System.Runtime.CompilerServices;
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
/// The same bytes are writable at offset o of the writable view and
/// executable at offset o of the executable view. Every write goes through
/// this class's writer (<see cref="Write(long, ReadOnlySpan{byte})"/>,
/// <see cref="Write{T}(long, T)"/>, <see cref="WriteVolatile32"/>), which
/// checks it against what is reserved; run code at <see cref="ExecutableAt"/>.
/// x86 keeps instruction fetch coherent with stores through another mapping
/// of the same page, so no cache flush is needed; the pointer to new code is
/// published after the code is written.
/// <para>
/// Why the writer is safe, once for all its callers:
/// </para>
/// <list type="bullet">
/// <item>Valid: both views map [0, <see cref="Size"/>) of the same file from
/// <see cref="TryCreate"/> until <see cref="Dispose"/>, and nothing runs or
/// writes code in the region concurrently with Dispose (the owner stops its
/// vCPUs first). After Dispose, <see cref="Used"/> is 0 and every write is
/// refused.</item>
/// <item>In bounds: a plain write must lie inside [0, <see cref="Used"/>),
/// that is inside bytes some caller reserved; <see cref="Used"/> never
/// exceeds <see cref="Size"/>.</item>
/// <item>Not racing: a reservation is its reserver's alone until it hands out
/// an executable address inside it, and nothing else writes it (reservations
/// do not overlap, and the append-only region never hands a byte out twice).
/// Plain writes are for that window. A word that other threads already run
/// or read is written only with <see cref="WriteVolatile32"/>, aligned, so a
/// reader sees the old value or the new one, never half of each.</item>
/// </list>
/// </remarks>
public sealed class CodeMemory : IDisposable
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
    public nuint Used => Volatile.Read(ref _used);

    /// <summary>
    /// The writable view, raw: for this project's tests only (that the two
    /// views are two mappings). Everything else writes through the writer
    /// (<see cref="Write(long, ReadOnlySpan{byte})"/> and its kin), which checks bounds.
    /// </summary>
    internal unsafe byte* Writable => (byte*)_rw;

    /// <summary>The executable view, raw. Prefer <see cref="ExecutableAt"/>, which checks bounds.</summary>
    public unsafe byte* Executable => (byte*)_rx;

    /// <summary>
    /// Reserves <paramref name="length"/> bytes aligned to 16 and returns their
    /// offset, or -1 when the region is full (or the length is negative).
    /// Callers serialise (one lock per region).
    /// </summary>
    public long TryReserve(int length)
    {
        nuint start = (_used + 15) & ~(nuint)15;
        // start <= _size + 15 and length < 2^31, so neither sum below can wrap;
        // a negative length would wrap the cast and is refused first.
        if (_rw == 0 || length < 0 || start > _size || (nuint)length > _size - start)
            return -1;
        // Release: a thread that learns of the reservation through a published
        // pointer also sees the high-water mark that covers it.
        Volatile.Write(ref _used, start + (nuint)length);
        return (long)start;
    }

    /// <summary>True when [offset, offset + length) lies inside reserved bytes; never wraps.</summary>
    private bool IsReserved(long offset, long length)
    {
        nuint used = Volatile.Read(ref _used);
        return offset >= 0 && length >= 0 && (ulong)length <= used && (ulong)offset <= used - (nuint)length;
    }

    /// <summary>
    /// Copies <paramref name="bytes"/> to <paramref name="offset"/>, inside a
    /// reservation not yet run by anyone (see the remarks).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The bytes do not lie inside reserved memory (a host bug).</exception>
    public unsafe void Write(long offset, ReadOnlySpan<byte> bytes)
    {
        if (!IsReserved(offset, bytes.Length)) ThrowOutside(offset, bytes.Length);
        // SAFETY: IsReserved put [offset, offset + length) inside [0, Used) and
        // so inside the live writable mapping; the bytes are the reserver's
        // alone until it publishes them (class remarks).
        bytes.CopyTo(new Span<byte>((byte*)_rw + offset, bytes.Length));
    }

    /// <summary>
    /// Writes <paramref name="value"/> (a descriptor, a patched displacement)
    /// at <paramref name="offset"/>, unaligned, inside a reservation not yet
    /// run or read by anyone.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The value does not lie inside reserved memory.</exception>
    public unsafe void Write<T>(long offset, T value) where T : unmanaged
    {
        if (!IsReserved(offset, sizeof(T))) ThrowOutside(offset, sizeof(T));
        // SAFETY: as for Write(offset, bytes): in bounds by IsReserved, the
        // reserver's alone. Unaligned, because T's place is the caller's layout.
        Unsafe.WriteUnaligned((byte*)_rw + offset, value);
    }

    /// <summary>
    /// Stores <paramref name="value"/> at <paramref name="offset"/> with
    /// release semantics: for a word that other threads may be reading or
    /// running already (a published descriptor's flag). Any thread may call it.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The word is not reserved, or not 4-byte aligned (a torn store could be seen half done).</exception>
    public unsafe void WriteVolatile32(long offset, int value)
    {
        if ((offset & 3) != 0 || !IsReserved(offset, sizeof(int))) ThrowOutside(offset, sizeof(int));
        // SAFETY: in bounds by IsReserved. Concurrent readers are expected:
        // the aligned store is single-copy atomic on x86-64, so they see the
        // old value or this one. Concurrent writers of the same word must store
        // the same kind of value (a flag set to 1); the last store wins.
        Volatile.Write(ref *(int*)((byte*)_rw + offset), value);
    }

    /// <summary>The address that runs the reserved byte at <paramref name="offset"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The offset is not inside reserved memory.</exception>
    public unsafe byte* ExecutableAt(long offset)
    {
        if (!IsReserved(offset, 1)) ThrowOutside(offset, 1);
        return (byte*)_rx + offset;
    }

    /// <summary>
    /// The offset of <paramref name="executable"/>, an address this region
    /// handed out (<see cref="ExecutableAt"/>), for writing at it again.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The address is not inside this region's reserved memory.</exception>
    public unsafe long OffsetOf(void* executable)
    {
        // Unsigned: an address below the view wraps to a huge offset and fails too.
        nuint offset = (nuint)executable - (nuint)_rx;
        if (_rx == 0 || offset >= Volatile.Read(ref _used))
            throw new ArgumentOutOfRangeException(nameof(executable), $"0x{(nuint)executable:x} is not reserved code memory of this region");
        return (long)offset;
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void ThrowOutside(long offset, long length) =>
        throw new ArgumentOutOfRangeException(nameof(offset),
            $"[{offset}, {offset} + {length}) is not inside the {Volatile.Read(ref _used)} reserved bytes of code memory");

    /// <summary>Unmaps both views; nothing may run the code or write it any more, or meanwhile.</summary>
    public void Dispose()
    {
        if (_rw != 0)
        {
            // Nothing reserved any more: a late write is refused, not a fault.
            Volatile.Write(ref _used, 0);
            Interop.Munmap(_rw, _size);
            Interop.Munmap(_rx, _size);
            _rw = _rx = 0;
        }
    }
}
