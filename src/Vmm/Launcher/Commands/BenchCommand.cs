using System.CommandLine;
using Sharpvisor.Vmm.Bench;

namespace Sharpvisor.Vmm.Launcher.Commands;

/// <summary><c>sharpvisor bench</c>: the measurements, one subcommand each.</summary>
internal sealed class BenchCommand : Command
{
    public BenchCommand() : base("bench", "measurements")
    {
        Add(new NotifyCommand());
        Add(new NotifyPeerCommand());
    }

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

        private readonly Option<string> _guest = new("--guest")
        {
            Description = "the timing guest, built by guests/build.sh",
            HelpName = "PATH",
            DefaultValueFactory = _ => "guests/build/notifybench.elf",
        };

        private readonly Option<bool> _json = new("--json") { Description = "print the results as one JSON object instead of the table" };
        private readonly Option<string?> _plot = new("--plot") { Description = "also draw the latency distributions into an SVG file", HelpName = "FILE.svg" };

        private readonly Option<bool> _lowLatency = new("--low-latency")
        {
            Description = "hold /dev/cpu_dma_latency at 0 during the run, so idle CPUs wake fast (root only; exit 69 where not permitted)",
        };

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
}
