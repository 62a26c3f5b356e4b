using System.Diagnostics;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Vmm;
using Sharpvisor.Vmm.Loader;

using static Sharpvisor.Bench.ProcessRuns;

namespace Sharpvisor.Bench;

/// <summary>
/// The engines against QEMU's TCG on the same C: each kernel in
/// guests/bench is built twice (guest ELF, static i386 Linux program) and run
/// natively, under qemu-i386, and under `sharpvisor run` with each engine,
/// interleaved, in the same run; the x64 and threaded engines also in the
/// native-AOT binary (dist/sharpvisor, where x64 is the default) when
/// ./publish.sh has made one. Whole-process wall time, median of the runs.
/// Then one in-process run per kernel with IL and with x64 for the tiering figures.
/// </summary>
/// <remarks>
///   ./guests/build.sh &amp;&amp; dotnet build -c Release aot.sln
///   dotnet run -c Release --project bench -- guests [--runs 3] [--threaded-runs 1] [--only crc32[,crc-near...]]
/// </remarks>
internal static class GuestKernels
{
    /// <summary>
    /// The kernels, then two programs each built two ways: a CRC with its
    /// buffers in the page where its code ends (crc-near) or a page further
    /// on (crc-far), and a loop of three rotates (rotate-ror) or the same
    /// loop with shifts (rotate-shift). Each pair's times should match.
    /// </summary>
    private static readonly string[] Kernels = ["sieve", "crc32", "sort", "interp", "crc-near", "crc-far", "rotate-ror", "rotate-shift"];

    public static int Run(string[] args)
    {
        int runs = Option(args, "--runs", 3);
        int threadedRuns = Option(args, "--threaded-runs", 1);
        string? only = args.SkipWhile(a => a != "--only").Skip(1).FirstOrDefault();
        string root = FindRoot();
        string dll = Path.Combine(root, "src/Vmm/bin/Release/net10.0/sharpvisor.dll");
        if (!File.Exists(dll)) return Fail($"{dll} is missing: dotnet build -c Release aot.sln");
        bool qemu = Which("qemu-i386");
        if (!qemu) Console.Error.WriteLine("qemu-i386 not found (apt-get install qemu-user): its column stays empty");
        string aot = Path.Combine(root, "dist/sharpvisor");
        bool hasAot = File.Exists(aot);
        if (!hasAot) Console.Error.WriteLine($"{aot} not found (./publish.sh): the AOT columns stay empty");

        Console.WriteLine("| kernel | native s | qemu-i386 s | IL s | x64 s | threaded s | AOT x64 s | AOT threaded s | IL / qemu | IL / native | x64 / native | threaded / native | AOT x64 / native | x64 speed / IL | AOT x64 speed / IL | threaded speed / IL | AOT threaded speed / IL | blocks | regions | µs per region | x64 blocks compiled | µs per x64 block | fast exits (IL) |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (string k in Kernels)
        {
            if (only != null && !only.Split(',').Contains(k)) continue;
            string elf = Path.Combine(root, $"guests/build/bench/{k}.elf");
            string linux = Path.Combine(root, $"guests/build/bench/{k}.linux");
            if (!File.Exists(elf) || !File.Exists(linux)) return Fail($"{elf} is missing: ./guests/build.sh");
            string expected = Capture(linux, []);
            var native = new List<double>(); var tcg = new List<double>(); var il = new List<double>(); var x64 = new List<double>();
            var th = new List<double>(); var aotX64 = new List<double>(); var aotTh = new List<double>();
            for (int i = 0; i < runs; i++)
            {
                native.Add(Time(linux, [], expected).TotalSeconds);
                if (qemu) tcg.Add(Time("qemu-i386", [linux], expected).TotalSeconds);
                il.Add(Time("dotnet", [dll, "run", "--engine", "il", elf], expected).TotalSeconds);
                x64.Add(Time("dotnet", [dll, "run", "--engine", "x64", elf], expected).TotalSeconds);
                if (hasAot) aotX64.Add(Time(aot, ["run", elf], expected).TotalSeconds);
                if (i < threadedRuns) th.Add(Time("dotnet", [dll, "run", "--engine", "threaded", elf], expected).TotalSeconds);
                if (i < threadedRuns && hasAot) aotTh.Add(Time(aot, ["run", "--engine", "threaded", elf], expected).TotalSeconds);
            }
            var (engine, fast) = Stats(elf, EngineKind.Il);
            var (x64Engine, _) = Stats(elf, EngineKind.X64);
            X64TierStats nat = x64Engine.X64;
            double n = Median(native), q = Median(tcg), l = Median(il), x = Median(x64), t = Median(th), ax = Median(aotX64), at = Median(aotTh);
            double perRegion = engine.Engine.Regions == 0 ? 0 : engine.Engine.RegionCompileTime.TotalMicroseconds / engine.Engine.Regions;
            double perX64 = nat.Compiled == 0 ? 0 : nat.CompileTime.TotalMicroseconds / nat.Compiled;
            Console.WriteLine($"| {k} | {n:0.000} | {q:0.000} | {l:0.000} | {x:0.000} | {t:0.000} | {ax:0.000} | {at:0.000} | {l / q:0.00} | {l / n:0.00} | {x / n:0.00} | {t / n:0.00} | {ax / n:0.00} | {l / x:0.00} | {l / ax:0.00} | {l / t:0.00} | {l / at:0.00} | {engine.Engine.Translations} | {engine.Engine.Regions} | {perRegion:0} | {nat.Compiled} | {perX64:0.0} | {fast:P3} |");
        }
        return 0;
    }

    private static double Median(List<double> values) => values.Count == 0 ? double.NaN : ProcessRuns.Median(values);

    /// <summary>
    /// Tiering figures from one in-process IL run: blocks translated, regions
    /// compiled and their cost, and the share of block exits that found their
    /// successor without a full lookup (a link, the jump cache, or a branch
    /// inside a region). The front end's steady-state cost per instruction is
    /// TranslatorBench's.
    /// </summary>
    private static ((EngineStats Engine, X64TierStats X64) Engine, double FastExits) Stats(string elf, EngineKind kind)
    {
        var image = ImageLoader.Read(elf, MachineConfig.DefaultMemorySize, null);
        using var machine = new Machine(new MachineConfig(MachineConfig.DefaultMemorySize, kind), image, Stream.Null);
        machine.Run();
        return ((machine.Engine.Stats, machine.Engine.X64Stats), machine.Vcpu.Stats.FastExitShare);
    }

    private static int Fail(string message)
    {
        Console.Error.WriteLine($"bench guests: {message}");
        return 66;
    }
}
