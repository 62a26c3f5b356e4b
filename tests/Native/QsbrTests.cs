using System.Diagnostics;
using Sharpvisor.Native;

namespace Sharpvisor.Tests.Native;

public class QsbrTests
{
    [Fact]
    public void Synchronize_WithNoThreads_Returns()
    {
        using var qsbr = new Qsbr();
        qsbr.Synchronize();
        Assert.Equal(1, qsbr.GracePeriods);
    }

    [Fact]
    public void Synchronize_WaitsForOnlineThread_UntilItPassesAQuiescentState()
    {
        using var qsbr = new Qsbr();
        using var reader = new RcuReader(qsbr);
        var sync = TaskAssert.OnThread(qsbr.Synchronize);
        reader.AssertUpdaterWaiting(sync);
        reader.Run(t => t.QuiescentState()).Wait();
        TaskAssert.Completes(sync);
    }

    [Fact]
    public void Synchronize_DoesNotWaitForOfflineThread()
    {
        using var qsbr = new Qsbr();
        using var reader = new RcuReader(qsbr);
        reader.Run(t => t.Offline()).Wait();
        Assert.False(reader.Self.IsOnline);
        TaskAssert.Completes(TaskAssert.OnThread(qsbr.Synchronize));
        // Online again: waited for again.
        reader.Run(t => t.Online()).Wait();
        var sync = TaskAssert.OnThread(qsbr.Synchronize);
        reader.AssertUpdaterWaiting(sync);
        reader.Run(t => t.QuiescentState()).Wait();
        TaskAssert.Completes(sync);
    }

    [Fact]
    public void Synchronize_QuiescentStateBeforeTheGracePeriod_DoesNotCount()
    {
        using var qsbr = new Qsbr();
        using var reader = new RcuReader(qsbr);
        reader.Run(t => t.QuiescentState()).Wait();
        var sync = TaskAssert.OnThread(qsbr.Synchronize);
        reader.AssertUpdaterWaiting(sync);
        reader.Run(t => t.QuiescentState()).Wait();
        TaskAssert.Completes(sync);
    }

    [Fact]
    public void Synchronize_FromRegisteredThread_DoesNotDeadlockOnItself()
    {
        using var qsbr = new Qsbr();
        using var reader = new RcuReader(qsbr);
        TaskAssert.Completes(reader.Run(_ => qsbr.Synchronize()));
        Assert.True(reader.Self.IsOnline);
    }

    [Fact]
    public void UnregisteredThread_IsNotWaitedFor()
    {
        using var qsbr = new Qsbr();
        var reader = new RcuReader(qsbr);
        Assert.Equal(1, qsbr.ThreadCount);
        reader.Dispose();
        Assert.Equal(0, qsbr.ThreadCount);
        TaskAssert.Completes(TaskAssert.OnThread(qsbr.Synchronize));
    }

    [Fact]
    public void Synchronize_KicksAThreadItWaitsOn_AndClearsTheKickAfterwards()
    {
        using var qsbr = new Qsbr();
        using var reader = new RcuReader(qsbr);
        Assert.False(reader.Self.KickRequested);
        var sync = TaskAssert.OnThread(qsbr.Synchronize);
        // A vCPU in a long loop polls the kick word; here we poll it from the test.
        Assert.True(SpinWait.SpinUntil(() => reader.Self.KickRequested, TimeSpan.FromSeconds(10)));
        reader.Run(t => t.QuiescentState()).Wait();
        TaskAssert.Completes(sync);
        Assert.False(reader.Self.KickRequested);
    }

