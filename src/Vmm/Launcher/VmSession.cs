using System.Runtime.InteropServices;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Native;
using Sharpvisor.Devices.Virtio;
using Sharpvisor.Vmm.Control;
using Sharpvisor.Vmm.Devices;
using Sharpvisor.Vmm.Loader;

namespace Sharpvisor.Vmm.Launcher;

/// <summary>
/// One <c>sharpvisor run</c>: everything it opens, held in one place and
/// closed on every path, in an order that is safe. The signal registrations
/// go first (so a stop cannot reach a machine being torn down), then the
/// control server (it updates the machine's map), then the machine, then the
/// targets' eventfds and the exec: children with theirs (the machine used them).
/// </summary>
public sealed class VmSession : IDisposable
{
    private readonly RunOptions _options;
    private readonly Stream _stdout;
    private readonly TextWriter _stderr;
    private readonly SafeFdHandle? _stdin;
    private readonly List<EventFd> _opened = [];
    private readonly List<PosixSignalRegistration> _signals = [];
    private readonly Lock _stopGate = new();
    private VcpuExit? _earlyStop;
    private ExecChildren? _children;
    private Machine? _machine;
    private ControlServer? _control;

    /// <param name="stdin">What a console device reads; null: descriptor 0.</param>
    public VmSession(RunOptions options, Stream stdout, TextWriter stderr, SafeFdHandle? stdin = null)
    {
        _options = options;
        _stdout = stdout;
        _stderr = stderr;
        _stdin = stdin;
    }

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
    public static int Run(RunOptions options, Stream stdout, TextWriter stderr, bool handleSignals = false, SafeFdHandle? stdin = null)
    {
        using var session = new VmSession(options, stdout, stderr, stdin);
        if (handleSignals) session.StopOnSignals();
        return session.Run();
    }

    /// <summary>
    /// From now on SIGINT and SIGTERM stop the run cleanly (exit 128 + the
    /// signal, after the guest's output) instead of killing the process.
    /// Armed before anything is opened, so a signal during the setup is not
    /// the default kill without a line: it stops the machine as soon as there is one.
    /// </summary>
    public void StopOnSignals()
    {
        _signals.Add(StopOn(PosixSignal.SIGINT, 2, "SIGINT"));
        _signals.Add(StopOn(PosixSignal.SIGTERM, 15, "SIGTERM"));
    }

    /// <summary>
    /// Cancelling the default action keeps the process alive until the vCPU
    /// has stopped at a block boundary; then Run returns and we exit with
    /// 128 + the signal, after flushing the guest's output.
    /// </summary>
    private PosixSignalRegistration StopOn(PosixSignal signal, int number, string name) =>
        PosixSignalRegistration.Create(signal, context =>
        {
            context.Cancel = true;
            RequestStop(new VcpuExit(StopReason.Signal, $"{name} received, vCPU stopped", Signal: number));
        });

    /// <summary>
    /// Stops the run with <paramref name="exit"/>; any thread may call. Before
    /// the machine exists the request is kept, and the machine gets it the
    /// moment it is built, so its Run returns it before any guest code runs.
    /// </summary>
    public void RequestStop(VcpuExit exit)
    {
        Machine? machine;
        lock (_stopGate)
        {
            _earlyStop ??= exit;
            machine = _machine;
        }
        machine?.RequestStop(exit); // the machine's first stop wins; one after its run changes nothing
    }

