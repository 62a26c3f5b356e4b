using System.CommandLine;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Vmm.Devices;

namespace Sharpvisor.Vmm.Launcher.Commands;

/// <summary><c>sharpvisor run IMAGE [options]</c>: its options, turned into <see cref="RunOptions"/> for a <see cref="VmSession"/>.</summary>
internal sealed class RunCommand : Command, ICliCommand
{
    private readonly Argument<string> _image = new("IMAGE") { Description = "an ELF32 i386 executable, or a flat binary with --flat" };

    private readonly Option<string> _engine = new("--engine")
    {
        Description = "translator backend: il (hot code compiled to IL; needs the JIT build), x64 (hot code compiled to x86-64 machine code; the native-AOT build's default), threaded (no compiled code)",
        HelpName = "il|x64|threaded",
        DefaultValueFactory = _ => EngineNames.Name(Engines.Default),
    };

    private readonly Option<ulong> _mem = new("--mem")
    {
        Description = "guest RAM: bytes, or with K, M, G (powers of 1024); a multiple of 4K, at most 3G",
        HelpName = "SIZE",
        DefaultValueFactory = _ => MachineConfig.DefaultMemorySize,
        CustomParser = r => SizeParser.TryParseMemory(r.Tokens[0].Value, out ulong size, out string error) ? size : Usage.Fail<ulong>(r, error),
    };

    private readonly Option<uint?> _flat = new("--flat")
    {
        Description = "load IMAGE as a flat binary at ADDR (also the entry point)",
        HelpName = "ADDR",
        CustomParser = r => SizeParser.TryParseAddress(r.Tokens[0].Value, out uint address, out string error) ? address : Usage.Fail<uint?>(r, error),
    };

    private readonly Option<bool> _regs = new("--regs") { Description = "print the stop reason and registers as one JSON line, last on stderr" };

    private readonly Option<double?> _timeout = new("--timeout")
    {
        Description = "stop the guest after SECONDS (exit 82)",
        HelpName = "SECONDS",
        CustomParser = r => Numbers.TryParseSeconds(r.Tokens[0].Value, out double s) && s > 0 && s <= 1e7
            ? s
            : Usage.Fail<double?>(r, $"--timeout '{r.Tokens[0].Value}' must be a number of seconds, above 0 and at most 1e7"),
    };

    private readonly Option<int> _vcpus = new("--vcpus")
    {
        Description = $"vCPUs, each on its own thread, sharing RAM (1 to {MachineConfig.MaxVcpus})",
        HelpName = "N",
        DefaultValueFactory = _ => 1,
        CustomParser = r => Usage.Number(r, "--vcpus", 1, MachineConfig.MaxVcpus),
    };

    private readonly Option<NotifySpec[]> _notify = TargetOption(Targets.Notify,
        "LHCALL_NOTIFY of VALUE (nonzero) signals TARGET's eventfd; TARGET is fd:N, an eventfd passed down as descriptor N, "
        + "unix:PATH, an eventfd handed at start to the listener on that Unix socket, "
        + "or exec:CMD, a command started with a new eventfd as descriptor 3 (LISTEN_FDS; targets with the same CMD share one child; $SHARPVISOR runs this launcher). Repeatable",
        "VALUE=TARGET");

    private readonly Option<IrqSpec[]> _irq = TargetOption(Targets.Irq,
        "a write to TARGET's eventfd makes interrupt N (1 to 31) pending; TARGET as for --notify. Repeatable",
        "N=TARGET");

    private readonly Option<DeviceSpec[]> _device = new("--device")
    {
        Description = $"add a virtio device ({DeviceSpecs.HelpList}); device i has its registers at 0xd0000000 + 0x1000*i "
            + "and interrupt line 16+i (docs/guest-abi.md). Repeatable, at most 16",
        HelpName = "SPEC",
        Arity = ArgumentArity.OneOrMore,
        AllowMultipleArgumentsPerToken = false,
        CustomParser = r =>
        {
            var specs = new List<DeviceSpec>();
            foreach (var token in r.Tokens)
            {
                if (!DeviceSpecs.TryParse(token.Value, out DeviceSpec? spec, out string error)) return Usage.Fail<DeviceSpec[]>(r, error);
                specs.Add(spec);
            }
            if (specs.Count > DeviceWindows.Max) return Usage.Fail<DeviceSpec[]>(r, $"--device: at most {DeviceWindows.Max} devices, not {specs.Count}");
            if (DeviceSpecs.Duplicate(specs) is string duplicate) return Usage.Fail<DeviceSpec[]>(r, duplicate);
            return [.. specs];
        },
    };

