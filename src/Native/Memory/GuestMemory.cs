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
/// address is a plain move. vCPU threads must be stopped before Dispose.
/// </remarks>
public sealed unsafe class GuestMemory : IDisposable
{
    public const int PageSize = 4096;

    private nint _allocation; // what calloc returned; the base is the next page boundary
    private byte* _base;
    private ulong _size;

    private GuestMemory(void* allocation, byte* @base, ulong size)
    {
        _allocation = (nint)allocation;
        _base = @base;
        _size = size;
    }

    /// <summary>Allocates <paramref name="size"/> bytes of zeroed guest RAM; size is a multiple of 4 KiB.</summary>
    public static GuestMemory Allocate(ulong size)
    {
        if (size == 0 || size % PageSize != 0)
            throw new ArgumentOutOfRangeException(nameof(size), size, "guest RAM must be a nonzero multiple of 4 KiB");
        // calloc rather than aligned_alloc + memset: glibc serves a block this
        // large straight from mmap, whose pages the kernel already zeroed, so
        // untouched guest RAM costs no time and no resident memory.
        void* raw = NativeMemory.AllocZeroed((nuint)(size + PageSize - 1));
        byte* aligned = (byte*)(((nuint)raw + PageSize - 1) & ~(nuint)(PageSize - 1));
        return new GuestMemory(raw, aligned, size);
    }

    /// <summary>Bytes of guest RAM; 0 once disposed, so every access then fails its bounds check.</summary>
    public ulong Size => _size;

    /// <summary>Host address of guest physical 0, for translated code that inlines its own bounds checks.</summary>
    public byte* Base => _base;

    /// <summary>True when [address, address + length) lies inside RAM; never wraps.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Contains(ulong address, ulong length) => length <= _size && address <= _size - length;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryRead8(ulong address, out byte value)
    {
        if (!Contains(address, 1)) { value = 0; return false; }
        value = Volatile.Read(ref _base[address]);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryRead16(ulong address, out ushort value)
    {
        if (!Contains(address, 2)) { value = 0; return false; }
        value = Volatile.Read(ref Unsafe.AsRef<ushort>(_base + address));
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryRead32(ulong address, out uint value)
    {
        if (!Contains(address, 4)) { value = 0; return false; }
        value = Volatile.Read(ref Unsafe.AsRef<uint>(_base + address));
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryRead64(ulong address, out ulong value)
    {
        if (!Contains(address, 8)) { value = 0; return false; }
        value = Volatile.Read(ref Unsafe.AsRef<ulong>(_base + address));
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryWrite8(ulong address, byte value)
    {
        if (!Contains(address, 1)) return false;
        Volatile.Write(ref _base[address], value);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryWrite16(ulong address, ushort value)
    {
        if (!Contains(address, 2)) return false;
        Volatile.Write(ref Unsafe.AsRef<ushort>(_base + address), value);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryWrite32(ulong address, uint value)
    {
        if (!Contains(address, 4)) return false;
        Volatile.Write(ref Unsafe.AsRef<uint>(_base + address), value);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryWrite64(ulong address, ulong value)
    {
        if (!Contains(address, 8)) return false;
        Volatile.Write(ref Unsafe.AsRef<ulong>(_base + address), value);
        return true;
    }

    /// <summary>
    /// A view of [address, address + length) for bulk copies (loading an
    /// image, a console write). Not volatile: do not use it to poll memory
    /// that a running vCPU writes.
    /// </summary>
    public bool TryGetSpan(ulong address, int length, out Span<byte> span)
    {
        if (length < 0 || !Contains(address, (ulong)length)) { span = default; return false; }
        span = new Span<byte>(_base + address, length);
        return true;
    }

    public void Dispose()
    {
        // Size goes to zero first, so an access racing with Dispose fails its
        // bounds check instead of touching freed memory; the exchange makes a
        // second Dispose (or the finalizer after Dispose) a no-op.
        Volatile.Write(ref _size, 0);
        _base = null;
        nint raw = Interlocked.Exchange(ref _allocation, 0);
        if (raw != 0) NativeMemory.Free((void*)raw);
        GC.SuppressFinalize(this);
    }

    ~GuestMemory() => Dispose();
}