    [Fact]
    public void Synchronize_ReportsAStall_NamingTheThread()
    {
        using var qsbr = new Qsbr { StallThreshold = TimeSpan.FromMilliseconds(50) };
        using var reader = new RcuReader(qsbr, "vcpu7");
        var stalls = new List<QsbrStall>();
        qsbr.Stalled += s => { lock (stalls) stalls.Add(s); };
        var sync = TaskAssert.OnThread(qsbr.Synchronize);
        Assert.True(SpinWait.SpinUntil(() => { lock (stalls) return stalls.Count > 0; }, TimeSpan.FromSeconds(10)));
        reader.Run(t => t.QuiescentState()).Wait();
        TaskAssert.Completes(sync);
        QsbrStall stall = Assert.Single(stalls);
        Assert.Equal("vcpu7", stall.ThreadName);
        Assert.Equal(reader.Self.Tid, stall.Tid);
        Assert.True(stall.Waited >= TimeSpan.FromMilliseconds(50));
        Assert.Contains("'vcpu7'", stall.ToString());
    }

    [Fact]
    public void Defer_RunsOnlyAfterTheGracePeriod()
    {
        using var qsbr = new Qsbr();
        using var reader = new RcuReader(qsbr);
        int ran = 0;
        qsbr.Defer(() => Interlocked.Increment(ref ran));
        reader.AssertUpdaterWaiting();
        Thread.Sleep(50);
        Assert.Equal(0, Volatile.Read(ref ran));
        reader.Run(t => t.QuiescentState()).Wait();
        qsbr.Barrier();
        Assert.Equal(1, Volatile.Read(ref ran));
    }

    [Fact]
    public unsafe void Defer_Pointer_IsFreedAfterTheGracePeriod_AndBarrierWaitsForIt()
    {
        using var qsbr = new Qsbr();
        for (int i = 0; i < 100; i++) qsbr.Defer(System.Runtime.InteropServices.NativeMemory.Alloc(64));
        qsbr.Barrier();
        Assert.True(qsbr.GracePeriods >= 1);
    }

    [Fact]
    public void Defer_LeavesReadersToPassQuiescentStates_OnTheirOwn_BeforeItKicks()
    {
        // A kick costs a vCPU a wakeup of the reclaimer on its notify path, so
        // the reclaimer's grace period waits a while without one; the
        // synchronous updater's kicks after 2 µs.
        using var qsbr = new Qsbr();
        using var reader = new RcuReader(qsbr);
        int ran = 0;
        qsbr.Defer(() => Interlocked.Increment(ref ran));
        Thread.Sleep(5);
        Assert.False(reader.Self.KickRequested, "the reclaimer kicked at once");
        Assert.Equal(0, Volatile.Read(ref ran));
        // Passing quiescent states ends it (with or without a kick by then:
        // a loaded machine may hold this reader back past the kick's delay).
        Task passing = reader.Run(t =>
        {
            while (Volatile.Read(ref ran) == 0)
            {
                t.QuiescentState();
                Thread.Sleep(1);
            }
        });
        qsbr.Barrier();
        TaskAssert.Completes(passing);
        Assert.Equal(1, ran);
    }

    [Fact]
    public void WaitForBacklog_HoldsAProducerBack_UntilTheReclaimerCatchesUp()
    {
        using var qsbr = new Qsbr();
        using var reader = new RcuReader(qsbr);
        qsbr.Defer(() => { });
        reader.AssertUpdaterWaiting(); // the reclaimer holds its first batch
        for (int i = 0; i < 4; i++) qsbr.Defer(() => { });
        Task producer = TaskAssert.OnThread(() => qsbr.WaitForBacklog(3));
        TaskAssert.StillBlocked(producer, 50);
        TaskAssert.Completes(TaskAssert.OnThread(() => qsbr.WaitForBacklog(5)));
        reader.Run(t => t.Offline()).Wait();
        TaskAssert.Completes(producer);
        qsbr.Barrier();
    }

