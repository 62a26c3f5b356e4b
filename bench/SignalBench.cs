using BenchmarkDotNet.Attributes;
using Sharpvisor.Native;

namespace Sharpvisor.Bench;

/// <summary>
/// <see cref="EventFd.Signal"/> against the bare write(2) it wraps, made
/// through the same SafeHandle interop. No one reads the eventfd meanwhile,
/// so every write finds no waiter: this is the signalling side alone.
/// </summary>
/// <remarks>
/// The host under our VMs stretches some iterations by up to 80%. Noise only
/// adds time, so the Min column (the fastest iteration) is the steadiest figure.
/// </remarks>
[MinColumn]
public unsafe class SignalBench
{
    private EventFd _efd = null!;
    private SafeFdHandle _handle = null!;
    private int _fd;
    private bool _addedRef;

    [GlobalSetup]
    public void Setup()
    {
        _efd = EventFd.Create();
        _handle = _efd.Handle;
        // Hold a reference for the raw-descriptor row, so the number stays ours.
        _handle.DangerousAddRef(ref _addedRef);
        _fd = _handle.Fd;
    }

    [Benchmark(Baseline = true)]
    public nint WriteSafeHandle()
    {
        ulong count = 1;
        return Interop.Write(_handle, &count, sizeof(ulong));
    }

    [Benchmark]
    public void Signal() => _efd.Signal();

    /// <summary>
    /// For information: the raw-descriptor write the map's read side uses,
    /// without the SafeHandle's two interlocked ref-count updates.
    /// </summary>
    [Benchmark]
    public nint WriteRawFd()
    {
        ulong count = 1;
        return Interop.Write(_fd, &count, sizeof(ulong));
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        if (_addedRef) _handle.DangerousRelease();
        // The counter cannot fill (it holds 2^64-2); reading it back checks that the writes landed.
        if (!_efd.TryRead(out ulong count) || count == 0)
            throw new InvalidOperationException("the eventfd counter is 0 after the benchmark wrote to it");
        _efd.Dispose();
    }
}
