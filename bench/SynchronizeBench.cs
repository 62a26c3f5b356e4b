using System.Diagnostics;
using System.Runtime.CompilerServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using Perfolizer.Mathematics.OutlierDetection;
using Sharpvisor.Native;

namespace Sharpvisor.Bench;

/// <summary>
/// Grace-period latency: one <see cref="Qsbr.Synchronize"/> while two reader
/// threads (stand-ins for vCPUs) each run about 1 µs of work between
/// quiescent states. Each iteration is a single call, so the percentile
/// columns are percentiles of single calls; read P50 and P90. The Ratio
/// column compares means, which the millisecond tail dominates.
/// </summary>
/// <remarks>
/// On a 2-core machine the two readers and this thread oversubscribe the
/// CPUs: a grace period usually waits on a reader that is preempted on its
/// own CPU, and must hand the CPU over and be woken when the reader reports.
/// The reference row is what such a handover costs done the plain way, with a
/// blocking wait and a wakeup: a round trip to a helper thread through two
/// eventfds (wake it through one, block until it answers through the other),
/// measured under the same load, so that the helper too has to displace a
/// spinning reader. A grace period whose readers all run elsewhere needs no
/// wakeup and beats it.
/// </remarks>
[Config(typeof(PercentileConfig))]
public class SynchronizeBench
{
    private const int Readers = 2;

    private sealed class PercentileConfig : ManualConfig
    {
        public PercentileConfig()
        {
            // A job of its own, whatever --job says (a job given there runs as well, as another row).
            AddJob(Job.Default
                .WithId("PerCall")
                .WithInvocationCount(1)
                .WithUnrollFactor(1)
                .WithWarmupCount(50)
                .WithIterationCount(500)
                // The slow calls are the point of a latency distribution: keep them.
                .WithOutlierMode(OutlierMode.DontRemove)
                // No forced collection before each iteration (the default, for
                // benchmarks that allocate; these do not): it would stop and
                // restart the spinning readers before every call.
                .WithGcForce(false));
            AddColumn(StatisticColumn.Median, StatisticColumn.P50, StatisticColumn.P90, StatisticColumn.P95, StatisticColumn.Max);
        }
    }

    private Qsbr _qsbr = null!;
    private readonly Thread[] _readers = new Thread[Readers];
    private CountdownEvent _readersOnline = null!;
    private long _spinsPerMicrosecond;
    private volatile bool _stop;

    private EventFd _ping = null!, _pong = null!;
    private Thread _echo = null!;

    [GlobalSetup]
    public void Setup()
    {
        _spinsPerMicrosecond = CalibrateSpin();
        Console.WriteLine($"// reader work: {_spinsPerMicrosecond} spin iterations per µs");
        _qsbr = new Qsbr();
        _readersOnline = new CountdownEvent(Readers);
        for (int i = 0; i < Readers; i++)
        {
            _readers[i] = new Thread(ReaderLoop) { IsBackground = true, Name = $"reader {i}" };
            _readers[i].Start();
        }
        _readersOnline.Wait();

        _ping = EventFd.Create();
        _pong = EventFd.Create();
        _echo = new Thread(EchoLoop) { IsBackground = true, Name = "echo" };
        _echo.Start();
    }

    [Benchmark(Baseline = true)]
    public ulong EventFdRoundTrip()
    {
        _ping.Signal();
        return _pong.Read();
    }

    [Benchmark]
    public void Synchronize() => _qsbr.Synchronize();

    [GlobalCleanup]
    public void Cleanup()
    {
        _stop = true;
        _ping.Signal(); // the echo thread is blocked reading it
        _echo.Join();
        foreach (Thread t in _readers) t.Join();
        _qsbr.Dispose();
        _ping.Dispose();
        _pong.Dispose();
        _readersOnline.Dispose();
    }

    private void ReaderLoop()
    {
        using QsbrThread me = _qsbr.Register();
        _readersOnline.Signal();
        while (!_stop)
        {
            Spin(_spinsPerMicrosecond);
            me.QuiescentState();
        }
    }

    private void EchoLoop()
    {
        while (true)
        {
            _ping.Read();
            if (_stop) return;
            _pong.Signal();
        }
    }

    /// <summary>Spin iterations in 1 µs: the fastest of several 1 ms runs, taken before the readers start.</summary>
    private static long CalibrateSpin()
    {
        const long probe = 1_000_000;
        double best = double.MaxValue;
        for (int i = 0; i < 20; i++)
        {
            long start = Stopwatch.GetTimestamp();
            Spin(probe);
            best = Math.Min(best, Stopwatch.GetElapsedTime(start).TotalMicroseconds);
        }
        return (long)(probe / best);
    }

    /// <summary>
    /// Busy work: a dependent chain of multiply-adds (an LCG step). It returns
    /// the result and is never inlined, so the JIT cannot drop the loop; it is
    /// optimized from the first call, so calibration and readers run the same code.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static ulong Spin(long iterations)
    {
        ulong x = 1;
        for (long i = 0; i < iterations; i++) x = x * 6364136223846793005UL + 1442695040888963407UL;
        return x;
    }
}
