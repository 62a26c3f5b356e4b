using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Sharpvisor.Native;

/// <summary>
/// Guest RAM: one page-aligned, zeroed block of native memory that guest
/// physical address 0 maps to. Every accessor checks bounds first and reports
/// an access outside RAM as a failed Try (the caller turns it into a guest
/// fault), never as a host crash and never as a wrap.
/// </summary>
/// <remarks>
/// Accesses are volatile: a guest spinning on a flag that another vCPU sets
/// must see the store, so the JIT may not keep guest memory in a register.
/// x86-64 allows misaligned loads and stores, so a volatile access at any
/// address is a plain move.
/// <para>
/// Every read and write of guest RAM in src/Native goes through the
/// <c>ReadUnchecked</c>/<c>WriteUnchecked</c> primitives below, and so should
/// every engine's (they hold <see cref="Base"/> and check bounds in their own
/// code, against a size they carry). What makes those pointers valid, for all
/// of them, is one invariant and one rule:
/// </para>
/// <list type="bullet">
/// <item>Invariant: from <see cref="Allocate"/> to <see cref="Dispose"/>,
/// [<see cref="Base"/>, Base + <see cref="Size"/>) is one live allocation of
/// ours. Base is never moved or reallocated, so a copy of it is as good as
/// the property for as long as the object lives.</item>
/// <item>Rule: nothing uses guest RAM concurrently with Dispose. The vCPU
/// threads, devices and loaders that hold this object (or a copy of
/// <see cref="Base"/>) stop before the machine disposes it; the engine that
/// bakes Base into translated code holds this object, so the finalizer
/// cannot run while that code can.</item>
/// </list>
/// <para>
/// Aliasing: guest RAM is shared by every vCPU and device by design, and a
/// guest may race with itself. That is the guest's business, not a hazard to
/// the host: the block holds plain bytes, never a host pointer or a managed
/// reference, so any interleaving of guest stores leaves only bytes the guest
/// could have written. A naturally aligned access of up to 8 bytes is single
/// copy atomic on x86-64; a misaligned one may tear, as it may on the real
/// CPU.
/// </para>
/// </remarks>
public sealed class GuestMemory : IDisposable
{
    public const int PageSize = 4096;

    private nint _allocation; // what calloc returned; the base is the next page boundary
    private unsafe byte* _base;
    private ulong _size;

    private unsafe GuestMemory(void* allocation, byte* @base, ulong size)
    {
        _allocation = (nint)allocation;
        _base = @base;
        _size = size;
    }

    /// <summary>Allocates <paramref name="size"/> bytes of zeroed guest RAM; size is a multiple of 4 KiB.</summary>
    public static unsafe GuestMemory Allocate(ulong size)
    {
        if (size == 0 || size % PageSize != 0)
            throw new ArgumentOutOfRangeException(nameof(size), size, "guest RAM must be a nonzero multiple of 4 KiB");
        // calloc rather than aligned_alloc + memset: glibc serves a block this
        // large straight from mmap, whose pages the kernel already zeroed, so
        // untouched guest RAM costs no time and no resident memory.
        // SAFETY: size is a multiple of 4096 and so at most 2^64 - 4096: the
        // padding cannot wrap. AllocZeroed throws rather than return null, so
        // raw is a live block of size + 4095 bytes; rounding raw up to the
        // next page boundary skips at most 4095 of them, leaving at least
        // size bytes from aligned on.
        void* raw = NativeMemory.AllocZeroed(checked((nuint)(size + PageSize - 1)));
        byte* aligned = (byte*)(((nuint)raw + PageSize - 1) & ~(nuint)(PageSize - 1));
        return new GuestMemory(raw, aligned, size);
    }

    /// <summary>Bytes of guest RAM; 0 once disposed, so every access then fails its bounds check.</summary>
    public ulong Size => _size;

    /// <summary>
    /// Host address of guest physical 0, for engines that check bounds in
    /// their own code (against <see cref="Size"/>) and then access RAM with
    /// <see cref="ReadUnchecked32"/> and its kin. Valid until Dispose (see the
    /// remarks).
    /// </summary>
    public unsafe byte* Base => _base;