    private readonly Option<bool> _stats = new("--stats") { Description = "print notification counts per value on stderr at exit, before the --regs line" };

    private readonly Option<string?> _control = new("--control")
    {
        Description = "while the VM runs, serve a control socket at PATH (mode 0600, same user only, removed at exit) "
            + "on which another process attaches, detaches and lists notify values (docs/control-socket.md); "
            + "while it is open, all vCPUs waiting is not a deadlock",
        HelpName = "PATH",
    };

    public RunCommand() : base("run", "run a guest image until it shuts down")
    {
        _image.Validators.Add(r =>
        {
            string value = r.GetValueOrDefault<string>() ?? "";
            // An empty path names no file; say so rather than look for it.
            if (value.Length == 0) r.AddError("IMAGE is an empty path: give the guest image's file");
            // An unknown option in IMAGE's place would otherwise be taken for a file name.
            if (value.StartsWith('-') && value.Length > 1) r.AddError($"unknown option '{value}'");
        });
        _engine.AcceptOnlyFromAmong(EngineNames.All);
        Add(_image);
        foreach (Option option in new Option[] { _engine, _mem, _flat, _vcpus, _notify, _irq, _device, _stats, _regs, _timeout, _control })
            Add(option);
        Validators.Add(r =>
        {
            DeviceSpec[] devices;
            NotifySpec[] notify;
            IrqSpec[] irqs;
            try
            {
                devices = r.GetValue(_device) ?? [];
                notify = r.GetValue(_notify) ?? [];
                irqs = r.GetValue(_irq) ?? [];
            }
            catch (InvalidOperationException)
            {
                // An option's own parser refused its tokens: that error is the
                // one line, and there are no values to compare.
                return;
            }
            if (Clash(devices, notify, irqs) is string error)
                r.AddError(error);
        });
    }

    /// <summary>An --irq on a device's line, or a --notify of a device's doorbell: found while parsing, before any target is opened.</summary>
    internal static string? Clash(DeviceSpec[] devices, NotifySpec[] notify, IrqSpec[] irqs)
    {
        for (int i = 0; i < devices.Length; i++)
        {
            int line = DeviceWindows.Line(i);
            if (irqs.FirstOrDefault(s => s.Line == line) is IrqSpec irq)
                return $"{irq}: interrupt {line} is the line of device {i} ({devices[i]})";
            for (int q = 0; q < devices[i].Queues; q++)
                if (notify.FirstOrDefault(s => s.Value == DeviceWindows.Doorbell(i, q)) is NotifySpec n)
                    return $"{n}: the value is the doorbell of queue {q} of device {i} ({devices[i]})";
        }
        return null;
    }

    /// <summary>A repeatable <c>--notify</c> or <c>--irq</c>: every token parsed in one go, so a number given twice is seen.</summary>
    private static Option<TSpec[]> TargetOption<TSpec>(TargetOption<TSpec> row, string description, string helpName)
        where TSpec : TargetSpec => new(row.Option)
    {
        Description = description,
        HelpName = helpName,
        Arity = ArgumentArity.OneOrMore,
        AllowMultipleArgumentsPerToken = false,
        CustomParser = r => Targets.TryParse(row, r.Tokens.Select(t => t.Value), out TSpec[] specs, out string error)
            ? specs
            : Usage.Fail<TSpec[]>(r, error),
    };

    /// <summary>What the parsed command line asks <c>run</c> to do.</summary>
    internal RunOptions RunOptionsOf(ParseResult parsed) => new(
        parsed.GetValue(_image)!,
        EngineNames.Of(parsed.GetValue(_engine)!),
        parsed.GetValue(_mem),
        parsed.GetValue(_flat),
        parsed.GetValue(_regs),
        parsed.GetValue(_timeout) is double seconds ? TimeSpan.FromSeconds(seconds) : null,
        parsed.GetValue(_notify) ?? [],
        parsed.GetValue(_irq) ?? [],
        parsed.GetValue(_vcpus),
        parsed.GetValue(_stats),
        parsed.GetValue(_control),
        parsed.GetValue(_device) ?? []);

    public int Invoke(ParseResult parsed, CliContext context) =>
        VmSession.Run(RunOptionsOf(parsed), context.Stdout, context.Stderr, context.HandleSignals, context.Stdin);
}
