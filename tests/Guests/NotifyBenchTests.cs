using HdrHistogram;
using System.Text;
using System.Text.Json;
using System.Xml.Linq;
using Sharpvisor.Vmm.Bench;
using Sharpvisor.Vmm.Launcher;

namespace Sharpvisor.Tests.Guests;

/// <summary>
/// <c>sharpvisor bench notify</c> in process with tiny counts: the rows, the
/// JSON's fields and the SVG's shape. No timing is asserted: the figures
/// depend on the machine.
/// </summary>
public sealed class NotifyBenchTests
{
    private static readonly string[] Rows =
    [
        "raw one-way, read", "raw one-way, epoll_wait", "raw one-way, busy-poll", "raw round trip",
        "bare eventfd write", "host clock bracket",
        "guest notify -> read", "guest notify -> epoll_wait", "guest notify -> busy-poll", "guest notify -> other process, read",
        "guest notify -> irq -> halt",
        "guest rdtsc bracket", "guest notify, 1 attached", "guest notify, 16 attached", "guest notify, 256 attached",
    ];

    private static (int Status, string Stdout, string Stderr) Bench(params string[] extra)
    {
        GuestBinaries.RequireBuilt();
        var stdout = new MemoryStream();
        var stderr = new StringWriter();
        int status = Cli.Execute(["bench", "notify", "--iterations", "200", "--gap", "5", "--guest", GuestBinaries.Guest("notifybench"), .. extra], stdout, stderr);
        return (status, Encoding.UTF8.GetString(stdout.ToArray()), stderr.ToString());
    }

    [Fact]
    public void Table_HasEveryMeasurement_WithItsFloorAndTargets()
    {
        (int status, string stdout, string stderr) = Bench();
        Assert.True(status == 0, stderr);
        Assert.Equal("", stderr); // no progress bar when stderr is not a terminal
        string[] lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("mode: default; 200 iterations per row, in 20 interleaved rounds", lines[0]);
        Assert.Equal("| measurement | group | p50 | p90 | p99 | p99.9 | max | vs | p50 ratio (median of rounds) | target |", lines[1]);
        string[] names = [.. lines.Skip(3).TakeWhile(l => l.StartsWith('|')).Select(l => l.Split('|')[1].Trim())];
        Assert.Equal(Rows, names);
        Assert.Contains(lines, l => l.StartsWith("| guest notify -> read | one-way |") && l.Contains("| raw one-way, read |") && l.Contains("<= 1.2: "));
        Assert.Contains(lines, l => l.StartsWith("| guest notify -> irq -> halt |") && l.Contains("<= 1.3: "));
        Assert.Contains(lines, l => l.StartsWith("| guest notify, 16 attached |") && l.Contains("<= 1.1: "));
        string churn = lines[^1];
        Assert.StartsWith("attach/detach under load (1 vCPU, 100000 notifies, the map churned in turns of 20 ms; median rates of 1000-notify chunks): ", churn);
        Assert.Contains("(target <= 5%), lost 0: ", churn); // a lost notification is a bug, not noise
    }

    [Fact]
    public void Json_ParsesWithTheExpectedFields_AndPlotIsAnSvgWithLines()
    {
        string plot = Path.Combine(Path.GetTempPath(), $"notify-bench-{Guid.NewGuid():n}.svg");
        try
        {
            (int status, string stdout, string stderr) = Bench("--json", "--plot", plot);
            Assert.True(status == 0, stderr);
            using JsonDocument doc = JsonDocument.Parse(stdout);
            JsonElement root = doc.RootElement;
            Assert.Equal("default", root.GetProperty("mode").GetString());
            Assert.Equal(200, root.GetProperty("iterations").GetInt32());
            JsonElement[] rows = [.. root.GetProperty("measurements").EnumerateArray()];
            Assert.Equal(Rows, rows.Select(r => r.GetProperty("name").GetString()));
            foreach (JsonElement r in rows)
            {
                Assert.Equal(200, r.GetProperty("count").GetInt64());
                foreach (string f in new[] { "p50_ns", "p90_ns", "p99_ns", "p99_9_ns", "max_ns" })
                    Assert.True(r.GetProperty(f).GetInt64() >= 0, f);
                Assert.True(r.GetProperty("p50_ns").GetInt64() <= r.GetProperty("max_ns").GetInt64());
                bool isFloor = r.GetProperty("group").GetString() == "floor";
                Assert.Equal(isFloor, r.GetProperty("floor").ValueKind == JsonValueKind.Null);
                Assert.Equal(isFloor, r.GetProperty("ratio").ValueKind == JsonValueKind.Null);
            }
            JsonElement rt = rows.Single(r => r.GetProperty("name").GetString() == "guest notify -> irq -> halt");
            Assert.Equal(1.3, rt.GetProperty("target").GetDouble());
            Assert.True(rt.GetProperty("met").ValueKind is JsonValueKind.True or JsonValueKind.False);

            JsonElement churn = root.GetProperty("attach_detach");
            Assert.Equal(0, churn.GetProperty("lost").GetInt64());
            Assert.True(churn.GetProperty("updates").GetInt64() > 0);
            Assert.Equal(0.05, churn.GetProperty("target_drop").GetDouble());
            Assert.Equal(20, churn.GetProperty("phase_ms").GetInt32());
            Assert.Equal(1000, churn.GetProperty("chunk").GetInt32());
            Assert.True(churn.GetProperty("quiet_chunks").GetInt32() + churn.GetProperty("busy_chunks").GetInt32() <= 100);
            Assert.True(churn.GetProperty("met").ValueKind is JsonValueKind.True or JsonValueKind.False);

            XDocument svg = XDocument.Load(plot);
            XNamespace ns = "http://www.w3.org/2000/svg";
            Assert.Equal(ns + "svg", svg.Root!.Name);
            // OxyPlot's SVG exporter draws each series as a polyline.
            Assert.True(svg.Descendants(ns + "polyline").Count() >= Rows.Length);
            Assert.Contains(svg.Descendants(ns + "text"), t => t.Value == "guest notify -> irq -> halt");
        }
        finally
        {
            File.Delete(plot);
        }
    }

