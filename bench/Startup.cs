using System.Diagnostics;

using static Sharpvisor.Bench.ProcessRuns;

namespace Sharpvisor.Bench;

/// <summary>
/// What a user pays to start a VM: the published files' sizes, and the wall
/// time of running guests/build/hello.elf with each, next to spawning the
/// same C built as a static Linux program (hello.linux), interleaved in the
/// same run. Every run must print what the native run printed.
/// </summary>
/// <remarks>
///   ./guests/build.sh &amp;&amp; ./publish.sh
///   dotnet run -c Release --project bench -- startup [--runs 10] [--dist dist] [--also LABEL=FILE ...]
/// <c>--also</c> adds another sharpvisor build to compare (a variant of the
/// JIT file, say); it runs with its default engine.
/// </remarks>
internal static class Startup
{
    public static int Run(string[] args)
    {
        int runs = Option(args, "--runs", 10);
        string root = FindRoot();
        string dist = Path.GetFullPath(Value(args, "--dist") ?? Path.Combine(root, "dist"));
        string elf = Path.Combine(root, "guests/build/hello.elf");
        string linux = Path.Combine(root, "guests/build/hello.linux");
        if (!File.Exists(elf) || !File.Exists(linux)) return Fail($"{elf} is missing: ./guests/build.sh");
        string aot = Path.Combine(dist, "sharpvisor"), jit = Path.Combine(dist, "sharpvisor-jit");
        if (!File.Exists(aot) || !File.Exists(jit)) return Fail($"{aot} or {jit} is missing: ./publish.sh");

        var rows = new List<(string Label, string? File, string Program, string[] Args)>
        {
            ("native `hello.linux` (static i386, spawned)", null, linux, []),
            ("`sharpvisor` (native AOT), x64 (its default)", aot, aot, ["run", elf]),
            ("`sharpvisor-jit` (single file), il (its default)", jit, jit, ["run", elf]),
            ("`sharpvisor-jit` (single file), threaded", jit, jit, ["run", "--engine", "threaded", elf]),
        };
        for (int i = 0; i < args.Length - 1; i++)
            if (args[i] == "--also" && args[i + 1].Split('=', 2) is [var label, var file])
                rows.Add(($"{label}", Path.GetFullPath(file), Path.GetFullPath(file), ["run", elf]));

        string expected = Capture(linux, []);
        var times = rows.Select(_ => new List<double>()).ToArray();
        foreach (var (_, _, program, a) in rows) Capture(program, a); // warm the page cache once
        for (int r = 0; r < runs; r++)
            for (int k = 0; k < rows.Count; k++)
                times[k].Add(Time(rows[k].Program, rows[k].Args, expected).TotalMilliseconds);

        double baseline = Median(times[0]);
        Console.WriteLine($"hello.elf, median of {runs} runs each, interleaved:");
        Console.WriteLine();
        Console.WriteLine("| run | file size | wall time (median) | min | / native |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        for (int k = 0; k < rows.Count; k++)
        {
            string size = rows[k].File is { } f ? $"{new FileInfo(f).Length / 1e6:0.0} MB" : "";
            double m = Median(times[k]);
            Console.WriteLine($"| {rows[k].Label} | {size} | {m:0.0} ms | {times[k].Min():0.0} ms | {m / baseline:0} |");
        }
        return 0;
    }

    private static int Fail(string message)
    {
        Console.Error.WriteLine($"bench startup: {message}");
        return 66;
    }
}
