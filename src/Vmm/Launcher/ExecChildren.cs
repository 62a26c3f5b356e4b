using Sharpvisor.Native;

namespace Sharpvisor.Vmm.Launcher;

/// <summary>
/// The children of <c>exec:CMD</c> targets: for each, an eventfd that
/// Sharpvisor creates (blocking, counter mode) and attaches like an
/// <c>fd:</c> target's, and a child that gets it as descriptor 3 with the
/// <c>sd_listen_fds</c> handshake (<c>LISTEN_FDS</c>, <c>LISTEN_PID</c>,
/// <c>LISTEN_FDNAMES</c>). Targets with the identical CMD share one child,
/// which holds all their descriptors from 3 on: notify targets first, then
/// irq targets, each in command-line order. So one responder can hold both
/// sides of a round trip.
/// </summary>
/// <remarks>
/// <para>
/// Life cycle: <see cref="Prepare"/> looks every program up and creates the
/// eventfds (nothing runs yet, so a missing program costs nothing);
/// <see cref="Start"/> starts the children just before the VM runs, and a
/// watcher thread; <see cref="Stop"/>, when the VM has ended for any
/// reason, lets each child catch up with its pending notifications (up to
/// <see cref="Grace"/>), then sends it SIGTERM and reaps it (SIGKILL after
/// another <see cref="Grace"/> for one that ignores SIGTERM). A child that exits
/// while the VM runs is reported in one line on stderr, and the guest keeps
/// running: its notifications still reach the eventfd, which nobody reads.
/// </para>
/// <para>
/// The watcher sleeps in epoll on the children's pidfds and is not on the
/// notify path: a notification goes from the vCPU to the eventfd as for any
/// target.
/// </para>
/// </remarks>
public sealed class ExecChildren : IDisposable
{
    /// <summary>How long a child has to exit after SIGTERM at the end of the VM before it gets SIGKILL.</summary>
    public static readonly TimeSpan Grace = TimeSpan.FromSeconds(3);

    /// <summary>One child: its command, the targets whose eventfds it holds (in descriptor order), and the process once started.</summary>
    private sealed class Group(string command, string firstSpec)
    {
        public readonly string Command = command;
        public readonly string FirstSpec = firstSpec;
        public readonly List<(string Name, TargetSpec Spec, EventFd Fd)> Members = [];
        public ChildProcess? Child;
    }

    private readonly List<Group> _groups = [];
    private readonly Dictionary<TargetSpec, EventFd> _bySpec = new(ReferenceEqualityComparer.Instance);
    private EventFd? _wake;
    private Thread? _watcher;
    private TextWriter _stderr = TextWriter.Null;
    private bool _stopped;

    private ExecChildren() { }

    /// <summary>True if some target is an <c>exec:</c> one.</summary>
    public bool Any => _groups.Count > 0;

    /// <summary>
    /// Groups the <c>exec:</c> targets among <paramref name="specs"/> (notify
    /// targets first, then irq targets, each in command-line order) by CMD, looks up each CMD's program
    /// (with <c>$SHARPVISOR</c> and the rest of the child's environment) and
    /// creates one eventfd per target. Starts nothing.
    /// </summary>
    /// <exception cref="TargetUnavailableException">A program is not found, or not executable (exit 69).</exception>
    public static ExecChildren Prepare(IEnumerable<TargetSpec> specs)
    {
        var children = new ExecChildren();
        try
        {
            foreach (TargetSpec spec in specs.Where(s => s.Target.Kind == TargetKind.Exec))
            {
                string command = spec.Target.Command, name = spec.Name;
                Group? group = children._groups.Find(g => g.Command == command);
                if (group is null)
                {
                    group = new Group(command, spec.ToString()!);
                    LookUp(group);
                    children._groups.Add(group);
                }
                var fd = EventFd.Create(); // blocking, counter mode, close-on-exec (the child gets a dup2)
                group.Members.Add((name, spec, fd));
                children._bySpec[spec] = fd;
            }
            return children;
        }
        catch
        {
            children.Dispose();
            throw;
        }
    }

    /// <summary>The eventfd created for <paramref name="spec"/>'s target (owned here, closed by <see cref="Dispose"/>).</summary>
    public EventFd EventFdFor(TargetSpec spec) => _bySpec[spec];

