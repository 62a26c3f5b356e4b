using System.Globalization;
using System.Text;
using System.Text.Json;
using HdrHistogram;

namespace Sharpvisor.Vmm.Bench;

/// <summary>What <c>sharpvisor bench notify</c> was asked for.</summary>
public sealed record NotifyBenchOptions(string GuestPath, int Iterations, int GapNs, bool Json, string? PlotPath, bool LowLatency);

/// <summary>
/// <c>sharpvisor bench notify</c>: every notification latency of issue 5
/// measured in one run, side by side with the floor (plain threads and
/// eventfds) measured in the same run and mode, as a table, JSON and an SVG plot.
/// </summary>
public static class NotifyBench
{
    /// <summary>Slices each row is taken in, interleaved with every other row.</summary>
    public const int Rounds = 20;

    public static int Run(NotifyBenchOptions o, TextWriter stdout, TextWriter stderr, bool progressOnTerminal)
    {
        if (!File.Exists(o.GuestPath))
        {
            stderr.WriteLine($"sharpvisor: {o.GuestPath}: no such guest (build it with guests/build.sh, or give --guest PATH)");
            return (int)ExitStatus.NoInput;
        }
        string? why = null;
        using LowLatency? hold = o.LowLatency ? LowLatency.TryHold(out why) : null;
        if (o.LowLatency && hold == null)
        {
            stderr.WriteLine($"sharpvisor: --low-latency: {why}");
            return (int)ExitStatus.Unavailable;
        }
        string mode = o.LowLatency ? "low-latency" : "default";
        if (NotifyMeasurements.Launcher() is not string launcher)
        {
            stderr.WriteLine("sharpvisor: bench notify: no sharpvisor executable to start as the other process (run the apphost or dist/sharpvisor)");
            return (int)ExitStatus.Unavailable;
        }

        // Every row is taken in Rounds slices, all rows in turn in each round,
        // and a row's slices are merged: a row and its floor then share the
        // machine's slow and quiet minutes alike (the host under CI runs other
        // VMs), instead of one catching a busy minute the other missed.
        NotifyMeasurements Slice(int round) =>
            new(o.GuestPath, o.Iterations / Rounds + (round < o.Iterations % Rounds ? 1 : 0), o.GapNs, CancellationToken.None);
        // Floors first, then what is compared with them; names are the keys of --json.
        var plan = new (string Name, string Group, Func<NotifyMeasurements, LongHistogram> Measure, string? Floor, double? Target)[]
        {
            ("raw one-way, read", "floor", m => m.RawOneWay(ReaderKind.Read), null, null),
            ("raw one-way, epoll_wait", "floor", m => m.RawOneWay(ReaderKind.Epoll), null, null),
            ("raw one-way, busy-poll", "floor", m => m.RawOneWay(ReaderKind.BusyPoll), null, null),
            ("raw round trip", "floor", m => m.RawRoundTrip(), null, null),
            ("bare eventfd write", "floor", m => m.BareWrite(), null, null),
            ("host clock bracket", "floor", m => m.HostBracket(), null, null),
            ("guest notify -> read", "one-way", m => m.GuestOneWay(ReaderKind.Read), "raw one-way, read", 1.2),
            ("guest notify -> epoll_wait", "one-way", m => m.GuestOneWay(ReaderKind.Epoll), "raw one-way, epoll_wait", null),
            ("guest notify -> busy-poll", "one-way", m => m.GuestOneWay(ReaderKind.BusyPoll), "raw one-way, busy-poll", null),
            ("guest notify -> other process, read", "one-way", m => m.GuestOtherProcess(launcher), "raw one-way, read", null),
            ("guest notify -> irq -> halt", "round trip", m => m.GuestRoundTrip(), "raw round trip", 1.3),
            ("guest rdtsc bracket", "vcpu cost", m => m.GuestNotifyCost(0), "host clock bracket", null),
            ("guest notify, 1 attached", "vcpu cost", m => m.GuestNotifyCost(1), "bare eventfd write", null),
            ("guest notify, 16 attached", "vcpu cost", m => m.GuestNotifyCost(16), "bare eventfd write", 1.1),
            ("guest notify, 256 attached", "vcpu cost", m => m.GuestNotifyCost(256), "bare eventfd write", null),
        };
        var progress = new ProgressBar(stderr, Rounds * plan.Length + 1, progressOnTerminal);
        List<LongHistogram>[] byRound = [.. plan.Select(_ => new List<LongHistogram>())];
        int step = 0;
        for (int round = 0; round < Rounds; round++)
        {
            NotifyMeasurements slice = Slice(round);
            if (slice.Iterations == 0) continue;
            for (int i = 0; i < plan.Length; i++)
            {
                progress.Show(step++, $"{plan[i].Name} ({round + 1}/{Rounds})");
                byRound[i].Add(plan[i].Measure(slice));
            }
        }
        var rows = new List<BenchRow>();
        for (int i = 0; i < plan.Length; i++)
        {
            rows.Add(new BenchRow(plan[i].Name, plan[i].Group, BenchReport.Merge(byRound[i]), plan[i].Floor, plan[i].Target) { Rounds = byRound[i] });
        }
        progress.Show(Rounds * plan.Length, "attach/detach under load");
        Churn churn = MeasureChurn(Slice(0), Math.Max(100_000, o.Iterations * 400));
        progress.Done();

        if (o.Json) stdout.WriteLine(Json(rows, churn, mode, o));
        else stdout.Write(Table(rows, churn, mode, o));
        if (o.PlotPath is string plot)
            File.WriteAllText(plot, NotifyPlot.Svg(rows, mode));
        return 0;
    }