    /// <summary>Runs the session once: the steps of <see cref="Run(RunOptions, Stream, TextWriter, bool)"/>.</summary>
    public int Run()
    {
        RunOptions options = _options;
        if (options.Engine == EngineKind.Il && !Engines.IsIlAvailable)
            // A usage error rather than "unavailable" (69): the option is
            // wrong for this binary, and another value works right away.
            return Usage.Error(_stderr, "--engine il needs dynamic code, which this native-AOT build does not have; use --engine x64 or threaded (or the JIT build)");
        if (options.Engine == EngineKind.X64 && !Engines.IsX64Available)
            return Usage.Error(_stderr, $"--engine x64 needs an x86-64 Linux host (this is {RuntimeInformation.ProcessArchitecture}); use --engine threaded");

        GuestImage image;
        try
        {
            image = ImageLoader.Read(options.ImagePath, options.MemorySize, options.FlatAddress);
        }
        catch (ImageException e)
        {
            _stderr.WriteLine($"sharpvisor: {e.Message}");
            return (int)e.Status;
        }

        // Every --notify, then every --irq, in command-line order: one path
        // for both kinds, from the spec to an eventfd to the machine.
        TargetSpec[] specs = [.. options.Notify ?? [], .. options.Irqs ?? []];
        var targets = new List<(TargetSpec Spec, EventFd Fd)>();
        try
        {
            _children = ExecChildren.Prepare(specs);
            foreach (TargetSpec spec in specs)
                targets.Add((spec, spec.Target.Kind == TargetKind.Exec ? _children.EventFdFor(spec) : Own(Targets.Open(spec))));
        }
        catch (TargetUnavailableException e)
        {
            return Unavailable(e.Message);
        }

        // The devices' files are opened (and locked) before the machine, so
        // that a missing or locked image stops the run before any guest code.
        var devices = new List<(VirtioDevice Device, string Name)>();
        IReadOnlyList<DeviceSpec> deviceSpecs = options.Devices ?? [];
        using var standardInput = new SafeFdHandle(0, ownsHandle: false);
        for (int i = 0; i < deviceSpecs.Count; i++)
        {
            if (!DeviceFactory.TryOpen(deviceSpecs[i], i, _stdin ?? standardInput, out VirtioDevice? device, out string name, out ExitStatus status, out string error))
            {
                foreach ((VirtioDevice d, _) in devices) d.Dispose();
                _stderr.WriteLine($"sharpvisor: {Usage.OneLine(error)}");
                return (int)status;
            }
            devices.Add((device, name));
        }

        Machine machine = BuildMachine(image, devices);
        // Slower, never wrong: say so once, and run on.
        if (machine.Engine.X64TierProblem is string problem)
            _stderr.WriteLine($"sharpvisor: warning: the x64 engine runs without machine code here ({problem}): hot code stays threaded");
        foreach ((TargetSpec spec, EventFd fd) in targets)
            spec.Attach(machine, fd);
        if (options.ControlPath is string controlPath)
        {
            try
            {
                _control = ControlServer.Listen(controlPath, machine.Notifier, machine.Interrupts);
            }
            catch (ErrnoException e)
            {
                return Unavailable($"--control {controlPath}: {e.Message}");
            }
            machine.Interrupts.SourcesMayBeAttached = true;
        }

        try
        {
            _children.Start(_stderr); // last, after everything that can refuse the run
        }
        catch (TargetUnavailableException e)
        {
            return Unavailable(e.Message);
        }
        _control?.Start();
        VcpuExit exit;
        // A terminal on a console's input is raw while the guest runs, so it
        // gets each key as typed (RawTerminal), and is put back before we report.
        bool console = deviceSpecs.Any(d => d.Kind == DeviceKind.Console);
        using (RawTerminal? raw = console ? RawTerminal.TryEnter(_stdin ?? standardInput) : null)
            exit = machine.Run(options.Timeout);
        _control?.Dispose(); // no update after the run: the counts below are final
        _children.Stop(); // SIGTERM and reap before we report, so a child's last words come first
        return Report(machine, exit);
    }

    /// <summary>The machine, and a stop asked for while it did not exist yet handed to it.</summary>
    private Machine BuildMachine(GuestImage image, IReadOnlyList<(VirtioDevice Device, string Name)> devices)
    {
        var machine = new Machine(new MachineConfig(_options.MemorySize, _options.Engine, _options.Vcpus), image, _stdout, devices, _stderr);
        VcpuExit? early;
        lock (_stopGate)
        {
            _machine = machine;
            early = _earlyStop;
        }
        if (early is not null) machine.RequestStop(early);
        return machine;
    }

    /// <summary>The exit status, and at most one line about the stop, then --stats and --regs.</summary>
    private int Report(Machine machine, VcpuExit exit)
    {
        int status = ExitStatuses.For(exit);
        _stdout.Flush(); // the guest's output first, then our line about why it stopped
        if (exit.Reason != StopReason.Shutdown)
        {
            Vcpu where = machine.Vcpus[machine.StoppedBy ?? 0];
            string who = machine.Vcpus.Count > 1 && machine.StoppedBy is int k && exit.Reason is StopReason.Fault or StopReason.Error
                ? $"vcpu {k}: " : "";
            _stderr.WriteLine($"sharpvisor: {Cli.Describe(exit with { Message = who + exit.Message }, where.State.Eip)}");
        }
        if (_options.Stats)
            foreach (string line in machine.Notifier.StatsLines())
                _stderr.WriteLine(line);
        if (_options.Regs)
            _stderr.WriteLine(RegsReport.Format(exit, status, machine.Vcpus));
        return status;
    }

    private EventFd Own(EventFd fd)
    {
        _opened.Add(fd);
        return fd;
    }

    private int Unavailable(string message)
    {
        _stderr.WriteLine($"sharpvisor: {Usage.OneLine(message)}");
        return (int)ExitStatus.Unavailable;
    }

    public void Dispose()
    {
        foreach (PosixSignalRegistration signal in _signals) signal.Dispose();
        _signals.Clear();
        _control?.Dispose(); // stopped and joined before the machine: it updates the machine's map
        Machine? machine;
        lock (_stopGate)
        {
            machine = _machine;
            _machine = null;
        }
        machine?.Dispose();
        foreach (EventFd fd in _opened) fd.Dispose();
        _opened.Clear();
        _children?.Dispose(); // stops any child still running, then closes the eventfds the machine used
    }
}