    /// <summary>
    /// The path children find in <c>$SHARPVISOR</c>: a program that runs this
    /// launcher, so that <c>exec:$SHARPVISOR listen</c> works. For the
    /// native-AOT and single-file builds and the apphost, that is the running
    /// executable itself. Run as <c>dotnet sharpvisor.dll</c>, the executable
    /// is <c>dotnet</c>, which would need the dll as its first argument, so
    /// it is the apphost <c>sharpvisor</c> the SDK builds next to the dll
    /// instead (it runs the same dll). Null if neither exists.
    /// </summary>
    public static string? LauncherPath()
    {
        string? process = System.Environment.ProcessPath;
        if (process is not null && Path.GetFileNameWithoutExtension(process) != "dotnet") return process;
        string apphost = Path.Combine(AppContext.BaseDirectory, "sharpvisor");
        return ProgramPath.IsExecutableFile(apphost) ? apphost : null;
    }

    /// <summary>What a child's environment holds beyond ours: the handshake, and where the launcher is.</summary>
    private static Dictionary<string, string?> ChildEnvironment(Group group) => new()
    {
        ["LISTEN_FDS"] = group.Members.Count.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["LISTEN_FDNAMES"] = string.Join(':', group.Members.Select(m => m.Name)),
        ["LISTEN_PID"] = null, // the shell sets it, to its own pid, which exec passes on
        ["SHARPVISOR"] = LauncherPath(),
    };

    private static void LookUp(Group group)
    {
        Dictionary<string, string?> changes = ChildEnvironment(group);
        string? Variable(string name) => changes.TryGetValue(name, out string? v) ? v : System.Environment.GetEnvironmentVariable(name);
        if (!ShellWords.TryFindProgram(group.Command, Variable, out string program, out string error))
            throw new TargetUnavailableException($"{group.FirstSpec}: target unavailable: CMD {error}");
        if (ProgramPath.Find(program) is null)
        {
            string why = program.Contains('/')
                ? Directory.Exists(program) ? $"program '{program}' is a directory, not an executable file"
                    : File.Exists(program) ? $"program '{program}' is not executable"
                    : $"program '{program}' not found"
                : $"program '{program}' not found in PATH";
            if (program.Length == 0) why = "CMD names no program (an empty variable? $SHARPVISOR is unset when there is no sharpvisor executable beside sharpvisor.dll)";
            throw new TargetUnavailableException($"{group.FirstSpec}: target unavailable: {why}");
        }
    }

    // Journey: exec
    /// <summary>
    /// Starts every child, then the watcher. A child runs as
    /// <c>/bin/sh -c 'LISTEN_PID=$$ exec CMD'</c>: the pid is known only after
    /// posix_spawn returns, too late to put in the environment, but the shell
    /// knows its own, and <c>exec</c> hands that pid to CMD's program, so
    /// LISTEN_PID names the process that reads the descriptors. (Debian's
    /// dash forks even a lone <c>-c</c> command unless told <c>exec</c>.) A
    /// pipeline or compound CMD is run in other processes, so it does not
    /// get a valid LISTEN_PID.
    /// </summary>
    /// <exception cref="TargetUnavailableException">A child could not be started (exit 69); the ones started are stopped.</exception>
    public void Start(TextWriter stderr)
    {
        _stderr = stderr;
        foreach (Group group in _groups)
        {
            try
            {
                group.Child = ChildProcess.Spawn("/bin/sh", ["sh", "-c", "LISTEN_PID=$$ exec " + group.Command],
                    ChildEnvironment(group), group.Members.Select(m => m.Fd.Handle).ToList());
            }
            catch (ErrnoException e)
            {
                Stop();
                throw new TargetUnavailableException($"{group.FirstSpec}: target unavailable: cannot start /bin/sh: {e.Message}");
            }
        }
        if (_groups.Count == 0) return;
        _wake = EventFd.Create(EventFdFlags.NonBlocking);
        var epoll = new Epoll();
        try
        {
            epoll.Add(_wake.Handle, ulong.MaxValue);
            for (int i = 0; i < _groups.Count; i++) epoll.Add(_groups[i].Child!.ExitHandle, (ulong)i);
            _watcher = new Thread(() => Watch(epoll)) { Name = "exec-watcher", IsBackground = true };
            _watcher.Start();
        }
        catch
        {
            epoll.Dispose();
            throw;
        }
    }