    /// <summary>
    /// The attach/detach-under-load figures: median rates of the chunks timed
    /// while the churn thread was quiet and while it was busy, in one run.
    /// </summary>
    internal sealed record Churn(int Notifications, int QuietChunks, double QuietPerSecond, int BusyChunks, double ChurnPerSecond, long Updates, long Lost)
    {
        public const double Target = 0.05;
        /// <summary>Fewer chunks of either kind than this and the run says nothing.</summary>
        public const int MinChunks = 5;
        public bool Measured => QuietChunks >= MinChunks && BusyChunks >= MinChunks;
        public double Drop => Measured ? 1 - ChurnPerSecond / QuietPerSecond : 0;
        public bool Met => Measured && Drop <= Target && Lost == 0;
        public string Verdict => Lost != 0 ? "missed" : !Measured ? "run too short to compare" : Met ? "met" : "missed";
    }

    /// <summary>Notifies per timed chunk, and how long each phase of the churn thread lasts.</summary>
    internal const int ChurnChunk = 1000;
    internal const long ChurnPhaseNs = 20_000_000, ChurnSettleNs = 5_000_000;

    private static Churn MeasureChurn(NotifyMeasurements m, int count)
    {
        count -= count % ChurnChunk;
        // The first run pays for first calls (page faults in fresh guest RAM,
        // tiering where code is jitted): counted for losses, not timed.
        ChurnRun warmUp = m.Churn(ChurnChunk * 20, ChurnChunk, ChurnPhaseNs);
        ChurnRun run = m.Churn(count, ChurnChunk, ChurnPhaseNs);
        List<double> quiet = run.Rates(busy: false, ChurnSettleNs), busy = run.Rates(busy: true, ChurnSettleNs);
        static double Median(List<double> xs) => xs.Count == 0 ? 0 : xs.Order().ElementAt(xs.Count / 2);
        return new Churn(count, quiet.Count, Median(quiet), busy.Count, Median(busy), run.Updates, run.Lost + warmUp.Lost);
    }

    internal static string Table(IReadOnlyList<BenchRow> rows, Churn churn, string mode, NotifyBenchOptions o)
    {
        var s = new StringBuilder();
        s.AppendLine(CultureInfo.InvariantCulture, $"mode: {mode}; {o.Iterations} iterations per row, in {Rounds} interleaved rounds; gap {o.GapNs} ns between one-way and round-trip sends; times in µs");
        BenchReport.AppendTable(s, rows);
        s.AppendLine();
        s.AppendLine(CultureInfo.InvariantCulture,
            $"attach/detach under load (1 vCPU, {churn.Notifications} notifies, the map churned in turns of {ChurnPhaseNs / 1_000_000} ms; median rates of {ChurnChunk}-notify chunks): "
            + $"{churn.QuietPerSecond / 1e6:0.000} M/s quiet ({churn.QuietChunks} chunks), {churn.ChurnPerSecond / 1e6:0.000} M/s while a thread made {churn.Updates} map updates ({churn.BusyChunks} chunks); "
            + $"drop {churn.Drop * 100:0.0}% (target <= 5%), lost {churn.Lost}: {churn.Verdict}");
        return s.ToString();
    }

    internal static string Json(IReadOnlyList<BenchRow> rows, Churn churn, string mode, NotifyBenchOptions o) =>
        BenchReport.JsonObject(w =>
        {
            w.WriteString("mode", mode);
            w.WriteNumber("iterations", o.Iterations);
            w.WriteNumber("gap_ns", o.GapNs);
            BenchReport.WriteMeasurements(w, rows);
            w.WriteStartObject("attach_detach");
            w.WriteNumber("vcpus", 1);
            w.WriteNumber("notifications", churn.Notifications);
            w.WriteNumber("phase_ms", ChurnPhaseNs / 1_000_000);
            w.WriteNumber("chunk", ChurnChunk);
            w.WriteNumber("quiet_chunks", churn.QuietChunks);
            w.WriteNumber("busy_chunks", churn.BusyChunks);
            w.WriteNumber("quiet_per_second", Math.Round(churn.QuietPerSecond));
            w.WriteNumber("churn_per_second", Math.Round(churn.ChurnPerSecond));
            w.WriteNumber("updates", churn.Updates);
            w.WriteNumber("drop", Math.Round(churn.Drop, 4));
            w.WriteNumber("target_drop", Churn.Target);
            w.WriteNumber("lost", churn.Lost);
            w.WriteBoolean("met", churn.Met);
            w.WriteEndObject();
        });
}
