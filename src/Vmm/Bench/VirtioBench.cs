using System.Globalization;
using System.Text;
using System.Text.Json;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Vmm.Loader;

namespace Sharpvisor.Vmm.Bench;

/// <summary>What <c>sharpvisor bench virtio</c> was asked for.</summary>
public sealed record VirtioBenchOptions(string GuestPath, int Requests, long DiskBytes, EngineKind Engine, bool Json, string? PlotPath, bool LowLatency);

/// <summary>
/// <c>sharpvisor bench virtio</c> (issue 13, section 5): a guest driving a
/// virtio-blk device over a disk image in the page cache, 4 KiB random reads,
/// each figure against a host floor measured in the same run: QD1 latency
/// against an eventfd round trip with a pread, QD32 throughput against a
/// thread doing the preads in a loop, and the doorbell's cost on the vCPU
/// against LHCALL_NOTIFY and plain eventfd writes.
/// </summary>
public static class VirtioBench
{
    /// <summary>
    /// Untimed rounds of each loop before the timed ones, in each VM (and its
    /// floor). The engines compile a block after 64 runs, and a block the
    /// timed part meets first would be compiled inside it, milliseconds on the
    /// vCPU's thread: so each warm-up runs its loop's rarest path 64 times or
    /// more (QD1: the whole-block check of every 16th read; QD32: the sleep,
    /// about once per 32 reads).
    /// </summary>
    public const int Qd1Warmup = 1200, Qd32Warmup = 4096, DoorbellWarmup = 200;

    /// <summary>Most requests in flight in the QD32 row (vblkbench.c's DEPTH).</summary>
    public const int QueueDepth = 32;

    public const double Qd1Target = 1.3, Qd32Target = 0.5;

    // The rows' names, which are also the keys of --json.
    internal const string Qd1Floor = "host: eventfd, pread 4 KiB, eventfd";
    internal const string BareWrite = "bare eventfd write";
    internal const string SleeperWrite = "eventfd write, reader asleep";
    internal const string Qd1 = "guest QD1 read, irq";
    internal const string Qd1Kick = "guest QD1: kick";
    internal const string Qd1Wait = "guest QD1: kick to wake";
    internal const string Qd1After = "guest QD1: wake to done";
    internal const string Bracket = "guest rdtsc bracket";
    internal const string Notify = "guest LHCALL_NOTIFY of the doorbell";
    internal const string Store = "guest QueueNotify store";
    internal const string NoQueue = "guest QueueNotify store, no such queue";

