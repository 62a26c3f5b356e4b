using System.Collections.Concurrent;
using Sharpvisor.Devices;
using Sharpvisor.Native;

namespace Sharpvisor.Tests.Devices;

/// <summary>
/// The VM's side as the device tests see it: interrupts counted and released
/// on a semaphore (the event a test waits for), report lines and the ranges
/// the device said it wrote, kept for checking.
/// </summary>
internal sealed class TestHost(GuestMemory ram) : IDeviceHost
{
    /// <summary>A generous bound for any wait on the device: a hang fails the test instead of stalling it.</summary>
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private int _interrupts;
    private int _writesOutsideRam;

    public GuestMemory Ram { get; } = ram;

    public SemaphoreSlim InterruptSignal { get; } = new(0);

    public ConcurrentQueue<string> Reports { get; } = new();

    public ConcurrentQueue<(ulong Address, ulong Length)> Written { get; } = new();

    public int Interrupts => Volatile.Read(ref _interrupts);

    public int WritesOutsideRam => Volatile.Read(ref _writesOutsideRam);

    /// <summary>Called on the device's thread at each interrupt, before it is counted: what a test wants to see at that moment.</summary>
    public Action? OnInterrupt { get; set; }

    public void RaiseInterrupt()
    {
        OnInterrupt?.Invoke();
        Interlocked.Increment(ref _interrupts);
        InterruptSignal.Release();
    }

    public void CodeWritten(ulong address, ulong length)
    {
        if (!Ram.Contains(address, length)) Interlocked.Increment(ref _writesOutsideRam);
        Written.Enqueue((address, length));
    }

    public void Report(string line) => Reports.Enqueue(line);

    private readonly MemoryStream _console = new();

    /// <summary>When set, console writes fail as a closed pipe would.</summary>
    public bool ConsoleFails { get; set; }

    public bool WriteConsole(ReadOnlySpan<byte> bytes, out string? error)
    {
        error = ConsoleFails ? "Broken pipe" : null;
        if (ConsoleFails) return false;
        lock (_console) _console.Write(bytes);
        return true;
    }

    /// <summary>Everything the device wrote to the console so far.</summary>
    public byte[] ConsoleBytes()
    {
        lock (_console) return _console.ToArray();
    }

    /// <summary>Waits, interrupt by interrupt, until <paramref name="done"/> holds; fails after <see cref="Bound"/> without one.</summary>
    public void WaitUntil(Func<bool> done, string what)
    {
        while (!done())
            Assert.True(InterruptSignal.Wait(Bound), $"no interrupt within {Bound.TotalSeconds} s while waiting for {what}");
    }
}
