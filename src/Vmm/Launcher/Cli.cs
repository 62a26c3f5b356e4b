using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Native;
using Sharpvisor.Vmm.Control;
using Sharpvisor.Vmm.Loader;

namespace Sharpvisor.Vmm.Launcher;

/// <summary>
/// The <c>sharpvisor</c> command line: <c>run</c>, <c>listen</c>, <c>control</c>, <c>smoke</c>, <c>bench notify</c>, <c>--help</c>,
/// <c>--version</c>. Output goes to the streams it is given, so tests run it
/// in process with captured output; Program passes the real ones.
/// </summary>
/// <remarks>
/// System.CommandLine rather than ConsoleAppFramework (both AOT-safe): CAF's
/// generated runner reports through process-wide state (Environment.ExitCode,
/// a static error sink), gives a parse error status 1, which a guest may
/// also return, and prints an unhandled exception with its stack trace.
/// System.CommandLine hands back a ParseResult whose errors we turn into
/// status 64 and one line, with no global state, so parallel tests can each
/// run their own command line.
/// </remarks>
public static class Cli
{
    /// <summary>Parses <paramref name="args"/>, does what they ask, returns the exit status (see <see cref="ExitStatus"/>).</summary>
    /// <param name="stdout">The guest's console output, help and version; written through, flushed before return.</param>
    /// <param name="stderr">At most one line for a stop other than a shutdown, then the --regs JSON line.</param>
    /// <param name="handleSignals">Turn SIGINT/SIGTERM into a clean vCPU stop (the real process only).</param>
    public static int Execute(string[] args, Stream stdout, TextWriter stderr, bool handleSignals = false)
    {
        try
        {
            return Dispatch(args, stdout, stderr, handleSignals);
        }
        catch (Exception e)
        {
            // The last line of defence: whatever escaped is our bug or the
            // host's trouble, reported as one line, never as a stack trace.
            stderr.WriteLine($"sharpvisor: internal error: {e.GetType().Name}: {OneLine(e.Message)}");
            return (int)ExitStatus.Internal;
        }
        finally
        {
            try { stdout.Flush(); } catch (IOException) { } // stdout may be a closed pipe
        }
    }

