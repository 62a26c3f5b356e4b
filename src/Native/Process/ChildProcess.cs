using System.Collections;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Sharpvisor.Native;

/// <summary>
/// A child process that we started and must reap. It is how Sharpvisor runs
/// the program that services a VM's eventfds: the program gets them as
/// descriptors 3, 4, ... (systemd's LISTEN_FDS convention), and the VM learns
/// through <see cref="ExitHandle"/> if it dies early.
/// </summary>
/// <remarks>
/// <para>
/// <c>System.Diagnostics.Process</c> cannot do this: it passes no descriptor
/// other than 0, 1 and 2. So the child is started with posix_spawn(3), whose
/// file actions run in the child between fork and exec.
/// </para>
/// <para>
/// The child starts clean, whatever state the .NET runtime left in this
/// process: every signal at its default disposition (.NET ignores SIGPIPE, and
/// an ignored signal stays ignored across exec), no signal blocked, and no
/// descriptor open other than 0, 1, 2 and the ones it was given.
/// </para>
/// <para>
/// The pid is ours until we reap it: only then can the kernel give the number
/// to another process. So every <c>kill</c> and <c>waitpid</c> happens under one
/// lock, and once the child is reaped no signal is sent any more. Dispose
/// stops a child that still runs and always reaps it, so none is left a zombie.
/// </para>
/// </remarks>
/// <example>
/// <code>
/// using var kick = EventFd.Create();
/// using var child = ChildProcess.Spawn("/bin/sh", ["sh", "-c", "exec my-device"],
///     new Dictionary&lt;string, string?&gt; { ["LISTEN_FDS"] = "1" }, [kick.Handle]);
/// // my-device sees kick as descriptor 3.
/// ChildExit exit = child.Stop(TimeSpan.FromSeconds(2)); // SIGTERM, then SIGKILL if need be
/// </code>
/// </example>
public sealed class ChildProcess : IDisposable
{
    /// <summary>How long <see cref="Dispose"/> lets a running child handle SIGTERM before it sends SIGKILL.</summary>
    public static readonly TimeSpan DisposeGrace = TimeSpan.FromSeconds(3);

    /// <summary>First descriptor number the given descriptors land on, after stdin, stdout and stderr.</summary>
    public const int FirstPassedFd = 3;

    private readonly Lock _lock = new();
    private readonly SafeFdHandle _pidfd;
    private ChildExit? _exit;
    private bool _reapedElsewhere;
    private bool _disposed;

    private ChildProcess(int pid, SafeFdHandle pidfd)
    {
        Pid = pid;
        _pidfd = pidfd;
    }

    /// <summary>The child's process id. It stays the child's until it is reaped.</summary>
    public int Pid { get; }

    /// <summary>
    /// A descriptor (a pidfd, close-on-exec) that polls readable once the child
    /// has exited, so a VM's <see cref="Epoll"/> loop can notice a child that
    /// dies while it runs. Reading it is not reaping: call <see cref="TryWait"/>.
    /// </summary>
    public SafeFdHandle ExitHandle => _pidfd;

    /// <summary>How the child ended, once it has been reaped; null before.</summary>
    public ChildExit? Exit
    {
        get { lock (_lock) return _exit; }
    }