    /// <summary>True when [address, address + length) lies inside RAM; never wraps.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Contains(ulong address, ulong length) => length <= _size && address <= _size - length;

    /// <summary>True when [address, address + length) lies inside RAM of <paramref name="size"/> bytes; never wraps. The check the unchecked primitives need.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Contains(ulong size, ulong address, ulong length) => length <= size && address <= size - length;

    // The primitives. Every one has the same precondition, which is its whole
    // safety argument: ram is the Base of a live GuestMemory (the class
    // invariant and rule above) and [offset, offset + N) lies inside its Size,
    // which the caller checked (Contains, or an engine's own compare against
    // the size it carries). They add no check of their own: engines run them
    // on every guest load and store and have just checked.

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe byte ReadUnchecked8(byte* ram, nuint offset) =>
        // SAFETY: in bounds and live by the precondition above; one byte has no alignment.
        Volatile.Read(ref ram[offset]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe ushort ReadUnchecked16(byte* ram, nuint offset) =>
        // SAFETY: precondition above; x86-64 loads a misaligned ushort in one move.
        Volatile.Read(ref Unsafe.AsRef<ushort>(ram + offset));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe uint ReadUnchecked32(byte* ram, nuint offset) =>
        // SAFETY: precondition above; x86-64 loads a misaligned uint in one move.
        Volatile.Read(ref Unsafe.AsRef<uint>(ram + offset));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe ulong ReadUnchecked64(byte* ram, nuint offset) =>
        // SAFETY: precondition above; x86-64 loads a misaligned ulong in one move.
        Volatile.Read(ref Unsafe.AsRef<ulong>(ram + offset));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void WriteUnchecked8(byte* ram, nuint offset, byte value) =>
        // SAFETY: precondition above. Other vCPUs may write the same byte: see
        // the remarks on aliasing (plain bytes, no host data to corrupt).
        Volatile.Write(ref ram[offset], value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void WriteUnchecked16(byte* ram, nuint offset, ushort value) =>
        // SAFETY: precondition above; aliasing as for WriteUnchecked8.
        Volatile.Write(ref Unsafe.AsRef<ushort>(ram + offset), value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void WriteUnchecked32(byte* ram, nuint offset, uint value) =>
        // SAFETY: precondition above; aliasing as for WriteUnchecked8.
        Volatile.Write(ref Unsafe.AsRef<uint>(ram + offset), value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void WriteUnchecked64(byte* ram, nuint offset, ulong value) =>
        // SAFETY: precondition above; aliasing as for WriteUnchecked8.
        Volatile.Write(ref Unsafe.AsRef<ulong>(ram + offset), value);

    /// <summary>A locked compare-exchange of the byte at <paramref name="offset"/> (the guest's <c>lock</c> prefix); returns what it held.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe byte CompareExchangeUnchecked8(byte* ram, nuint offset, byte value, byte comparand) =>
        // SAFETY: precondition above. Other vCPUs run the same locked
        // instruction on the same bytes: that is the point, and the host's
        // lock cmpxchg makes the read-modify-write one step for all of them.
        Interlocked.CompareExchange(ref ram[offset], value, comparand);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe ushort CompareExchangeUnchecked16(byte* ram, nuint offset, ushort value, ushort comparand) =>
        // SAFETY: precondition above; x86-64's lock cmpxchg is atomic even
        // across a cache line (a split lock: slow, still one step), so a
        // misaligned guest word is no hazard.
        Interlocked.CompareExchange(ref Unsafe.AsRef<ushort>(ram + offset), value, comparand);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe uint CompareExchangeUnchecked32(byte* ram, nuint offset, uint value, uint comparand) =>
        // SAFETY: as for CompareExchangeUnchecked16.
        Interlocked.CompareExchange(ref Unsafe.AsRef<uint>(ram + offset), value, comparand);

    /// <summary>Sets <paramref name="length"/> bytes from <paramref name="offset"/> to <paramref name="value"/> (<c>rep stosb</c>).</summary>
    public static unsafe void FillUnchecked(byte* ram, nuint offset, nuint length, byte value) =>
        // SAFETY: precondition above for N = length. nuint all through: a fill
        // of more than 2 GiB (a guest's rep stos over a large RAM) is valid
        // and must not go through an int-sized Span.
        NativeMemory.Fill(ram + offset, length, value);

    /// <summary>
    /// Copies <paramref name="length"/> bytes from <paramref name="from"/> to
    /// <paramref name="to"/> (<c>rep movs</c>, forwards); overlapping ranges
    /// copy as memmove does, which the caller refuses where the guest would see
    /// the difference.
    /// </summary>
    public static unsafe void CopyUnchecked(byte* ram, nuint from, nuint to, nuint length) =>
        // SAFETY: precondition above for both ranges.
        Buffer.MemoryCopy(ram + from, ram + to, length, length);

    // The checked accessors: Contains is the precondition's bounds check, and
    // the object is live because its owner has not disposed it (after
    // Dispose, Size is 0 and Contains fails, so a late access is refused).

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe bool TryRead8(ulong address, out byte value)
    {
        if (!Contains(address, 1)) { value = 0; return false; }
        value = ReadUnchecked8(_base, (nuint)address);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe bool TryRead16(ulong address, out ushort value)
    {
        if (!Contains(address, 2)) { value = 0; return false; }
        value = ReadUnchecked16(_base, (nuint)address);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe bool TryRead32(ulong address, out uint value)
    {
        if (!Contains(address, 4)) { value = 0; return false; }
        value = ReadUnchecked32(_base, (nuint)address);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe bool TryRead64(ulong address, out ulong value)
    {
        if (!Contains(address, 8)) { value = 0; return false; }
        value = ReadUnchecked64(_base, (nuint)address);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe bool TryWrite8(ulong address, byte value)
    {
        if (!Contains(address, 1)) return false;
        WriteUnchecked8(_base, (nuint)address, value);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe bool TryWrite16(ulong address, ushort value)
    {
        if (!Contains(address, 2)) return false;
        WriteUnchecked16(_base, (nuint)address, value);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe bool TryWrite32(ulong address, uint value)
    {
        if (!Contains(address, 4)) return false;
        WriteUnchecked32(_base, (nuint)address, value);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe bool TryWrite64(ulong address, ulong value)
    {
        if (!Contains(address, 8)) return false;
        WriteUnchecked64(_base, (nuint)address, value);
        return true;
    }

    /// <summary>
    /// A view of [address, address + length) for bulk copies (loading an
    /// image, a console write). Not volatile: do not use it to poll memory
    /// that a running vCPU writes. The span is a raw view: it must not be
    /// kept past the machine's life (the rule in the remarks).
    /// </summary>
    public unsafe bool TryGetSpan(ulong address, int length, out Span<byte> span)
    {
        if (length < 0 || !Contains(address, (ulong)length)) { span = default; return false; }
        // SAFETY: Contains put [address, address + length) inside the live
        // block. A span over native memory is not tracked by the GC, so its
        // validity is the class rule's: used while the machine lives.
        span = new Span<byte>(_base + address, length);
        return true;
    }

    /// <summary>
    /// Frees guest RAM. Nothing may access it meanwhile (the class rule):
    /// an access racing with Dispose could pass its bounds check just before
    /// Size drops and touch freed memory. Afterwards every checked access fails.
    /// </summary>
    public unsafe void Dispose()
    {
        // Size goes to zero first, so a checked access after Dispose fails its
        // bounds check rather than touch freed memory; the exchange makes a
        // second Dispose (or the finalizer after Dispose) a no-op.
        Volatile.Write(ref _size, 0);
        _base = null;
        nint raw = Interlocked.Exchange(ref _allocation, 0);
        // SAFETY: raw came from AllocZeroed, and the exchange hands it to one
        // caller only, so it is freed once.
        if (raw != 0) NativeMemory.Free((void*)raw);
        GC.SuppressFinalize(this);
    }

    ~GuestMemory() => Dispose();
}
