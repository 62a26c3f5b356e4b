using System.CommandLine;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Vmm.Bench;

namespace Sharpvisor.Vmm.Launcher.Commands;

/// <summary><c>sharpvisor bench</c>: the measurements, one subcommand each.</summary>
internal sealed class BenchCommand : Command
{
    public BenchCommand() : base("bench", "measurements")
    {
        Add(new NotifyCommand());
        Add(new NotifyPeerCommand());
        Add(new VirtioCommand());
    }

    // The options every benchmark has, made alike.
    private static Option<string> GuestOption(string path) => new("--guest")
    {
        Description = "the timing guest, built by guests/build.sh",
        HelpName = "PATH",
        DefaultValueFactory = _ => path,
    };

    private static Option<bool> JsonOption() => new("--json") { Description = "print the results as one JSON object instead of the table" };

    private static Option<string?> PlotOption() => new("--plot") { Description = "also draw the latency distributions into an SVG file", HelpName = "FILE.svg" };

    private static Option<bool> LowLatencyOption() => new("--low-latency")
    {
        Description = "hold /dev/cpu_dma_latency at 0 during the run, so idle CPUs wake fast (root only; exit 69 where not permitted)",
    };

    /// <summary><c>bench notify</c>: notification latencies against raw eventfd floors (<see cref="NotifyBench"/>).</summary>
    internal sealed class NotifyCommand : Command, ICliCommand
    {
        private readonly Option<int> _iterations = new("--iterations")
        {
            Description = "samples per measurement (1 to 1,000,000)",
            HelpName = "N",
            DefaultValueFactory = _ => 10_000,
            CustomParser = r => Usage.Number(r, "--iterations", 1, 1_000_000),
        };

        private readonly Option<int> _gap = new("--gap")
        {
            Description = "microseconds each sender waits between one-way and round-trip sends, so the reader is asleep again (0 to 10000)",
            HelpName = "US",
            DefaultValueFactory = _ => 50,
            CustomParser = r => Usage.Number(r, "--gap", 0, 10_000, "a number of microseconds"),
        };

        private readonly Option<string> _guest = GuestOption("guests/build/notifybench.elf");
        private readonly Option<bool> _json = JsonOption();
        private readonly Option<string?> _plot = PlotOption();
        private readonly Option<bool> _lowLatency = LowLatencyOption();

        public NotifyCommand() : base("notify",
            "measure notification latencies (one-way, round trip, vCPU-side cost) against raw eventfd floors measured in the same run")
        {
            Add(_iterations);
            Add(_gap);
            Add(_guest);
            Add(_json);
            Add(_plot);
            Add(_lowLatency);
        }

        public int Invoke(ParseResult parsed, CliContext context) =>
            NotifyBench.Run(
                new NotifyBenchOptions(parsed.GetValue(_guest)!, parsed.GetValue(_iterations), parsed.GetValue(_gap) * 1000,
                    parsed.GetValue(_json), parsed.GetValue(_plot), parsed.GetValue(_lowLatency)),
                context.Text, context.Stderr, progressOnTerminal: context.HandleSignals && !Console.IsErrorRedirected);
    }

    /// <summary>The other process of bench notify's cross-process row; not for people.</summary>
    internal sealed class NotifyPeerCommand : Command, ICliCommand
    {
        private readonly Option<int> _iterations = new("--iterations")
        {
            DefaultValueFactory = _ => 1,
            CustomParser = r => Usage.Number(r, "--iterations", 1, int.MaxValue),
        };

        public NotifyPeerCommand() : base("notify-peer", "bench notify's other process")
        {
            Add(_iterations);
            Hidden = true;
        }

        public int Invoke(ParseResult parsed, CliContext context) => NotifyMeasurements.Peer(parsed.GetValue(_iterations));
    }

    /// <summary><c>bench virtio</c>: a virtio-blk guest's 4 KiB random reads against host floors (<see cref="VirtioBench"/>).</summary>
    internal sealed class VirtioCommand : Command, ICliCommand
    {
        private const ulong MaxDisk = 4ul << 30;

        private readonly Option<int> _requests = new("--requests")
        {
            Description = "timed requests (and samples) per row (1 to 1,000,000)",
            HelpName = "N",
            DefaultValueFactory = _ => 20_000,
            CustomParser = r => Usage.Number(r, "--requests", 1, 1_000_000),
        };

        private readonly Option<ulong> _diskSize = new("--disk-size")
        {
            Description = "the disk image, a file without a name in $TMPDIR or /tmp, held in the page cache: bytes, or with K, M, G; a multiple of 1M, at most 4G",
            HelpName = "SIZE",
            DefaultValueFactory = _ => 64ul << 20,
            CustomParser = r => SizeParser.TryParseSize("--disk-size", r.Tokens[0].Value, 1ul << 20, "1M", MaxDisk, "the 4G the benchmark takes", out ulong size, out string error)
                ? size : Usage.Fail<ulong>(r, error),
        };

        private readonly Option<string> _engine = new("--engine")
        {
            Description = "the guest's translator backend: il (needs the JIT build), x64, threaded",
            HelpName = "il|x64|threaded",
            DefaultValueFactory = _ => EngineNames.Name(Engines.Default),
        };

        private readonly Option<string> _guest = GuestOption("guests/build/vblkbench.elf");
        private readonly Option<bool> _json = JsonOption();
        private readonly Option<string?> _plot = PlotOption();
        private readonly Option<bool> _lowLatency = LowLatencyOption();

        public VirtioCommand() : base("virtio",
            "measure a virtio-blk guest's 4 KiB random reads (QD1 latency, QD32 throughput, the doorbell's cost) against host floors measured in the same run")
        {
            _engine.AcceptOnlyFromAmong(EngineNames.All);
            Add(_requests);
            Add(_diskSize);
            Add(_engine);
            Add(_guest);
            Add(_json);
            Add(_plot);
            Add(_lowLatency);
        }

        public int Invoke(ParseResult parsed, CliContext context)
        {
            EngineKind engine = EngineNames.Of(parsed.GetValue(_engine)!);
            if (engine == EngineKind.Il && !Engines.IsIlAvailable)
                return Usage.Error(context.Stderr, "--engine il needs dynamic code, which this native-AOT build does not have; use --engine x64 or threaded (or the JIT build)");
            if (engine == EngineKind.X64 && !Engines.IsX64Available)
                return Usage.Error(context.Stderr, "--engine x64 needs an x86-64 Linux host; use --engine threaded");
            return VirtioBench.Run(
                new VirtioBenchOptions(parsed.GetValue(_guest)!, parsed.GetValue(_requests), (long)parsed.GetValue(_diskSize), engine,
                    parsed.GetValue(_json), parsed.GetValue(_plot), parsed.GetValue(_lowLatency)),
                context.Text, context.Stderr, progressOnTerminal: context.HandleSignals && !Console.IsErrorRedirected);
        }
    }
}
