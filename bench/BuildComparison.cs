using System.Text.Json;

using static Sharpvisor.Bench.ProcessRuns;

namespace Sharpvisor.Bench;

/// <summary>
/// Does a change cost speed? Two published builds (the files ./publish.sh
/// makes, in two folders) run the same guests, interleaved in one run, so a
/// slow second of the shared machine weighs on both or on neither: the
/// kernels of guests/bench on each engine (whole-process wall time), and
/// <c>bench notify</c>'s ratios (each already a ratio to a floor of its own
/// run). Each figure is the median of the runs; the table gives new / base.
/// The order alternates each round (base first, then new first), so neither
/// build always runs on the other's warm page cache.
/// </summary>
/// <remarks>
///   ./guests/build.sh &amp;&amp; ./publish.sh     (the new build, into dist/)
///   (cd OTHER-CHECKOUT &amp;&amp; ./publish.sh)   (the base build)
///   dotnet run -c Release --project bench -- builds --base OTHER-CHECKOUT/dist [--new dist] [--runs 11] [--notify-runs 11] [--only KERNEL]
/// The guests are this checkout's (guests/build), the same for both builds.
/// </remarks>
internal static class BuildComparison
{
    /// <summary>The engines compared: the file that runs each and the arguments before the image.</summary>
    private static readonly (string Label, string File, string[] Args)[] Engines =
    [
        ("AOT x64", "sharpvisor", ["run"]),
        ("AOT threaded", "sharpvisor", ["run", "--engine", "threaded"]),
        ("JIT il", "sharpvisor-jit", ["run", "--engine", "il"]),
    ];

    private static readonly string[] Kernels = ["sieve", "crc32", "sort", "interp"];

    public static int Run(string[] args)
    {
        string root = FindRoot();
        string? baseDir = Value(args, "--base");
        if (baseDir == null) return Fail("--base DIR (the base build's dist folder) is required");
        baseDir = Path.GetFullPath(baseDir);
        string newDir = Path.GetFullPath(Value(args, "--new") ?? Path.Combine(root, "dist"));
        int runs = Option(args, "--runs", 11);
        int notifyRuns = Option(args, "--notify-runs", 11);
        string? only = Value(args, "--only");
        foreach (string dir in new[] { baseDir, newDir })
            foreach (string f in new[] { "sharpvisor", "sharpvisor-jit" })
                if (!File.Exists(Path.Combine(dir, f))) return Fail($"{Path.Combine(dir, f)} is missing: ./publish.sh");

        Console.WriteLine($"base {baseDir}, new {newDir}; medians of {runs} interleaved runs each");
        Console.WriteLine();
        Console.WriteLine("| kernel | engine | base s | new s | new / base |");
        Console.WriteLine("|---|---|---:|---:|---:|");
        var ratios = new List<double>();
        foreach (string k in Kernels)
        {
            if (only != null && only != k) continue;
            string elf = Path.Combine(root, $"guests/build/bench/{k}.elf");
            string linux = Path.Combine(root, $"guests/build/bench/{k}.linux");
            if (!File.Exists(elf) || !File.Exists(linux)) return Fail($"{elf} is missing: ./guests/build.sh");
            string expected = Capture(linux, []);
            foreach (var (label, file, engineArgs) in Engines)
            {
                string[] a = [.. engineArgs, elf];
                var (b, n) = Interleaved(runs,
                    () => Time(Path.Combine(baseDir, file), a, expected).TotalSeconds,
                    () => Time(Path.Combine(newDir, file), a, expected).TotalSeconds);
                ratios.Add(n / b);
                Console.WriteLine($"| {k} | {label} | {b:0.000} | {n:0.000} | {n / b:0.000} |");
            }
        }
        if (ratios.Count > 0)
            Console.WriteLine($"| geometric mean | | | | {Math.Exp(ratios.Average(Math.Log)):0.000} |");

        if (notifyRuns > 0)
        {
            Console.WriteLine();
            Console.WriteLine($"bench notify (AOT, default engine), medians of {notifyRuns} interleaved runs of each build's ratio to its own floor:");
            Console.WriteLine();
            string guest = Path.Combine(root, "guests/build/notifybench.elf");
            var baseRows = new Dictionary<string, List<double>>();
            var newRows = new Dictionary<string, List<double>>();
            for (int r = 0; r < notifyRuns; r++)
            {
                bool baseFirst = r % 2 == 0;
                for (int side = 0; side < 2; side++)
                {
                    bool isBase = (side == 0) == baseFirst;
                    string json = Capture(Path.Combine(isBase ? baseDir : newDir, "sharpvisor"),
                        ["bench", "notify", "--json", "--guest", guest]);
                    Collect(json, isBase ? baseRows : newRows);
                }
            }
            Console.WriteLine("| row | base ratio | new ratio | new / base |");
            Console.WriteLine("|---|---:|---:|---:|");
            foreach (var (name, values) in baseRows)
            {
                if (!newRows.TryGetValue(name, out var newValues)) continue;
                double b = Median(values), n = Median(newValues);
                Console.WriteLine($"| {name} | {b:0.000} | {n:0.000} | {n / b:0.000} |");
            }
        }
        return 0;
    }

    /// <summary>Runs both measurements <paramref name="runs"/> times, alternating which goes first; the medians.</summary>
    private static (double Base, double New) Interleaved(int runs, Func<double> measureBase, Func<double> measureNew)
    {
        var b = new List<double>(); var n = new List<double>();
        for (int r = 0; r < runs; r++)
        {
            if (r % 2 == 0) { b.Add(measureBase()); n.Add(measureNew()); }
            else { n.Add(measureNew()); b.Add(measureBase()); }
        }
        return (Median(b), Median(n));
    }

    /// <summary>Every ratio of one <c>bench notify --json</c> run, by row name (the attach/detach drop as its own row).</summary>
    private static void Collect(string json, Dictionary<string, List<double>> rows)
    {
        using var doc = JsonDocument.Parse(json);
        foreach (JsonElement m in doc.RootElement.GetProperty("measurements").EnumerateArray())
            if (m.GetProperty("ratio").ValueKind == JsonValueKind.Number)
                Add(rows, m.GetProperty("name").GetString()!, m.GetProperty("ratio").GetDouble());
        // A drop is a fraction near 0: compared as the rate kept (1 - drop), so new / base stays a ratio near 1.
        Add(rows, "attach/detach: rate kept (1 - drop)", 1 - doc.RootElement.GetProperty("attach_detach").GetProperty("drop").GetDouble());
    }

    private static void Add(Dictionary<string, List<double>> rows, string name, double value)
    {
        if (!rows.TryGetValue(name, out var list)) rows[name] = list = [];
        list.Add(value);
    }

    private static int Fail(string message)
    {
        Console.Error.WriteLine($"bench builds: {message}");
        return 66;
    }
}