    /// <summary>
    /// Starts <paramref name="path"/> (run as given: no PATH search, see
    /// <see cref="ProgramPath.Find"/>) with <paramref name="argv"/> (argv[0] included).
    /// The environment is this process's, with each entry of
    /// <paramref name="environmentChanges"/> set, or removed where its value is null.
    /// <paramref name="descriptors"/> become the child's descriptors 3, 4, ... in
    /// order (not close-on-exec there; ours are untouched). The child shares our
    /// stdin, stdout and stderr, and has no other descriptor.
    /// </summary>
    /// <exception cref="ErrnoException">
    /// The child could not start, e.g. <c>posix_spawn: ENOENT</c> for a missing
    /// program or EACCES for one that is not executable. No process is left behind.
    /// </exception>
    public static unsafe ChildProcess Spawn(
        string path,
        IReadOnlyList<string> argv,
        IReadOnlyDictionary<string, string?>? environmentChanges = null,
        IReadOnlyList<SafeFdHandle>? descriptors = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(argv);
        if (argv.Count == 0) throw new ArgumentException("needs at least argv[0]", nameof(argv));
        descriptors ??= [];

        using var pathBytes = new CStringArray([path], nameof(path)); // one C string: its [0]
        using var args = new CStringArray(argv, nameof(argv));
        using var envp = new CStringArray(ChildEnvironment(environmentChanges), nameof(environmentChanges));

        // The child's descriptors are filled in order by dup2(source, 3 + i). A
        // source may itself be a number in 3..3+n, which an earlier dup2 would
        // overwrite; and dup2(fd, fd) is a no-op in the kernel that leaves
        // close-on-exec set (glibc 2.36 here special-cases it; older glibc did not).
        // Copies numbered above every target avoid both. They are close-on-exec,
        // and closed in the child by the closefrom below, so only 3+i survive exec.
        int firstFree = FirstPassedFd + descriptors.Count;
        var sources = new List<SafeFdHandle>(descriptors.Count);
        // SAFETY: three blocks larger than glibc's structures (see their sizes
        // in Interop.Spawn), only libc writes the first two, and we write the
        // first 8 bytes of the 128-byte sigset ourselves; all freed once, below.
        void* fileActions = NativeMemory.AllocZeroed(Interop.PosixSpawnFileActionsSize);
        void* attr = NativeMemory.AllocZeroed(Interop.PosixSpawnAttrSize);
        void* sigset = NativeMemory.AllocZeroed(Interop.SigsetSize);
        bool fileActionsReady = false, attrReady = false;
        try
        {
            foreach (SafeFdHandle d in descriptors)
            {
                int copy = Interop.Fcntl(d, Interop.F_DUPFD_CLOEXEC, firstFree);
                if (copy < 0) ThrowHelper.ThrowLastErrno("fcntl(F_DUPFD_CLOEXEC)");
                sources.Add(new SafeFdHandle(copy, ownsHandle: true));
            }

            Check(Interop.PosixSpawnFileActionsInit(fileActions), "posix_spawn_file_actions_init");
            fileActionsReady = true;
            for (int i = 0; i < sources.Count; i++)
                Check(Interop.PosixSpawnFileActionsAddDup2(fileActions, sources[i].Fd, FirstPassedFd + i), "posix_spawn_file_actions_adddup2");
            Check(Interop.PosixSpawnFileActionsAddClosefromNp(fileActions, firstFree), "posix_spawn_file_actions_addclosefrom_np");

            Check(Interop.PosixSpawnattrInit(attr), "posix_spawnattr_init");
            attrReady = true;
            // Every signal back to its default, built by hand: sigfillset leaves
            // out glibc's internal signals 32 and 33, and glibc's posix_spawn
            // sets those to SIG_IGN in the child unless they are in this set;
            // an ignored signal stays ignored across exec.
            *(ulong*)sigset = Interop.SigsetAllLinuxSignals;
            Check(Interop.PosixSpawnattrSetsigdefault(attr, sigset), "posix_spawnattr_setsigdefault");
            *(ulong*)sigset = 0; // the empty set: nothing blocked
            Check(Interop.PosixSpawnattrSetsigmask(attr, sigset), "posix_spawnattr_setsigmask");
            Check(Interop.PosixSpawnattrSetflags(attr, Interop.POSIX_SPAWN_SETSIGDEF | Interop.POSIX_SPAWN_SETSIGMASK), "posix_spawnattr_setflags");

            int pid;
            int error;
            while ((error = Interop.PosixSpawn(&pid, *pathBytes.Pointer, fileActions, attr, args.Pointer, envp.Pointer)) == (int)Errno.EINTR) { }
            if (error != 0) ThrowHelper.ThrowErrno("posix_spawn", (Errno)error, $"{((Errno)error).Describe()}: {path}");

            return new ChildProcess(pid, OpenPidfd(pid));
        }
        finally
        {
            if (attrReady) Interop.PosixSpawnattrDestroy(attr);
            if (fileActionsReady) Interop.PosixSpawnFileActionsDestroy(fileActions);
            NativeMemory.Free(sigset);
            NativeMemory.Free(attr);
            NativeMemory.Free(fileActions);
            foreach (SafeFdHandle s in sources) s.Dispose();
        }
    }

    /// <summary>
    /// Reaps the child if it has exited, without blocking. Returns true with
    /// its status if it has (every later call gives the same), false while it runs.
    /// </summary>
    /// <exception cref="ErrnoException"><c>waitpid: ECHILD</c> if something else in this process reaped it.</exception>
    public unsafe bool TryWait(out ChildExit exit)
    {
        lock (_lock)
        {
            if (_exit is { } known)
            {
                exit = known;
                return true;
            }
            if (_reapedElsewhere) ThrowHelper.ThrowErrno("waitpid", Errno.ECHILD);
            int status;
            int r;
            while ((r = Interop.Waitpid(Pid, &status, Interop.WNOHANG)) < 0)
            {
                Errno e = Interop.LastErrno;
                if (e == Errno.EINTR) continue;
                // .NET's own SIGCHLD handler reaps every child when this
                // process was started with SIGCHLD ignored; then the status is gone.
                if (e == Errno.ECHILD) _reapedElsewhere = true;
                ThrowHelper.ThrowErrno("waitpid", e);
            }
            if (r == 0)
            {
                exit = default;
                return false;
            }
            _exit = ChildExit.FromWaitStatus(status);
            exit = _exit.Value;
            return true;
        }
    }

