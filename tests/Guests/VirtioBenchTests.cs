using System.Text;
using System.Text.Json;
using System.Xml.Linq;
using Sharpvisor.Vmm.Launcher;

namespace Sharpvisor.Tests.Guests;

/// <summary>
/// <c>sharpvisor bench virtio</c> in process with small counts: the rows,
/// the JSON's fields, the checks that make a broken path fail, the SVG and
/// the usage errors. No timing is asserted: the figures depend on the
/// machine. What is asserted are counts the device and the guest keep
/// independently of each other (the used ring's idx, the map's deliveries,
/// the guest's own checks of the data against the disk's pattern).
/// </summary>
public sealed class VirtioBenchTests
{
    private const int Requests = 100;

    private static readonly string[] Rows =
    [
        "host: eventfd, pread 4 KiB, eventfd", "bare eventfd write", "eventfd write, reader asleep",
        "guest QD1 read, irq", "guest QD1: kick", "guest QD1: kick to wake", "guest QD1: wake to done",
        "guest rdtsc bracket", "guest QueueNotify store, no such queue", "guest LHCALL_NOTIFY of the doorbell", "guest QueueNotify store",
    ];

    private static (int Status, string Stdout, string Stderr) Bench(params string[] extra)
    {
        GuestBinaries.RequireBuilt();
        var stdout = new MemoryStream();
        var stderr = new StringWriter();
        int status = Cli.Execute(["bench", "virtio", "--disk-size", "8M", "--guest", GuestBinaries.Guest("vblkbench"), .. extra], stdout, stderr);
        return (status, Encoding.UTF8.GetString(stdout.ToArray()), stderr.ToString());
    }

    [Theory]
    [InlineData("threaded")]
    [InlineData("il")]
    public void Table_HasEveryRow_WithItsFloorAndTargets(string engine)
    {
        GuestBinaries.RequireEngine(engine);
        (int status, string stdout, string stderr) = Bench("--requests", $"{Requests}", "--engine", engine);
        Assert.True(status == 0, stderr);
        Assert.Equal("", stderr); // no progress bar when stderr is not a terminal
        string[] lines = stdout.TrimEnd().Split('\n'); // a blank line ends each table
        Assert.StartsWith($"mode: default; engine {engine}; {Requests} requests per row, in 20 interleaved rounds", lines[0]);
        Assert.Contains("disk 8 MiB in the page cache", lines[0]);
        string[] names = [.. lines.Skip(3).TakeWhile(l => l.StartsWith('|')).Select(l => l.Split('|')[1].Trim())];
        Assert.Equal(Rows, names);
        Assert.Contains(lines, l => l.StartsWith("| guest QD1 read, irq | qd1 |") && l.Contains("| host: eventfd, pread 4 KiB, eventfd |") && l.Contains("<= 1.3: "));
        Assert.Contains(lines, l => l.StartsWith("| guest QD32, EVENT_IDX |") && l.Contains("| host pread loop, one thread |") && l.Contains(">= 0.5: "));
        Assert.Contains(lines, l => l.StartsWith("QD1 CPU per request: process "));
        Assert.Contains(lines, l => l.StartsWith("doorbell on the vCPU (p50s, median of rounds; 50 µs between rings): QueueNotify store / LHCALL_NOTIFY "));
        Assert.Equal($"checks: {2 * Requests} timed reads served by the device with status OK, their first and last words the disk's; every 16th read compared whole, untimed ones too", lines[^1][..lines[^1].IndexOf(" (", StringComparison.Ordinal)]);
    }

    [Fact]
    public void Json_CountsWhatTheDeviceServedAndTheMapDelivered_AndPlotIsAnSvg()
    {
        string plot = Path.Combine(Path.GetTempPath(), $"virtio-bench-{Guid.NewGuid():n}.svg");
        try
        {
            (int status, string stdout, string stderr) = Bench("--requests", $"{Requests}", "--json", "--plot", plot);
            Assert.True(status == 0, stderr);
            using JsonDocument doc = JsonDocument.Parse(stdout);
            JsonElement root = doc.RootElement;
            Assert.Equal(Requests, root.GetProperty("requests").GetInt32());
            Assert.Equal(8 << 20, root.GetProperty("disk_bytes").GetInt64());
            JsonElement[] rows = [.. root.GetProperty("measurements").EnumerateArray()];
            Assert.Equal(Rows, rows.Select(r => r.GetProperty("name").GetString()));
            Assert.All(rows, r => Assert.Equal(Requests, r.GetProperty("count").GetInt64()));

            JsonElement qd1 = root.GetProperty("qd1");
            Assert.Equal(Requests, qd1.GetProperty("completed").GetInt32());
            Assert.Equal(Requests, qd1.GetProperty("device_served").GetInt32());
            Assert.Equal(0, qd1.GetProperty("status_errors").GetInt32());
            Assert.Equal(0, qd1.GetProperty("data_mismatches").GetInt32());
            // One request in flight rings the doorbell at most once; EVENT_IDX
            // drops it when the device had not yet gone back to sleep.
            Assert.InRange(qd1.GetProperty("doorbells").GetInt64(), 1, Requests);
            Assert.True(qd1.GetProperty("cpu_ns_per_request").GetProperty("device_thread").GetDouble() > 0);

            JsonElement qd32 = root.GetProperty("qd32");
            Assert.Equal(Requests, qd32.GetProperty("completed").GetInt32());
            Assert.Equal(Requests, qd32.GetProperty("device_served").GetInt32());
            Assert.Equal(0, qd32.GetProperty("data_mismatches").GetInt32());
            Assert.True(qd32.GetProperty("event_idx").GetBoolean());
            Assert.Equal(32, qd32.GetProperty("queue_depth").GetInt32());
            // EVENT_IDX: the guest's kicks while the device is at work ring nothing.
            Assert.True(qd32.GetProperty("doorbells").GetInt64() < Requests / 2, qd32.ToString());
            Assert.True(qd32.GetProperty("per_second").GetDouble() > 0);

            JsonElement bell = root.GetProperty("doorbell");
            Assert.Equal(Requests, bell.GetProperty("stores_delivered").GetInt64());
            Assert.Equal(Requests, bell.GetProperty("notifies_delivered").GetInt64());

            XDocument svg = XDocument.Load(plot);
            XNamespace ns = "http://www.w3.org/2000/svg";
            Assert.Equal(ns + "svg", svg.Root!.Name);
            Assert.Contains(svg.Descendants(ns + "text"), t => t.Value == "guest QD1 read, irq");
        }
        finally
        {
            File.Delete(plot);
        }
    }

    [Theory]
    [InlineData(64, "--requests", "0")]
    [InlineData(64, "--disk-size", "1500K")]
    [InlineData(64, "--disk-size", "5G")]
    [InlineData(64, "--engine", "fast")]
    public void BadOptions_AreOneLineUsageErrors(int expected, string option, string value)
    {
        (int status, string stdout, string stderr) = Bench(option, value);
        Assert.Equal(expected, status);
        Assert.Equal("", stdout);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void AMissingGuest_IsNoInput()
    {
        var stdout = new MemoryStream();
        var stderr = new StringWriter();
        int status = Cli.Execute(["bench", "virtio", "--guest", "/nonexistent/vblkbench.elf"], stdout, stderr);
        Assert.Equal(66, status);
        Assert.Equal("sharpvisor: /nonexistent/vblkbench.elf: no such guest (build it with guests/build.sh, or give --guest PATH)", stderr.ToString().TrimEnd());
    }
}
