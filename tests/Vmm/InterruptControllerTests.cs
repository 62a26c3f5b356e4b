using System.Diagnostics;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Native;
using Sharpvisor.Vmm.Interrupts;

namespace Sharpvisor.Tests.Vmm;

/// <summary>
/// The controller called directly from test threads, each acting as a vCPU
/// in LHCALL_HALT or hlt, with eventfds the tests write as a device would.
/// </summary>
public sealed class InterruptControllerTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private readonly GuestMemory _memory = GuestMemory.Allocate(1 << 20);
    private readonly ExecutionEngine _engine;
    private readonly List<Vcpu> _vcpus = [];
    private readonly List<IDisposable> _owned = [];

    public InterruptControllerTests() => _engine = new ExecutionEngine(_memory, EngineKind.Threaded);

    private (InterruptController Irqs, Vcpu[] Vcpus) Make(int vcpus, params (int Line, EventFd Fd)[] lines)
    {
        var irqs = new InterruptController(vcpus);
        _owned.Add(irqs);
        foreach ((int line, EventFd fd) in lines) irqs.Attach(line, fd);
        irqs.Start();
        var cpus = new Vcpu[vcpus];
        for (int i = 0; i < vcpus; i++)
        {
            cpus[i] = new Vcpu(_engine, i, new Sharpvisor.Vmm.Hypercalls.HypercallHost(_memory, Stream.Null));
            cpus[i].State.Eip = 0x1002;
            _vcpus.Add(cpus[i]);
        }
        return (irqs, cpus);
    }

    private EventFd NewEventFd(EventFdFlags flags = EventFdFlags.None)
    {
        var fd = EventFd.Create(flags);
        _owned.Add(fd);
        return fd;
    }

    public void Dispose()
    {
        foreach (IDisposable d in _owned) d.Dispose();
        foreach (Vcpu v in _vcpus) { ((IDisposable)v.Host).Dispose(); v.Dispose(); }
        _engine.Dispose();
        _memory.Dispose();
    }

    private static Task<(VcpuExit? Exit, uint Irq)> HaltOn(InterruptController irqs, Vcpu vcpu, uint timeoutUs = 0) =>
        Task.Factory.StartNew(() =>
        {
            VcpuExit? exit = irqs.Halt(vcpu, timeoutUs, out uint irq);
            return (exit, irq);
        }, TaskCreationOptions.LongRunning);

    [Fact]
    public void Halt_TakesTheLowestPendingInterrupt_ThenTheNext()
    {
        EventFd three = NewEventFd(), nine = NewEventFd();
        var (irqs, cpus) = Make(1, (9, nine), (3, three));
        nine.Signal();
        three.Signal();
        Assert.Null(irqs.Halt(cpus[0], 0, out uint first));
        Assert.Equal(3u, first);
        Assert.Null(irqs.Halt(cpus[0], 0, out uint second));
        Assert.Equal(9u, second);
        Assert.Equal(0u, irqs.Pending);
    }

    [Fact]
    public void Interrupts_Coalesce_ACountOf3IsOnePendingInterrupt()
    {
        EventFd line = NewEventFd();
        var (irqs, cpus) = Make(1, (5, line));
        line.Signal(3);
        Assert.Null(irqs.Halt(cpus[0], 0, out uint irq));
        Assert.Equal(5u, irq);
        Assert.Null(irqs.Halt(cpus[0], 1000, out irq)); // nothing left: the timeout
        Assert.Equal(0u, irq);
        Assert.Equal(1, irqs.Raised(5));
        Assert.Equal(0UL, FdSnapshot.EventFdCount(line.Handle.Fd));
    }

    [Fact]
    public void Interrupts_InSemaphoreMode_CoalesceToo()
    {
        EventFd line = NewEventFd(EventFdFlags.Semaphore);
        var (irqs, cpus) = Make(1, (7, line));
        line.Signal(3);
        Assert.Null(irqs.Halt(cpus[0], 0, out uint irq));
        Assert.Equal(7u, irq);
        Assert.Null(irqs.Halt(cpus[0], 1000, out irq));
        Assert.Equal(0u, irq);
    }

    [Fact]
    public void Halt_WakesWhenAnotherThreadWritesTheEventFd()
    {
        EventFd line = NewEventFd();
        var (irqs, cpus) = Make(1, (1, line));
        var halted = HaltOn(irqs, cpus[0]);
        Thread.Sleep(50);
        line.Signal();
        Assert.True(halted.Wait(Patience));
        Assert.Null(halted.Result.Exit);
        Assert.Equal(1u, halted.Result.Irq);
    }

    [Fact]
    public void Halt_WithATimeout_NeverReturnsEarly_AndInterruptsCutItShort()
    {
        EventFd line = NewEventFd();
        var (irqs, cpus) = Make(1, (2, line));
        var sw = Stopwatch.StartNew();
        Assert.Null(irqs.Halt(cpus[0], 30_000, out uint irq));
        Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(30), $"returned after {sw.Elapsed.TotalMilliseconds} ms");
        Assert.Equal(0u, irq);

        var halted = HaltOn(irqs, cpus[0], 60_000_000);
        Thread.Sleep(20);
        line.Signal();
        Assert.True(halted.Wait(Patience));
        Assert.Equal(2u, halted.Result.Irq);
    }

    [Fact]
    public void TwoHaltedVcpus_OnABlockingEventFd_OneInterruptWakesExactlyOne()
    {
        // Both sleep on the same blocking eventfd. One write: exactly one vCPU
        // may take it, and the other must not block for ever in read(2) on an
        // empty counter; it keeps waiting until the VM stops.
        EventFd line = NewEventFd();
        int flagsBefore = FdSnapshot.Flags(line.Handle.Fd);
        var (irqs, cpus) = Make(2, (4, line));
        var a = HaltOn(irqs, cpus[0]);
        var b = HaltOn(irqs, cpus[1]);
        Thread.Sleep(50);
        line.Signal();
        int done = Task.WaitAny([a, b], Patience);
        Assert.NotEqual(-1, done);
        Assert.Equal(4u, (done == 0 ? a : b).Result.Irq);
        var other = done == 0 ? b : a;
        Assert.False(other.Wait(200)); // still waiting: there was one interrupt

        var stop = new VcpuExit(StopReason.Signal, "stop", Signal: 15);
        irqs.Stop(stop);
        Assert.True(other.Wait(Patience));
        Assert.Same(stop, other.Result.Exit);
        Assert.Equal(flagsBefore, FdSnapshot.Flags(line.Handle.Fd)); // flags never changed
    }

    [Fact]
    public void ManyHaltedVcpus_EveryInterruptIsTakenOnce()
    {
        // Several vCPUs halt in a loop; a writer raises interrupts one at a
        // time, each after the previous one was taken. None is lost, none
        // taken twice, and no vCPU sleeps through one it should have seen.
        EventFd line = NewEventFd();
        var (irqs, cpus) = Make(3, (6, line));
        const int Rounds = 300;
        int taken = 0;
        using var tookOne = new SemaphoreSlim(0);
        var halters = cpus.Select(c => Task.Factory.StartNew(() =>
        {
            while (irqs.Halt(c, 0, out uint irq) == null)
            {
                Assert.Equal(6u, irq);
                Interlocked.Increment(ref taken);
                tookOne.Release();
            }
        }, TaskCreationOptions.LongRunning)).ToArray();
        for (int i = 0; i < Rounds; i++)
        {
            line.Signal();
            Assert.True(tookOne.Wait(Patience), $"interrupt {i} was not taken");
        }
        irqs.Stop(new VcpuExit(StopReason.Shutdown, "done", 0));
        Assert.True(Task.WaitAll(halters, Patience));
        Assert.Equal(Rounds, taken);
    }

    [Fact]
    public void Hlt_WaitsForAnInterrupt_WithoutTakingIt()
    {
        EventFd line = NewEventFd();
        var (irqs, cpus) = Make(1, (8, line));
        var waiting = Task.Factory.StartNew(() => irqs.WaitForInterrupt(cpus[0]), TaskCreationOptions.LongRunning);
        Assert.False(waiting.Wait(50));
        line.Signal();
        Assert.True(waiting.Wait(Patience));
        Assert.Null(waiting.Result);
        Assert.Equal(1u << 8, irqs.Pending); // still pending
        Assert.Null(irqs.Halt(cpus[0], 0, out uint irq));
        Assert.Equal(8u, irq);
    }

    [Fact]
    public void NoInterruptSource_OneVcpuWaitingForEver_IsADeadlock()
    {
        var (irqs, cpus) = Make(1);
        VcpuExit? exit = irqs.Halt(cpus[0], 0, out _);
        Assert.Equal(StopReason.Deadlock, exit?.Reason);
        Assert.Contains("eip 0x1000", exit!.Message);
        Assert.Equal(StopReason.Deadlock, irqs.WaitForInterrupt(cpus[0])?.Reason);
    }

    [Fact]
    public void NoInterruptSource_TwoVcpus_OneWaitingIsNotADeadlock_BothWaitingIs()
    {
        var (irqs, cpus) = Make(2);
        var first = HaltOn(irqs, cpus[0]);
        Assert.False(first.Wait(200)); // the other vCPU still runs: it may shut down
        VcpuExit? second = irqs.WaitForInterrupt(cpus[1]);
        Assert.Equal(StopReason.Deadlock, second?.Reason);
        Assert.Contains("all 2 vCPUs", second!.Message);
        irqs.Stop(second); // what the machine does with the first stop
        Assert.True(first.Wait(Patience));
        Assert.Same(second, first.Result.Exit);
    }

    [Fact]
    public void NoInterruptSource_AWaitWithATimeout_IsNeverADeadlock()
    {
        var (irqs, cpus) = Make(2);
        var forever = HaltOn(irqs, cpus[0]);
        Assert.False(forever.Wait(100));
        Assert.Null(irqs.Halt(cpus[1], 20_000, out uint irq)); // times out, no deadlock
        Assert.Equal(0u, irq);
        irqs.Stop(new VcpuExit(StopReason.Shutdown, "x", 0));
        Assert.True(forever.Wait(Patience));
    }

    [Fact]
    public void WithAnInterruptSource_WaitingForEverIsNotADeadlock()
    {
        EventFd line = NewEventFd();
        var (irqs, cpus) = Make(1, (1, line));
        var halted = HaltOn(irqs, cpus[0]);
        Assert.False(halted.Wait(200));
        irqs.Stop(new VcpuExit(StopReason.Timeout, "t"));
        Assert.True(halted.Wait(Patience));
        Assert.Equal(StopReason.Timeout, halted.Result.Exit?.Reason);
    }
}
