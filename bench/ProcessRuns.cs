using System.Diagnostics;

namespace Sharpvisor.Bench;

/// <summary>
/// What the whole-process benchmarks (<c>bench -- guests</c>, <c>bench -- startup</c>)
/// share: running a program, checking its output against the native run's,
/// timing it, and their few command-line options.
/// </summary>
internal static class ProcessRuns
{
    /// <summary>Wall time of one run of <paramref name="file"/>, which must print <paramref name="expected"/>.</summary>
    public static TimeSpan Time(string file, string[] args, string expected)
    {
        var sw = Stopwatch.StartNew();
        string output = Capture(file, args);
        TimeSpan elapsed = sw.Elapsed;
        if (output != expected)
            throw new InvalidOperationException($"{file} {string.Join(' ', args)}: output differs from the native run");
        return elapsed;
    }

    /// <summary>The standard output of a run that must exit 0.</summary>
    public static string Capture(string file, string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {p.ExitCode}");
        return output;
    }

    public static double Median(List<double> xs)
    {
        var s = xs.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    public static string? Value(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    public static int Option(string[] args, string name, int fallback) =>
        int.TryParse(Value(args, name), out int v) ? v : fallback;

    public static bool Which(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, program)));

    /// <summary>The repository root: the nearest folder up from here that holds aot.sln.</summary>
    /// <summary>Runs guests/build/<paramref name="guest"/>.elf to its end on <paramref name="kind"/>, in process: its blocks are then in the engine's cache.</summary>
    public static Sharpvisor.Vmm.Machine RanGuest(string guest, Sharpvisor.Jit.Runtime.EngineKind kind)
    {
        var image = Sharpvisor.Vmm.Loader.ImageLoader.Read(Path.Combine(FindRoot(), $"guests/build/{guest}.elf"), Sharpvisor.Vmm.MachineConfig.DefaultMemorySize, null);
        var machine = new Sharpvisor.Vmm.Machine(new Sharpvisor.Vmm.MachineConfig(Sharpvisor.Vmm.MachineConfig.DefaultMemorySize, kind), image, Stream.Null);
        machine.Run();
        return machine;
    }

    public static string FindRoot()
    {
        for (var d = new DirectoryInfo(Directory.GetCurrentDirectory()); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "aot.sln"))) return d.FullName;
        return Directory.GetCurrentDirectory();
    }
}