    private static int Dispatch(string[] args, Stream stdout, TextWriter stderr, bool handleSignals)
    {
        var image = new Argument<string>("IMAGE") { Description = "an ELF32 i386 executable, or a flat binary with --flat" };
        image.Validators.Add(r =>
        {
            // An unknown option in IMAGE's place would otherwise be taken for a file name.
            string value = r.GetValueOrDefault<string>() ?? "";
            if (value.StartsWith('-') && value.Length > 1) r.AddError($"unknown option '{value}'");
        });
        var engine = new Option<string>("--engine")
        {
            Description = "translator backend: il (hot code compiled to IL; needs the JIT build), x64 (hot code compiled to x86-64 machine code; the native-AOT build's default), threaded (no compiled code)",
            HelpName = "il|x64|threaded",
            DefaultValueFactory = _ => EngineName(Engines.Default),
        };
        engine.AcceptOnlyFromAmong(EngineNames.Select(e => e.Name).ToArray());
        var mem = new Option<ulong>("--mem")
        {
            Description = "guest RAM: bytes, or with K, M, G (powers of 1024); a multiple of 4K, at most 3G",
            HelpName = "SIZE",
            DefaultValueFactory = _ => MachineConfig.DefaultMemorySize,
            CustomParser = r => SizeParser.TryParseMemory(r.Tokens[0].Value, out ulong size, out string error) ? size : Fail<ulong>(r, error),
        };
        var flat = new Option<uint?>("--flat")
        {
            Description = "load IMAGE as a flat binary at ADDR (also the entry point)",
            HelpName = "ADDR",
            CustomParser = r => SizeParser.TryParseAddress(r.Tokens[0].Value, out uint address, out string error) ? address : Fail<uint?>(r, error),
        };
        var regs = new Option<bool>("--regs") { Description = "print the stop reason and registers as one JSON line, last on stderr" };
        var timeout = new Option<double?>("--timeout")
        {
            Description = "stop the guest after SECONDS (exit 82)",
            HelpName = "SECONDS",
            CustomParser = r => double.TryParse(r.Tokens[0].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out double s)
                                && s > 0 && s <= 1e7
                ? s
                : Fail<double?>(r, $"--timeout '{r.Tokens[0].Value}' must be a number of seconds, above 0 and at most 1e7"),
        };
        var vcpus = new Option<int>("--vcpus")
        {
            Description = $"vCPUs, each on its own thread, sharing RAM (1 to {MachineConfig.MaxVcpus})",
            HelpName = "N",
            DefaultValueFactory = _ => 1,
            CustomParser = r => NumberFrom(r, "--vcpus", 1, MachineConfig.MaxVcpus),
        };
        var notify = new Option<NotifySpec[]>("--notify")
        {
            Description = "LHCALL_NOTIFY of VALUE (nonzero, decimal or 0x-hex) signals TARGET's eventfd; TARGET is fd:N, an eventfd passed down as descriptor N, "
                + "unix:PATH, an eventfd handed at start to the listener on that Unix socket, "
                + "or exec:CMD, a command started with a new eventfd as descriptor 3 (LISTEN_FDS; targets with the same CMD share one child; $SHARPVISOR runs this launcher). Repeatable",
            HelpName = "VALUE=TARGET",
            Arity = ArgumentArity.OneOrMore,
            AllowMultipleArgumentsPerToken = false,
            CustomParser = r => Targets.TryParseNotify(r.Tokens.Select(t => t.Value), out NotifySpec[] specs, out string error)
                ? specs
                : Fail<NotifySpec[]>(r, error),
        };
        var irq = new Option<IrqSpec[]>("--irq")
        {
            Description = "a write to TARGET's eventfd makes interrupt N (1 to 31) pending; TARGET as for --notify. Repeatable",
            HelpName = "N=TARGET",
            Arity = ArgumentArity.OneOrMore,
            AllowMultipleArgumentsPerToken = false,
            CustomParser = r => Targets.TryParseIrq(r.Tokens.Select(t => t.Value), out IrqSpec[] specs, out string error)
                ? specs
                : Fail<IrqSpec[]>(r, error),
        };
        var stats = new Option<bool>("--stats") { Description = "print notification counts per value on stderr at exit, before the --regs line" };
        var control = new Option<string?>("--control")
        {
            Description = "while the VM runs, serve a control socket at PATH (mode 0600, same user only, removed at exit) "
                + "on which another process attaches, detaches and lists notify values (docs/control-socket.md); "
                + "while it is open, all vCPUs waiting is not a deadlock",
            HelpName = "PATH",
        };
        var run = new Command("run", "run a guest image until it shuts down") { image, engine, mem, flat, vcpus, notify, irq, stats, regs, timeout, control };

        var notifications = new Argument<int>("NOTIFICATIONS")
        {
            Description = "how many notifications the vCPU-like thread sends",
            DefaultValueFactory = _ => 100_000,
        };
        notifications.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() <= 0) r.AddError("NOTIFICATIONS must be a positive integer");
        });
        var smoke = new Command("smoke", "drive the native layer (eventfds, RCU map) end to end") { notifications };

        var answer = new Option<string[]>("--answer")
        {
            Description = "on each wakeup of NAME, write its count to NAME2 (notify-0x10=irq-5), which is written, not watched. Repeatable",
            HelpName = "NAME=NAME2",
            Arity = ArgumentArity.OneOrMore,
            AllowMultipleArgumentsPerToken = false,
        };
        var exitAfter = new Option<ulong?>("--exit-after")
        {
            Description = "exit 0 once the counts read add up to N",
            HelpName = "N",
            CustomParser = r => ulong.TryParse(r.Tokens[0].Value, NumberStyles.None, CultureInfo.InvariantCulture, out ulong n) && n > 0
                ? n
                : Fail<ulong?>(r, $"--exit-after '{r.Tokens[0].Value}' must be a positive number"),
        };
        var unixPath = new Option<string?>("--unix")
        {
            Description = "instead of descriptors 3.., listen on the Unix socket at PATH for the eventfds of unix:PATH targets (mode 0600, removed at exit)",
            HelpName = "PATH",
        };
        var expect = new Option<int>("--expect")
        {
            Description = "with --unix: how many eventfds to take before waiting on them (one per unix: target); 1 unless given",
            HelpName = "N",
            DefaultValueFactory = _ => 1,
            CustomParser = r => NumberFrom(r, "--expect", 1, 1024),
        };
        var listen = new Command("listen",
            "wait on the eventfds passed as descriptors 3.. (LISTEN_FDS, names from LISTEN_FDNAMES, as an exec: target's child gets them), "
            + "or received on a Unix socket (--unix), and print one line per wakeup: <realtime seconds.micros> <name> <count>. "
            + "Ends with 0 on SIGTERM or SIGINT, after printing what is pending") { answer, exitAfter, unixPath, expect };

        var socketArg = new Argument<string>("PATH") { Description = "the control socket of a running VM (run --control PATH)" };
        var requestArg = new Argument<string[]>("REQUEST")
        {
            Description = "list, attach notify VALUE, detach notify VALUE, attach irq N, detach irq N (docs/control-socket.md)",
            Arity = ArgumentArity.OneOrMore,
        };
        var sendFd = new Option<int?>("--fd")
        {
            Description = "send descriptor N (an eventfd this process inherited) with the request, for attach",
            HelpName = "N",
            CustomParser = r => int.TryParse(r.Tokens[0].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int n)
                ? n
                : Fail<int?>(r, $"--fd '{r.Tokens[0].Value}' must be a descriptor number"),
        };
        var controlCommand = new Command("control",
            "send one request to a running VM's control socket and print the reply line; "
            + "exit 0 on ok or a list, 1 on an error reply, 69 if the socket cannot be reached") { socketArg, requestArg, sendFd };


        var benchIterations = new Option<int>("--iterations")
        {
            Description = "samples per measurement (1 to 1,000,000)",
            HelpName = "N",
            DefaultValueFactory = _ => 10_000,
            CustomParser = r => NumberFrom(r, "--iterations", 1, 1_000_000),
        };
        var benchGap = new Option<int>("--gap")
        {
            Description = "microseconds each sender waits between one-way and round-trip sends, so the reader is asleep again (0 to 10000)",
            HelpName = "US",
            DefaultValueFactory = _ => 50,
            CustomParser = r => NumberFrom(r, "--gap", 0, 10_000, "a number of microseconds"),
        };
        var benchGuest = new Option<string>("--guest")
        {
            Description = "the timing guest, built by guests/build.sh",
            HelpName = "PATH",
            DefaultValueFactory = _ => "guests/build/notifybench.elf",
        };
        var benchJson = new Option<bool>("--json") { Description = "print the results as one JSON object instead of the table" };
        var benchPlot = new Option<string?>("--plot") { Description = "also draw the latency distributions into an SVG file", HelpName = "FILE.svg" };
        var benchLowLatency = new Option<bool>("--low-latency")
        {
            Description = "hold /dev/cpu_dma_latency at 0 during the run, so idle CPUs wake fast (root only; exit 69 where not permitted)",
        };
        var benchNotify = new Command("notify",
            "measure notification latencies (one-way, round trip, vCPU-side cost) against raw eventfd floors measured in the same run")
            { benchIterations, benchGap, benchGuest, benchJson, benchPlot, benchLowLatency };
        var peerIterations = new Option<int>("--iterations") { DefaultValueFactory = _ => 1 };
        // The other process of bench notify's cross-process row; not for people.
        var benchPeer = new Command("notify-peer", "bench notify's other process") { peerIterations };
        benchPeer.Hidden = true;
        var bench = new Command("bench", "measurements") { benchNotify, benchPeer };

        var version = new Option<bool>("--version") { Description = "print the version and exit" };
        var root = new RootCommand("Sharpvisor: runs 32-bit x86 guests (guest ABI v1, docs/guest-abi.md).") { run, listen, controlCommand, smoke, bench };
        // Our own --version, so it prints "sharpvisor X.Y.Z" as before, with no commit suffix.
        foreach (Option o in root.Options.Where(o => o is VersionOption).ToList()) root.Options.Remove(o);
        root.Options.Add(version);
        root.SetAction(_ => 0); // so a bare --version is not "Required command was not provided"
        root.Directives.Clear(); // "[diagram]" and friends are not part of our interface
        HelpOption help = root.Options.OfType<HelpOption>().Single();
        help.Action = new HelpWithExitStatuses((HelpAction)help.Action!);

        // No response files: an image path may start with '@'.
        ParseResult parsed = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });

        using var text = new StreamWriter(stdout, new UTF8Encoding(false), bufferSize: 4096, leaveOpen: true) { AutoFlush = true };
        if (parsed.Action is HelpWithExitStatuses)
            return parsed.Invoke(new InvocationConfiguration { Output = text, Error = stderr });
        if (parsed.Errors.Count > 0)
            return Usage(stderr, string.Join("; ", parsed.Errors.Select(e => e.Message)));
        if (parsed.GetValue(version))
        {
            text.WriteLine($"sharpvisor {typeof(Cli).Assembly.GetName().Version?.ToString(3)}");
            return 0;
        }

        Command chosen = parsed.CommandResult.Command;
        if (chosen == smoke)
            return SmokeRun.Run(parsed.GetValue(notifications), text);
        if (chosen == listen)
        {
            if (parsed.GetValue(unixPath) is string socketPath)
                return Listen.ListenCommand.ExecuteUnix(socketPath, parsed.GetValue(expect), parsed.GetValue(answer) ?? [], parsed.GetValue(exitAfter), text, stderr, handleSignals);
            if (parsed.GetResult(expect) is { Implicit: false })
                return Usage(stderr, "--expect needs --unix PATH");
            return Listen.ListenCommand.Execute(parsed.GetValue(answer) ?? [], parsed.GetValue(exitAfter), text, stderr, handleSignals);
        }
        if (chosen == controlCommand)
            return ControlClient.Execute(parsed.GetValue(socketArg)!, parsed.GetValue(requestArg) ?? [], parsed.GetValue(sendFd), text, stderr);
        if (chosen == benchPeer)
            return Bench.NotifyMeasurements.Peer(parsed.GetValue(peerIterations));
        if (chosen == benchNotify)
            return Bench.NotifyBench.Run(
                new Bench.NotifyBenchOptions(parsed.GetValue(benchGuest)!, parsed.GetValue(benchIterations), parsed.GetValue(benchGap) * 1000,
                    parsed.GetValue(benchJson), parsed.GetValue(benchPlot), parsed.GetValue(benchLowLatency)),
                text, stderr, progressOnTerminal: handleSignals && !Console.IsErrorRedirected);
        if (chosen != run)
            return Usage(stderr, "a command is required: run, listen, control, smoke or bench");

        var options = new RunOptions(
            parsed.GetValue(image)!,
            EngineOf(parsed.GetValue(engine)!),
            parsed.GetValue(mem),
            parsed.GetValue(flat),
            parsed.GetValue(regs),
            parsed.GetValue(timeout) is double seconds ? TimeSpan.FromSeconds(seconds) : null,
            parsed.GetValue(notify) ?? [],
            parsed.GetValue(irq) ?? [],
            parsed.GetValue(vcpus),
            parsed.GetValue(stats),
            parsed.GetValue(control));
        return Run(options, stdout, stderr, handleSignals);
    }

    /// <summary>The <c>--engine</c> values and the engines they name: the one table both directions read.</summary>
    private static readonly (string Name, EngineKind Kind)[] EngineNames =
        [("il", EngineKind.Il), ("x64", EngineKind.X64), ("threaded", EngineKind.Threaded)];

    /// <summary>The <c>--engine</c> value of a kind.</summary>
    internal static string EngineName(EngineKind kind) => EngineNames.First(e => e.Kind == kind).Name;

    /// <summary>The kind an <c>--engine</c> value names (one the parser accepted).</summary>
    internal static EngineKind EngineOf(string name) => EngineNames.First(e => e.Name == name).Kind;

    // Journey: cli
    /// <summary>
    /// <c>sharpvisor run</c>, the whole life of a VM in four steps: check the
    /// image, build the machine, run its vCPU, report why it stopped. Every
    /// way a guest can end, a shutdown, a fault, a timeout, a signal, arrives
    /// here as a value (a <see cref="VcpuExit"/>), not an exception, and
    /// becomes one exit status and at most one line on stderr. Like lguest's
    /// launcher we trust nothing the guest did: whatever it did, the host
    /// process finishes cleanly and says what happened.
    /// </summary>
    public static int Run(RunOptions options, Stream stdout, TextWriter stderr, bool handleSignals = false)
    {
        if (options.Engine == EngineKind.Il && !Engines.IsIlAvailable)
            // A usage error rather than "unavailable" (69): the option is
            // wrong for this binary, and another value works right away.
            return Usage(stderr, "--engine il needs dynamic code, which this native-AOT build does not have; use --engine x64 or threaded (or the JIT build)");
        if (options.Engine == EngineKind.X64 && !Engines.IsX64Available)
            return Usage(stderr, $"--engine x64 needs an x86-64 Linux host (this is {System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture}); use --engine threaded");

        GuestImage image;
        try
        {
            image = ImageLoader.Read(options.ImagePath, options.MemorySize, options.FlatAddress);
        }
        catch (ImageException e)
        {
            stderr.WriteLine($"sharpvisor: {e.Message}");
            return (int)e.Status;
        }

        // Our duplicates of the targets' descriptors, and the exec: children
        // with the eventfds we made for them: closed (and stopped) on every
        // path, after the machine (declared first, so disposed last).
        var opened = new List<EventFd>();
        ExecChildren? children = null;
        try
        {
            var notifyFds = new List<(NotifySpec Spec, EventFd Fd)>();
            var irqFds = new List<(IrqSpec Spec, EventFd Fd)>();
            try
            {
                children = ExecChildren.Prepare(options.Notify ?? [], options.Irqs ?? []);
                foreach (NotifySpec spec in options.Notify ?? [])
                {
                    notifyFds.Add((spec, spec.Target.Kind == TargetKind.Exec ? children.EventFdFor(spec) : Targets.Open(spec, spec.Target)));
                    if (spec.Target.Kind != TargetKind.Exec) opened.Add(notifyFds[^1].Fd);
                }
                foreach (IrqSpec spec in options.Irqs ?? [])
                {
                    irqFds.Add((spec, spec.Target.Kind == TargetKind.Exec ? children.EventFdFor(spec) : Targets.Open(spec, spec.Target)));
                    if (spec.Target.Kind != TargetKind.Exec) opened.Add(irqFds[^1].Fd);
                }
            }
            catch (TargetUnavailableException e)
            {
                stderr.WriteLine($"sharpvisor: {OneLine(e.Message)}");
                return (int)ExitStatus.Unavailable;
            }

            using var machine = new Machine(new MachineConfig(options.MemorySize, options.Engine, options.Vcpus), image, stdout);
            // Slower, never wrong: say so once, and run on.
            if (machine.Engine.X64TierProblem is string problem)
                stderr.WriteLine($"sharpvisor: warning: the x64 engine runs without machine code here ({problem}): hot code stays threaded");
            foreach ((NotifySpec spec, EventFd fd) in notifyFds)
                machine.Notifier.Attach(spec.Value, fd);
            foreach ((IrqSpec spec, EventFd fd) in irqFds)
                machine.Interrupts.Attach(spec.Line, fd);
            ControlServer? controlServer = null;
            if (options.ControlPath is string controlPath)
            {
                try
                {
                    controlServer = ControlServer.Listen(controlPath, machine.Notifier, machine.Interrupts);
                }
                catch (ErrnoException e)
                {
                    stderr.WriteLine($"sharpvisor: --control {controlPath}: {OneLine(e.Message)}");
                    return (int)ExitStatus.Unavailable;
                }
                machine.Interrupts.SourcesMayBeAttached = true;
            }
            // Stopped and joined before the machine is disposed: it updates the machine's map.
            using ControlServer? controlInUse = controlServer;
            using PosixSignalRegistration? sigint = handleSignals ? StopOn(machine, PosixSignal.SIGINT, 2, "SIGINT") : null;
            using PosixSignalRegistration? sigterm = handleSignals ? StopOn(machine, PosixSignal.SIGTERM, 15, "SIGTERM") : null;

            try
            {
                children.Start(stderr); // last, after everything that can refuse the run
            }
            catch (TargetUnavailableException e)
            {
                stderr.WriteLine($"sharpvisor: {OneLine(e.Message)}");
                return (int)ExitStatus.Unavailable;
            }
            controlServer?.Start();
            VcpuExit exit = machine.Run(options.Timeout);
            controlServer?.Dispose(); // no update after the run: the counts below are final
            children.Stop(); // SIGTERM and reap before we report, so a child's last words come first
            int status = ExitStatuses.For(exit);
            stdout.Flush(); // the guest's output first, then our line about why it stopped
            if (exit.Reason != StopReason.Shutdown)
            {
                Vcpu where = machine.Vcpus[machine.StoppedBy ?? 0];
                string who = machine.Vcpus.Count > 1 && machine.StoppedBy is int k && exit.Reason is StopReason.Fault or StopReason.Error
                    ? $"vcpu {k}: " : "";
                stderr.WriteLine($"sharpvisor: {Describe(exit with { Message = who + exit.Message }, where.State.Eip)}");
            }
            if (options.Stats)
                foreach (string line in machine.Notifier.StatsLines())
                    stderr.WriteLine(line);
            if (options.Regs)
                stderr.WriteLine(RegsReport.Format(exit, status, machine.Vcpus));
            return status;
        }
        finally
        {
            foreach (EventFd fd in opened) fd.Dispose();
            children?.Dispose();
        }
    }

    /// <summary>
    /// Cancelling the default action keeps the process alive until the vCPU
    /// has stopped at a block boundary; then Run returns and we exit with
    /// 128 + the signal, after flushing the guest's output.
    /// </summary>
    private static PosixSignalRegistration StopOn(Machine machine, PosixSignal signal, int number, string name) =>
        PosixSignalRegistration.Create(signal, context =>
        {
            context.Cancel = true;
            machine.RequestStop(new VcpuExit(StopReason.Signal, $"{name} received, vCPU stopped", Signal: number));
        });

    /// <summary>One line naming what happened. A fault's message from the engine already says where.</summary>
    internal static string Describe(VcpuExit exit, uint eip) => exit.Reason switch
    {
        StopReason.Fault => $"guest fault: {OneLine(exit.Message)}",
        StopReason.Deadlock => $"deadlock: {OneLine(exit.Message)}",
        StopReason.Timeout => $"timeout: {OneLine(exit.Message)} (guest eip 0x{eip:x})",
        StopReason.Signal => $"stopped: {OneLine(exit.Message)} (guest eip 0x{eip:x})",
        StopReason.Shutdown => OneLine(exit.Message),
        _ => $"internal error: {OneLine(exit.Message)}",
    };

    private static int Usage(TextWriter stderr, string message)
    {
        stderr.WriteLine($"sharpvisor: {OneLine(message)} (see sharpvisor --help)");
        return (int)ExitStatus.Usage;
    }

    /// <summary>A decimal integer option in [<paramref name="min"/>, <paramref name="max"/>], or one usage error naming the bounds.</summary>
    private static int NumberFrom(ArgumentResult r, string option, int min, int max, string what = "a number")
    {
        string text = r.Tokens[0].Value;
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= min && n <= max
            ? n
            : Fail<int>(r, $"{option} '{text}' must be {what} from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}");
    }

    private static T Fail<T>(ArgumentResult result, string error)
    {
        result.AddError(error);
        return default!;
    }

    /// <summary>Line breaks and tabs (System.CommandLine puts both in its messages) become single spaces.</summary>
    private static string OneLine(string s) =>
        string.Join(' ', s.ReplaceLineEndings(" ").Replace('\t', ' ').Split(' ', StringSplitOptions.RemoveEmptyEntries));

    /// <summary>The standard help, then the exit-status table, which a script writer needs most.</summary>
    private sealed class HelpWithExitStatuses(HelpAction standard) : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            standard.Invoke(parseResult);
            TextWriter output = parseResult.InvocationConfiguration.Output;
            output.WriteLine(ExitStatuses.HelpTable);
            return 0;
        }
    }
}