    /// <summary>Reports each child that exits while the VM runs, until <see cref="Stop"/> wakes it.</summary>
    private void Watch(Epoll epoll)
    {
        using (epoll)
        {
            Span<EpollReady> ready = stackalloc EpollReady[8];
            try
            {
                while (true)
                {
                    int n = epoll.Wait(ready, -1);
                    for (int k = 0; k < n; k++)
                    {
                        if (ready[k].Token == ulong.MaxValue) return;
                        Group group = _groups[(int)ready[k].Token];
                        ChildProcess child = group.Child!;
                        epoll.Remove(child.ExitHandle); // it stays readable for good
                        string how = child.TryWait(out ChildExit exit) ? exit.ToString() : "status unknown";
                        _stderr.WriteLine($"sharpvisor: exec child '{group.Command}' (pid {child.Pid}) exited: {how}");
                    }
                }
            }
            catch (Exception e)
            {
                // Not worth ending the VM for: the children are still stopped and reaped at the end.
                _stderr.WriteLine($"sharpvisor: exec child watcher failed: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
            }
        }
    }

    /// <summary>
    /// Ends every child that still runs: the watcher first (an exit from here
    /// on is ours, not news), then SIGTERM to all, then each is reaped; one
    /// still running <see cref="Grace"/> later gets SIGKILL, and a line says so.
    /// Safe to call more than once.
    /// </summary>
    public void Stop()
    {
        if (_stopped) return;
        _stopped = true;
        if (_watcher is not null)
        {
            _wake!.Signal();
            _watcher.Join();
        }
        var running = _groups.Where(g => g.Child is not null).ToList();
        CatchUp(running);
        foreach (Group g in running) Try(() => g.Child!.Terminate());
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        foreach (Group g in running)
        {
            ChildProcess child = g.Child!;
            TimeSpan left = Grace - System.Diagnostics.Stopwatch.GetElapsedTime(start);
            Try(() =>
            {
                if (child.Wait(left > TimeSpan.Zero ? left : TimeSpan.Zero, out _)) return;
                child.Kill();
                child.Wait();
                _stderr.WriteLine($"sharpvisor: exec child '{g.Command}' (pid {child.Pid}) was still running {Grace.TotalSeconds:0.#} s after SIGTERM: sent SIGKILL");
            });
        }
    }

    /// <summary>
    /// Before SIGTERM, each child that still runs gets up to <see cref="Grace"/>
    /// to read what is pending on its notify eventfds. The VM may end before a
    /// child has even started (a .NET <c>listen</c> takes ~70 ms to start; a
    /// short guest is done sooner), and a signal then would kill it before it
    /// saw anything. A child that has read all its notifications is past its
    /// start-up and is signalled at once; one that never reads them costs the
    /// wait. The counters are looked at in fdinfo every few milliseconds:
    /// nothing can wait in the kernel for a counter to become zero.
    /// </summary>
    private static void CatchUp(List<Group> running)
    {
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        var pending = running.Where(g => g.Members.Any(m => m.Spec is NotifySpec)).ToList();
        while (pending.Count > 0 && System.Diagnostics.Stopwatch.GetElapsedTime(start) < Grace)
        {
            pending.RemoveAll(g => HasExited(g.Child!)
                || g.Members.All(m => m.Spec is not NotifySpec || m.Fd.PeekCount() == 0));
            if (pending.Count > 0) Thread.Sleep(5);
        }
    }

    private static bool HasExited(ChildProcess child)
    {
        try
        {
            return child.TryWait(out _);
        }
        catch (ErrnoException e) when (e.Errno == Errno.ECHILD)
        {
            return true;
        }
    }

    /// <summary>A child reaped by someone else (ECHILD) has nothing left to stop.</summary>
    private static void Try(Action action)
    {
        try
        {
            action();
        }
        catch (ErrnoException e) when (e.Errno == Errno.ECHILD) { }
    }

    /// <summary>Stops the children (if <see cref="Stop"/> has not) and closes our copies of the eventfds: after the machine, which uses them.</summary>
    public void Dispose()
    {
        Stop();
        foreach (Group g in _groups)
        {
            g.Child?.Dispose();
            foreach (var m in g.Members) m.Fd.Dispose();
        }
        _wake?.Dispose();
    }
}