    [Fact]
    public void ChurnRates_CountOnlyChunksWhollyInsideAPhase_AfterItSettled()
    {
        // Chunks of 1000 notifies, 1 ms each (1 M/s) while quiet, 1.25 ms (0.8 M/s)
        // while busy; phases of 10 ms, settling 2 ms.
        var phases = new List<ChurnPhase> { new(0, 10_000_000, false), new(10_000_000, 20_000_000, true), new(20_000_000, 30_000_000, false) };
        var stamps = new List<long> { 0 };
        while (stamps[^1] < 30_000_000)
        {
            long t = stamps[^1];
            bool churning = t >= 10_000_000 && t < 20_000_000;
            stamps.Add(t + (churning ? 1_250_000 : 1_000_000));
        }
        var run = new ChurnRun(1000 * (stamps.Count - 1), 1000, [.. stamps], phases, Updates: 42, Lost: 0);
        List<double> quiet = run.Rates(busy: false, settleNs: 2_000_000), busy = run.Rates(busy: true, settleNs: 2_000_000);
        Assert.All(quiet, r => Assert.Equal(1e6, r, 1e-3));
        Assert.All(busy, r => Assert.Equal(0.8e6, r, 1e-3));
        // Quiet chunks start at 2..9 and 22..29 ms (those at 0, 1, 20 and 21
        // are settling); busy ones at 12.5, 13.75 .. 18.75 (10 and 11.25 are settling).
        Assert.Equal(8 + 8, quiet.Count);
        Assert.Equal(6, busy.Count);
    }

    [Fact]
    public void Ratio_IsTheMedianOfRatiosPairedByRound()
    {
        // The row is 1.1x its floor in rounds 1 and 3; in round 2 a slow second
        // caught the row alone (and the floor was slow in round 3). Merged,
        // that is 2200 against 1000: 2.2; paired by round, 1.1, 2.2, 1.1.
        static LongHistogram Of(params long[] values)
        {
            var h = BenchReport.NewHistogram();
            foreach (long v in values) h.RecordValue(v);
            return h;
        }
        LongHistogram[] floor = [Of(1000, 1000, 1000), Of(1000, 1000, 1000), Of(2000, 2000, 2000)];
        LongHistogram[] row = [Of(1100, 1100, 1100), Of(2200, 2200, 2200), Of(2200, 2200, 2200)];
        static LongHistogram Merge(LongHistogram[] hs) { var m = BenchReport.NewHistogram(); foreach (var h in hs) m.Add(h); return m; }
        var f = new BenchRow("floor", "floor", Merge(floor), null, null) { Rounds = floor };
        var r = new BenchRow("row", "g", Merge(row), "floor", 1.2) { Rounds = row };
        Assert.Equal(1.1, BenchReport.Ratio(r, [f, r])!.Value, 2);
        Assert.Null(BenchReport.Ratio(f, [f, r]));
    }

    [Fact]
    public void MissingGuest_Exits66_WithOneLine()
    {
        var stderr = new StringWriter();
        int status = Cli.Execute(["bench", "notify", "--guest", "/nonexistent/notifybench.elf"], new MemoryStream(), stderr);
        Assert.Equal(66, status);
        Assert.Equal("sharpvisor: /nonexistent/notifybench.elf: no such guest (build it with guests/build.sh, or give --guest PATH)\n", stderr.ToString());
    }

    [Fact]
    public void AnotherGuest_FailsWithOneLine_InsteadOfHanging()
    {
        GuestBinaries.RequireBuilt();
        var stderr = new StringWriter();
        int status = Cli.Execute(["bench", "notify", "--iterations", "10", "--guest", GuestBinaries.Guest("hello")], new MemoryStream(), stderr);
        Assert.Equal(70, status);
        Assert.Contains("is not the notifybench guest, or it stopped before the end of its mode", stderr.ToString());
    }

    [Fact]
    public void BenchAlone_IsAUsageError()
    {
        var stderr = new StringWriter();
        Assert.Equal(64, Cli.Execute(["bench"], new MemoryStream(), stderr));
        Assert.StartsWith("sharpvisor: Required command was not provided.", stderr.ToString());
    }
}
