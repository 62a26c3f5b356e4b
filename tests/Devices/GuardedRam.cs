using System.Runtime.CompilerServices;
using Sharpvisor.Native;

namespace Sharpvisor.Tests.Devices;

/// <summary>
/// Guest RAM with an inaccessible page on either side (mmap PROT_NONE), so a
/// device access one byte outside RAM kills the test process with SIGSEGV
/// instead of reading or corrupting a neighbour quietly.
/// </summary>
/// <remarks>
/// GuestMemory allocates its own block and has no constructor for a given
/// one, so this reaches its private constructor with an UnsafeAccessor
/// (tests only), passing no allocation: its Dispose then frees nothing, and
/// this class unmaps the region after it.
/// </remarks>
internal sealed unsafe class GuardedRam : IDisposable
{
    private const int Page = GuestMemory.PageSize;
    private nint _mapping;
    private readonly nuint _mappingSize;

    public GuardedRam(ulong size)
    {
        _mappingSize = (nuint)(size + 2 * Page);
        _mapping = Interop.Mmap(0, _mappingSize, Interop.PROT_NONE, Interop.MAP_PRIVATE | Interop.MAP_ANONYMOUS | Interop.MAP_NORESERVE, -1, 0);
        if (_mapping == Interop.MAP_FAILED) throw new InvalidOperationException($"mmap failed: {Interop.LastErrno}");
        if (Interop.Mprotect(_mapping + Page, (nuint)size, Interop.PROT_READ | Interop.PROT_WRITE) != 0)
            throw new InvalidOperationException($"mprotect failed: {Interop.LastErrno}");
        // SAFETY: [mapping + Page, + size) is mapped read-write and ours until Dispose, which disposes the GuestMemory first.
        Ram = NewGuestMemory(null, (byte*)(_mapping + Page), size);
    }

    public GuestMemory Ram { get; }

    /// <summary>The first guard page's address, for the test that proves the guard is there.</summary>
    public nint GuardBefore => _mapping;

    [UnsafeAccessor(UnsafeAccessorKind.Constructor)]
    private static extern GuestMemory NewGuestMemory(void* allocation, byte* @base, ulong size);

    public void Dispose()
    {
        Ram.Dispose();
        nint m = Interlocked.Exchange(ref _mapping, 0);
        if (m != 0) Interop.Munmap(m, _mappingSize);
    }
}