    /// <summary>
    /// Waits up to <paramref name="timeout"/> (infinite: <see cref="Timeout.InfiniteTimeSpan"/>)
    /// for the child to exit, and reaps it. Returns false if it still runs.
    /// </summary>
    public bool Wait(TimeSpan timeout, out ChildExit exit)
    {
        int timeoutMs = Poll.ToMilliseconds(timeout);
        long start = Stopwatch.GetTimestamp();
        while (!TryWait(out exit))
        {
            int left = timeoutMs < 0 ? -1 : Poll.Remaining(start, timeoutMs);
            if (!WaitForExitHandle(left)) return TryWait(out exit); // timed out; one last look
        }
        return true;
    }

    /// <summary>Blocks until the child exits, reaps it, and says how it ended.</summary>
    public ChildExit Wait()
    {
        Wait(Timeout.InfiniteTimeSpan, out ChildExit exit);
        return exit;
    }

    /// <summary>
    /// Sends <paramref name="signal"/> with kill(2). Returns false, sending
    /// nothing, once the child has been reaped: its pid may name another process by then.
    /// </summary>
    public bool SendSignal(Signal signal)
    {
        lock (_lock)
        {
            if (_exit is not null || _reapedElsewhere) return false;
            // An exited but unreaped child is a zombie, and kill on a zombie
            // succeeds, so ESRCH cannot happen here; anything else is a bug.
            if (Interop.Kill(Pid, (int)signal) != 0) ThrowHelper.ThrowLastErrno("kill");
            return true;
        }
    }

    /// <summary>Asks the child to end (SIGTERM). False if it was already reaped.</summary>
    public bool Terminate() => SendSignal(Signal.SIGTERM);

    /// <summary>Ends the child now (SIGKILL). False if it was already reaped.</summary>
    public bool Kill() => SendSignal(Signal.SIGKILL);

    /// <summary>
    /// Ends the child the polite way and reaps it: SIGTERM, up to
    /// <paramref name="grace"/> to exit, then SIGKILL. A child that has
    /// already exited is just reaped.
    /// </summary>
    public ChildExit Stop(TimeSpan grace)
    {
        if (Wait(TimeSpan.Zero, out ChildExit exit)) return exit;
        Terminate();
        if (Wait(grace, out exit)) return exit;
        Kill();
        return Wait();
    }

    /// <summary>
    /// Stops the child if it still runs (<see cref="Stop"/> with
    /// <see cref="DisposeGrace"/>), reaps it, and closes <see cref="ExitHandle"/>.
    /// </summary>
    public void Dispose()
    {
        if (_disposed) return;
        try
        {
            if (!_reapedElsewhere) Stop(DisposeGrace);
        }
        catch (ErrnoException e) when (e.Errno == Errno.ECHILD)
        {
            // Reaped by someone else: there is nothing left to stop or reap.
        }
        finally
        {
            _pidfd.Dispose();
            _disposed = true;
        }
    }

    private unsafe bool WaitForExitHandle(int timeoutMs)
    {
        bool addedRef = false;
        try
        {
            _pidfd.DangerousAddRef(ref addedRef);
            var fd = new Interop.PollFd { Fd = _pidfd.Fd, Events = Interop.POLLIN };
            return Poll.Wait(&fd, 1, timeoutMs, "poll(pidfd)") > 0;
        }
        finally
        {
            if (addedRef) _pidfd.DangerousRelease();
        }
    }

    /// <summary>
    /// The pidfd for a child just spawned. If the kernel refuses one, the
    /// child is killed and reaped before the error is thrown, so that a failed
    /// Spawn leaves no process behind.
    /// </summary>
    private static unsafe SafeFdHandle OpenPidfd(int pid)
    {
        int fd = Interop.PidfdOpen(pid, 0);
        if (fd >= 0) return new SafeFdHandle(fd, ownsHandle: true);
        Errno e = Interop.LastErrno;
        Interop.Kill(pid, (int)Signal.SIGKILL);
        int status;
        while (Interop.Waitpid(pid, &status, 0) < 0 && Interop.LastErrno == Errno.EINTR) { }
        ThrowHelper.ThrowErrno("pidfd_open", e);
        return null; // unreachable
    }

    /// <summary>This process's environment with the changes applied, as NAME=value strings.</summary>
    private static List<string> ChildEnvironment(IReadOnlyDictionary<string, string?>? changes)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (DictionaryEntry e in System.Environment.GetEnvironmentVariables())
            env[(string)e.Key] = (string?)e.Value ?? "";
        if (changes is not null)
        {
            foreach ((string name, string? value) in changes)
            {
                if (name.Length == 0 || name.Contains('='))
                    throw new ArgumentException($"not a variable name: \"{name}\"", "environmentChanges");
                if (value is null) env.Remove(name);
                else env[name] = value;
            }
        }
        return env.Select(kv => $"{kv.Key}={kv.Value}").ToList();
    }

    private static void Check(int error, string operation)
    {
        if (error != 0) ThrowHelper.ThrowErrno(operation, (Errno)error);
    }
}