    public static int Run(VirtioBenchOptions o, TextWriter stdout, TextWriter stderr, bool progressOnTerminal)
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
        var progress = new ProgressBar(stderr, NotifyBench.Rounds * Plan.Length, progressOnTerminal);
        try
        {
            using BenchDisk disk = BenchDisk.Create(Path.GetTempPath(), o.DiskBytes);
            Report report = Measure(o, disk, progress);
            progress.Done();
            if (o.Json) stdout.WriteLine(Json(report, mode, o));
            else stdout.Write(Table(report, mode, o));
            if (o.PlotPath is string plot)
                File.WriteAllText(plot, Plot(report, mode, o));
            return 0;
        }
        catch (ImageException e)
        {
            progress.Done();
            stderr.WriteLine($"sharpvisor: {e.Message}");
            return (int)e.Status;
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or UnauthorizedAccessException)
        {
            progress.Done();
            stderr.WriteLine($"sharpvisor: bench virtio: {Launcher.Usage.OneLine(e.Message)}");
            return (int)ExitStatus.Internal;
        }
    }

    /// <summary>What one round measures, in order: floors first, each just before what is compared with it.</summary>
    private static readonly string[] Plan =
        [Qd1Floor, Qd1, "host pread loop", "guest QD32", BareWrite, SleeperWrite, Bracket, NoQueue, Notify, Store];

    /// <summary>Every round's results, by row.</summary>
    internal sealed class Report
    {
        public readonly List<HostRoundTrip> Qd1Floor = [];
        public readonly List<VirtioRun> Qd1 = [];
        public readonly List<HostReadLoop> Qd32Floor = [];
        public readonly List<VirtioRun> Qd32 = [];
        public readonly List<HdrHistogram.LongHistogram> Bare = [], Sleeper = [];
        public readonly List<VirtioRun> Bracket = [], NoQueue = [], Notify = [], Store = [];
        public IReadOnlyList<BenchRow> Rows = [];
        public string Engine = "";
    }

    private static Report Measure(VirtioBenchOptions o, BenchDisk disk, ProgressBar progress)
    {
        var m = new VirtioMeasurements(o.GuestPath, o.Engine, disk);
        var r = new Report { Engine = Launcher.EngineNames.Name(o.Engine) };
        int step = 0;
        // Every row in NotifyBench.Rounds slices, all rows in turn in each
        // round, as bench notify does: a row and its floor share the
        // machine's slow and quiet minutes, and each ratio is the median of
        // the rounds' ratios.
        for (int round = 0; round < NotifyBench.Rounds; round++)
        {
            int n = o.Requests / NotifyBench.Rounds + (round < o.Requests % NotifyBench.Rounds ? 1 : 0);
            if (n == 0) continue;
            uint seed = 0x5eed0000u + (uint)round;
            void Show(int i) => progress.Show(step++, $"{Plan[i]} ({round + 1}/{NotifyBench.Rounds})");
            Show(0); r.Qd1Floor.Add(m.RoundTrip(n, Qd1Warmup, seed));
            Show(1); r.Qd1.Add(m.Guest(VirtioGuestMode.Qd1, n, Qd1Warmup, seed));
            Show(2); r.Qd32Floor.Add(m.ReadLoop(n, Qd32Warmup, seed));
            Show(3); r.Qd32.Add(m.Guest(VirtioGuestMode.Qd32, n, Qd32Warmup, seed));
            Show(4); r.Bare.Add(new NotifyMeasurements(o.GuestPath, n, 0, CancellationToken.None).BareWrite());
            Show(5); r.Sleeper.Add(m.WriteToSleeper(n, DoorbellWarmup));
            Show(6); r.Bracket.Add(m.Guest(VirtioGuestMode.Bracket, n, DoorbellWarmup, seed));
            Show(7); r.NoQueue.Add(m.Guest(VirtioGuestMode.DoorbellNoQueue, n, DoorbellWarmup, seed));
            Show(8); r.Notify.Add(m.Guest(VirtioGuestMode.DoorbellNotify, n, DoorbellWarmup, seed));
            Show(9); r.Store.Add(m.Guest(VirtioGuestMode.DoorbellStore, n, DoorbellWarmup, seed));
        }
        CheckReads("QD1", r.Qd1, o.Requests);
        CheckReads("QD32", r.Qd32, o.Requests);
        static BenchRow Row(string name, string group, IReadOnlyList<HdrHistogram.LongHistogram> rounds, string? floor = null, double? target = null) =>
            new(name, group, BenchReport.Merge(rounds), floor, target) { Rounds = rounds };
        r.Rows =
        [
            Row(Qd1Floor, "floor", [.. r.Qd1Floor.Select(x => x.Latency)]),
            Row(BareWrite, "floor", r.Bare),
            Row(SleeperWrite, "floor", r.Sleeper),
            Row(Qd1, "qd1", [.. r.Qd1.Select(x => x.Samples)], Qd1Floor, Qd1Target),
            Row(Qd1Kick, "qd1 part", [.. r.Qd1.Select(x => x.Kick!)]),
            Row(Qd1Wait, "qd1 part", [.. r.Qd1.Select(x => x.Wait!)]),
            Row(Qd1After, "qd1 part", [.. r.Qd1.Select(x => x.AfterWake!)]),
            Row(Bracket, "vcpu cost", [.. r.Bracket.Select(x => x.Samples)]),
            Row(NoQueue, "vcpu cost", [.. r.NoQueue.Select(x => x.Samples)]),
            Row(Notify, "vcpu cost", [.. r.Notify.Select(x => x.Samples)], SleeperWrite),
            Row(Store, "vcpu cost", [.. r.Store.Select(x => x.Samples)], SleeperWrite),
        ];
        return r;
    }

    /// <summary>A broken path must not pass for a fast one: every read completed, served by the device, with its status OK and its data the pattern.</summary>
    private static void CheckReads(string row, List<VirtioRun> runs, int requests)
    {
        int completed = runs.Sum(x => x.Completed), served = runs.Sum(x => x.DeviceServed);
        int errors = runs.Sum(x => x.StatusErrors), wrong = runs.Sum(x => x.Mismatches);
        if (completed != requests || served != requests)
            throw new InvalidOperationException($"{row}: {completed} reads completed and the device served {served}, of {requests}");
        if (errors != 0 || wrong != 0)
            throw new InvalidOperationException($"{row}: {errors} reads failed and {wrong} read data other than the disk's (of {requests})");
    }

    private static BenchRow RowNamed(Report r, string name) => r.Rows.Single(x => x.Name == name);

    /// <summary>A p50 ratio between two rows, paired by round.</summary>
    private static double? P50Ratio(Report r, string row, string floor) => BenchReport.Ratio(RowNamed(r, row) with { Floor = floor }, r.Rows);

    private static double Rate(int count, long ns) => ns <= 0 ? 0 : count * 1e9 / ns;

    private static double Qd32Rate(Report r) => Rate(r.Qd32.Sum(x => x.Count), r.Qd32.Sum(x => x.ElapsedNs));

    private static double HostRate(Report r) => Rate(r.Qd32Floor.Sum(x => x.Count), r.Qd32Floor.Sum(x => x.ElapsedNs));

    /// <summary>The QD32 rate against the host loop's, the median of the rounds' ratios.</summary>
    private static double? Qd32Ratio(Report r) =>
        BenchReport.MedianRatio(r.Qd32.Zip(r.Qd32Floor, (vm, host) => (Rate(vm.Count, vm.ElapsedNs), Rate(host.Count, host.ElapsedNs))));

    /// <summary>CPU nanoseconds per request of a VM row, between its marks: the process's, the vCPU thread's, the queue thread's.</summary>
    private static (double Process, double Vcpu, double Device) CpuPerRequest(List<VirtioRun> runs)
    {
        double n = Math.Max(1, runs.Sum(x => x.Count));
        return (runs.Sum(x => x.Marked.ProcessNs) / n, runs.Sum(x => x.Marked.VcpuNs) / n, runs.Sum(x => x.Marked.DeviceNs) / n);
    }

    private static double PerRequest(List<VirtioRun> runs, Func<MarkSample, long> counter) =>
        runs.Sum(x => counter(x.Marked)) / (double)Math.Max(1, runs.Sum(x => x.Count));

    private static string Verdict(bool met) => met ? "met" : "missed";

    internal static string Table(Report r, string mode, VirtioBenchOptions o)
    {
        var s = new StringBuilder();
        s.AppendLine(CultureInfo.InvariantCulture,
            $"mode: {mode}; engine {r.Engine}; {o.Requests} requests per row, in {NotifyBench.Rounds} interleaved rounds, each VM and floor after {Qd1Warmup} (QD1), {Qd32Warmup} (QD32) or {DoorbellWarmup} (doorbell) untimed; disk {o.DiskBytes >> 20} MiB in the page cache; 4 KiB random reads; times in µs");
        BenchReport.AppendTable(s, r.Rows);
        s.AppendLine();

        double vmRate = Qd32Rate(r), hostRate = HostRate(r);
        double? q32 = Qd32Ratio(r);
        s.AppendLine("| throughput | requests/s | vs | ratio (median of rounds) | target |");
        s.AppendLine("|---|---:|---|---:|---|");
        s.AppendLine(CultureInfo.InvariantCulture, $"| host pread loop, one thread | {vmRateText(hostRate)} | | | |");
        s.AppendLine(CultureInfo.InvariantCulture,
            $"| guest QD{r.Qd32.Max(x => x.MaxInFlight)}{(r.Qd32.All(x => x.EventIdx) ? ", EVENT_IDX" : "")} | {vmRateText(vmRate)} | host pread loop, one thread | {(q32 is double q ? BenchReport.Fixed(q, "0.00") : "")} | {(q32 is double q2 ? $">= {BenchReport.Fixed(Qd32Target, "0.0")}: {Verdict(q2 >= Qd32Target)}" : "")} |");
        s.AppendLine();

        (double p, double v, double d) = CpuPerRequest(r.Qd1);
        double floorN = Math.Max(1, r.Qd1Floor.Sum(x => x.Latency.TotalCount));
        s.AppendLine(CultureInfo.InvariantCulture,
            $"QD1 CPU per request: process {BenchReport.Us(p)} µs (vCPU thread {BenchReport.Us(v)}, device thread {BenchReport.Us(d)}); "
            + $"floor: process {BenchReport.Us(r.Qd1Floor.Sum(x => x.ProcessNs) / floorN)} µs (waker {BenchReport.Us(r.Qd1Floor.Sum(x => x.WakerNs) / floorN)}, reader {BenchReport.Us(r.Qd1Floor.Sum(x => x.ReaderNs) / floorN)}); "
            + $"doorbells per request {BenchReport.Fixed(PerRequest(r.Qd1, x => x.Doorbells), "0.00")}, interrupts {BenchReport.Fixed(PerRequest(r.Qd1, x => x.Interrupts), "0.00")}");
        (p, v, d) = CpuPerRequest(r.Qd32);
        double hostCpu = r.Qd32Floor.Sum(x => x.CpuNs) / (double)Math.Max(1, r.Qd32Floor.Sum(x => x.Count));
        s.AppendLine(CultureInfo.InvariantCulture,
            $"QD32 CPU per request: process {BenchReport.Us(p)} µs (vCPU thread {BenchReport.Us(v)}, device thread {BenchReport.Us(d)}); host loop {BenchReport.Us(hostCpu)} µs; "
            + $"doorbells per request {BenchReport.Fixed(PerRequest(r.Qd32, x => x.Doorbells), "0.000")}, interrupts {BenchReport.Fixed(PerRequest(r.Qd32, x => x.Interrupts), "0.000")}");
        s.AppendLine(CultureInfo.InvariantCulture,
            $"doorbell on the vCPU (p50s, median of rounds; {VirtioMeasurements.DoorbellGapNs / 1000} µs between rings): QueueNotify store / LHCALL_NOTIFY {Ratio(P50Ratio(r, Store, Notify))}, "
            + $"store / bare eventfd write {Ratio(P50Ratio(r, Store, BareWrite))}, store / eventfd write to a sleeping reader {Ratio(P50Ratio(r, Store, SleeperWrite))}, "
            + $"LHCALL_NOTIFY / bare eventfd write {Ratio(P50Ratio(r, Notify, BareWrite))}");
        int checkedWhole = r.Qd1.Sum(x => x.FullChecks) + r.Qd32.Sum(x => x.FullChecks);
        s.AppendLine(CultureInfo.InvariantCulture,
            $"checks: {2 * o.Requests} timed reads served by the device with status OK, their first and last words the disk's; every {VirtioMeasurements.FullCheckEvery}th read compared whole, untimed ones too ({checkedWhole} in all)");
        return s.ToString();

        static string vmRateText(double rate) => BenchReport.Fixed(rate, "0");
        static string Ratio(double? x) => x is double q ? BenchReport.Fixed(q, "0.00") : "n/a";
    }

    internal static string Json(Report r, string mode, VirtioBenchOptions o) =>
        BenchReport.JsonObject(w =>
        {
            w.WriteString("mode", mode);
            w.WriteString("engine", r.Engine);
            w.WriteNumber("requests", o.Requests);
            w.WriteNumber("rounds", NotifyBench.Rounds);
            w.WriteStartObject("warmup");
            w.WriteNumber("qd1", Qd1Warmup);
            w.WriteNumber("qd32", Qd32Warmup);
            w.WriteNumber("doorbell", DoorbellWarmup);
            w.WriteEndObject();
            w.WriteNumber("disk_bytes", o.DiskBytes);
            w.WriteNumber("block_bytes", BenchDisk.BlockBytes);
            BenchReport.WriteMeasurements(w, r.Rows);

            double? q1 = BenchReport.Ratio(RowNamed(r, Qd1), r.Rows);
            w.WriteStartObject("qd1");
            WriteReads(w, r.Qd1);
            BenchReport.WriteNumberOrNull(w, "p50_ratio", q1 is double a ? Math.Round(a, 3) : null);
            w.WriteNumber("target", Qd1Target);
            if (q1 is double a2) w.WriteBoolean("met", a2 <= Qd1Target); else w.WriteNull("met");
            WriteCpu(w, "cpu_ns_per_request", r.Qd1);
            double floorN = Math.Max(1, r.Qd1Floor.Sum(x => x.Latency.TotalCount));
            w.WriteStartObject("floor_cpu_ns_per_request");
            w.WriteNumber("process", Math.Round(r.Qd1Floor.Sum(x => x.ProcessNs) / floorN));
            w.WriteNumber("waker_thread", Math.Round(r.Qd1Floor.Sum(x => x.WakerNs) / floorN));
            w.WriteNumber("reader_thread", Math.Round(r.Qd1Floor.Sum(x => x.ReaderNs) / floorN));
            w.WriteEndObject();
            w.WriteEndObject();

            double? q32 = Qd32Ratio(r);
            w.WriteStartObject("qd32");
            WriteReads(w, r.Qd32);
            w.WriteNumber("queue_depth", r.Qd32.Max(x => x.MaxInFlight));
            w.WriteBoolean("event_idx", r.Qd32.All(x => x.EventIdx));
            w.WriteNumber("per_second", Math.Round(Qd32Rate(r)));
            w.WriteNumber("host_per_second", Math.Round(HostRate(r)));
            BenchReport.WriteNumberOrNull(w, "ratio", q32 is double b ? Math.Round(b, 3) : null);
            w.WriteNumber("target", Qd32Target);
            if (q32 is double b2) w.WriteBoolean("met", b2 >= Qd32Target); else w.WriteNull("met");
            WriteCpu(w, "cpu_ns_per_request", r.Qd32);
            w.WriteNumber("host_cpu_ns_per_request", Math.Round(r.Qd32Floor.Sum(x => x.CpuNs) / (double)Math.Max(1, r.Qd32Floor.Sum(x => x.Count))));
            w.WriteEndObject();

            w.WriteStartObject("doorbell");
            w.WriteNumber("gap_ns", VirtioMeasurements.DoorbellGapNs);
            w.WriteNumber("stores_delivered", r.Store.Sum(x => x.Marked.Doorbells));
            w.WriteNumber("notifies_delivered", r.Notify.Sum(x => x.Marked.Doorbells));
            foreach ((string key, string row, string floor) in new[]
            {
                ("store_vs_notify", Store, Notify), ("store_vs_bare_write", Store, BareWrite),
                ("store_vs_write_to_sleeper", Store, SleeperWrite), ("notify_vs_bare_write", Notify, BareWrite),
            })
                BenchReport.WriteNumberOrNull(w, key, P50Ratio(r, row, floor) is double x ? Math.Round(x, 3) : null);
            w.WriteEndObject();
        });

    private static void WriteReads(Utf8JsonWriter w, List<VirtioRun> runs)
    {
        w.WriteNumber("completed", runs.Sum(x => x.Completed));
        w.WriteNumber("device_served", runs.Sum(x => x.DeviceServed));
        w.WriteNumber("status_errors", runs.Sum(x => x.StatusErrors));
        w.WriteNumber("data_mismatches", runs.Sum(x => x.Mismatches));
        w.WriteNumber("checked_whole", runs.Sum(x => x.FullChecks));
        w.WriteNumber("doorbells", runs.Sum(x => x.Marked.Doorbells));
        w.WriteNumber("interrupts", runs.Sum(x => x.Marked.Interrupts));
    }

    private static void WriteCpu(Utf8JsonWriter w, string name, List<VirtioRun> runs)
    {
        (double p, double v, double d) = CpuPerRequest(runs);
        w.WriteStartObject(name);
        w.WriteNumber("process", Math.Round(p));
        w.WriteNumber("vcpu_thread", Math.Round(v));
        w.WriteNumber("device_thread", Math.Round(d));
        w.WriteEndObject();
    }

    internal static string Plot(Report r, string mode, VirtioBenchOptions o) =>
        LatencyPlot.Svg($"sharpvisor bench virtio ({mode} mode, engine {r.Engine}, {o.Requests} requests): percentile against latency, each floor dashed",
        [
            new("QD1 4 KiB random read, interrupt-driven", RowNamed(r, Qd1Floor), [RowNamed(r, Qd1)]),
            new("where a QD1 request's time goes", RowNamed(r, Qd1), [RowNamed(r, Qd1Kick), RowNamed(r, Qd1Wait), RowNamed(r, Qd1After)]),
            new("the doorbell's cost on the vCPU", RowNamed(r, SleeperWrite), [RowNamed(r, Store), RowNamed(r, Notify), RowNamed(r, BareWrite), RowNamed(r, Bracket)]),
        ]);
}