    [Fact]
    public void WaitForBacklog_FromARegisteredThread_GoesOfflineMeanwhile()
    {
        // The only reader is the producer: online while it waited, it would
        // hold up the very grace period it waits on.
        using var qsbr = new Qsbr();
        using var reader = new RcuReader(qsbr);
        qsbr.Defer(() => { });
        reader.AssertUpdaterWaiting(); // the reclaimer holds its first batch,
        for (int i = 0; i < 4; i++) qsbr.Defer(() => { }); // so these stay queued
        bool onlineAfter = false;
        TaskAssert.Completes(reader.Run(t => { qsbr.WaitForBacklog(1); onlineAfter = t.IsOnline; }));
        Assert.True(onlineAfter, "back online after the wait");
        reader.Run(t => t.Offline()).Wait(); // an idle reader: the last batch may still wait on it
        qsbr.Barrier();
    }

    [Fact]
    public void Barrier_FromRegisteredOnlineThread_DoesNotDeadlock()
    {
        using var qsbr = new Qsbr();
        using var reader = new RcuReader(qsbr);
        int ran = 0;
        qsbr.Defer(() => ran = 1);
        TaskAssert.Completes(reader.Run(_ => qsbr.Barrier()));
        Assert.Equal(1, ran);
        Assert.True(reader.Self.IsOnline);
    }

    [Fact]
    public void Barrier_RethrowsAFailedCallback()
    {
        using var qsbr = new Qsbr();
        qsbr.Defer(() => throw new InvalidOperationException("boom"));
        var e = Assert.Throws<AggregateException>(qsbr.Barrier);
        Assert.Equal("boom", e.InnerException!.Message);
    }

    [Fact]
    public void Dispose_WithThreadStillRegistered_Refuses()
    {
        var qsbr = new Qsbr();
        using (var reader = new RcuReader(qsbr))
            Assert.Throws<InvalidOperationException>(qsbr.Dispose);
        qsbr.Dispose();
    }

    [Fact]
    public void ADisposedThread_CannotWriteTheRecordItsSuccessorGot()
    {
        // Records are recycled: the next thread to register gets the one the
        // disposed thread had. A stale QsbrThread that went on reporting would
        // write its successor's word, and could end a grace period while the
        // successor still held a pointer.
        using var qsbr = new Qsbr();
        QsbrThread first = qsbr.Register("first");
        first.Dispose();
        using QsbrThread second = qsbr.Register("second");
        second.Offline();

        Assert.ThrowsAny<Exception>(first.Online);
        Assert.ThrowsAny<Exception>(first.QuiescentState);
        Assert.ThrowsAny<Exception>(first.Offline);
        Assert.False(second.IsOnline);
    }
}

[Collection(Serial.Name)]
public class QsbrWaitTests
{
    [Fact]
    public unsafe void LongGracePeriod_SleepsInsteadOfBurningACore()
    {
        using var qsbr = new Qsbr();
        using var reader = new RcuReader(qsbr);
        TimeSpan cpu = default, wall = default;
        var sync = new Thread(() =>
        {
            TimeSpan c0 = ThreadCpuTime();
            var sw = Stopwatch.StartNew();
            qsbr.Synchronize();
            wall = sw.Elapsed;
            cpu = ThreadCpuTime() - c0;
        });
        sync.Start();
        Thread.Sleep(400);
        reader.Run(t => t.QuiescentState()).Wait();
        sync.Join();
        Assert.True(wall >= TimeSpan.FromMilliseconds(350), $"waited only {wall.TotalMilliseconds} ms");
        Assert.True(cpu < wall * 0.1, $"used {cpu.TotalMilliseconds:F1} ms of CPU in a {wall.TotalMilliseconds:F0} ms wait");
    }

    /// <summary>The calling thread's CPU time, from the kernel (utime + stime in /proc, clock ticks).</summary>
    private static TimeSpan ThreadCpuTime()
    {
        string stat = File.ReadAllText("/proc/thread-self/stat");
        string[] f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        long ticks = long.Parse(f[11]) + long.Parse(f[12]); // fields 14 and 15 of stat(5)
        return TimeSpan.FromSeconds(ticks / 100.0);         // USER_HZ is 100 on Linux
    }
}
