using Sharpvisor.Native;

namespace Sharpvisor.Tests.Native;

public class ChildProcessTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [Fact]
    public void Spawn_True_ExitsWithZero()
    {
        using var child = ChildProcess.Spawn("/bin/true", ["true"]);
        ChildExit exit = WaitBounded(child);
        Assert.True(exit.Exited);
        Assert.Equal(0, exit.Code);
        Assert.Equal(exit, child.Exit);
    }

    [Fact]
    public void Spawn_False_ExitsWithOne()
    {
        using var child = ChildProcess.Spawn("/bin/false", ["false"]);
        Assert.Equal(new ChildExit(1, 0, false), WaitBounded(child));
    }

    [Fact]
    public void Wait_DecodesAnyExitCode()
    {
        using var child = ChildProcess.Spawn("/bin/sh", ["sh", "-c", "exit 201"]);
        ChildExit exit = WaitBounded(child);
        Assert.Equal(201, exit.Code);
        Assert.Equal(201, exit.ShellStatus);
        Assert.Equal("exit status 201", exit.ToString());
    }

    [Fact]
    public void Spawn_MapsDescriptorsFromThree_InOrder()
    {
        // The child adds 1 to whatever it has as descriptor 3 and 2 to descriptor 4
        // (eventfd writes are 8-byte native-endian counts; dash's printf takes octal).
        using var first = EventFd.Create();
        using var second = EventFd.Create();
        const string script = @"printf '\001\000\000\000\000\000\000\000' >&3 && printf '\002\000\000\000\000\000\000\000' >&4";
        using var child = ChildProcess.Spawn("/bin/sh", ["sh", "-c", script], null, [first.Handle, second.Handle]);
        Assert.Equal(0, WaitBounded(child).Code);
        Assert.Equal(1UL, first.Read());
        Assert.Equal(2UL, second.Read());
    }

    [Fact]
    public void Spawn_ChildHasOnlyStdioAndThePassedDescriptors_NotCloseOnExec()
    {
        using var a = EventFd.Create();
        using var b = EventFd.Create();
        // A descriptor that is not close-on-exec: one that sharpvisor inherited
        // from its own parent (fd:) is like this, and must not reach the child.
        int raw = Interop.EventFd(0, 0);
        Assert.True(raw >= 0);
        using var inheritable = new SafeFdHandle(raw, ownsHandle: true);
        Assert.Equal(0, FdSnapshot.Flags(raw) & 0x80000);

        using var child = ChildProcess.Spawn("/usr/bin/sleep", ["sleep", "30"], null, [a.Handle, b.Handle]);
        // posix_spawn returns after the exec, so the file actions have all run;
        // but sleep's own start-up (setlocale) briefly opens files of its own,
        // so look once it sleeps.
        WaitUntilSleeping(child.Pid);
        int[] fds = Directory.GetFiles($"/proc/{child.Pid}/fd").Select(p => int.Parse(Path.GetFileName(p))).Order().ToArray();
        Assert.Equal([0, 1, 2, 3, 4], fds);
        foreach (int fd in new[] { 3, 4 })
        {
            Assert.Equal("anon_inode:[eventfd]", new FileInfo($"/proc/{child.Pid}/fd/{fd}").LinkTarget);
            Assert.Equal(0, ChildFdFlags(child.Pid, fd) & 0x80000); // O_CLOEXEC as fdinfo shows FD_CLOEXEC
        }
    }

    /// <summary>Waits until the process is in clock_nanosleep or nanosleep (x86-64 numbers 230, 35).</summary>
    private static void WaitUntilSleeping(int pid)
    {
        Assert.True(SpinWait.SpinUntil(() =>
        {
            string call = File.ReadAllText($"/proc/{pid}/syscall");
            return call.StartsWith("230 ", StringComparison.Ordinal) || call.StartsWith("35 ", StringComparison.Ordinal);
        }, TimeSpan.FromSeconds(10)), "the child never went to sleep");
    }

    [Fact]
    public void Spawn_DescriptorsWhoseNumbersAreTargets_LandWhereAsked()
    {
        // h is moved to the lowest free descriptor number F, and g is given at
        // the index whose target is F, with h right after it. A plain dup2 per
        // descriptor, in order, would overwrite h with g before copying it; and
        // dup2(F, F) alone leaves close-on-exec set (glibc before 2.29).
        using var g = EventFd.Create();
        using var h = EventFd.Create();
        g.Signal(1);
        h.Signal(2);
        using SafeFdHandle hAtF = h.Handle.Duplicate();
        int f = hAtF.Fd;
        var list = Enumerable.Repeat(g.Handle, f - ChildProcess.FirstPassedFd + 1).Append(hAtF).ToList();
        using var child = ChildProcess.Spawn("/usr/bin/sleep", ["sleep", "30"], null, list);
        Assert.Equal(1UL, ChildEventFdCount(child.Pid, f));
        Assert.Equal(2UL, ChildEventFdCount(child.Pid, f + 1));
        Assert.Equal(0, ChildFdFlags(child.Pid, f) & 0x80000);
        Assert.Equal(0, ChildFdFlags(child.Pid, f + 1) & 0x80000);
    }

    [Fact]
    public void Spawn_ChildStartsWithDefaultSignalDispositions_AndNothingBlocked()
    {
        // The test itself runs with SIGPIPE ignored (.NET does that), which an
        // exec would pass on: that is what the child must not inherit.
        Assert.NotEqual(0UL, StatusMask(File.ReadAllText("/proc/self/status"), "SigIgn") & (1UL << ((int)Signal.SIGPIPE - 1)));
        (ChildExit exit, string status) = RunCapturingFd3("exec cat /proc/self/status >&3");
        Assert.Equal(0, exit.Code);
        Assert.Equal(0UL, StatusMask(status, "SigIgn"));
        Assert.Equal(0UL, StatusMask(status, "SigBlk"));
    }

    [Fact]
    public void Spawn_ChildThatWritesToAClosedPipe_DiesOfSigpipe()
    {
        var (read, write) = SafeFdHandle.CreatePipe();
        read.Dispose(); // nobody will ever read
        ChildProcess child;
        using (write) child = ChildProcess.Spawn("/bin/sh", ["sh", "-c", "exec yes >&3"], null, [write]);
        using (child)
        {
            ChildExit exit = WaitBounded(child);
            Assert.False(exit.Exited);
            Assert.Equal(Signal.SIGPIPE, exit.Signal);
            Assert.Equal(141, exit.ShellStatus);
        }
    }

    [Fact]
    public void Spawn_EnvironmentIsOursWithTheChangesApplied()
    {
        string ours = Environment.GetEnvironmentVariable("PATH")!;
        var changes = new Dictionary<string, string?> { ["SV_ADDED"] = "a b=c", ["HOME"] = null, ["LISTEN_FDS"] = "1" };
        (ChildExit exit, string output) = RunCapturingFd3(
            "printf '%s|%s|%s|%s' \"$SV_ADDED\" \"${HOME-unset}\" \"$LISTEN_FDS\" \"$PATH\" >&3", changes);
        Assert.Equal(0, exit.Code);
        Assert.Equal($"a b=c|unset|1|{ours}", output);
    }

    [Fact]
    public void Spawn_ShellExecKeepsThePid_SoTheChildCanSetItsOwnListenPid()
    {
        // LISTEN_PID must be the pid of the program itself, which nobody knows
        // before posix_spawn returns; `sh -c 'LISTEN_PID=$$ exec CMD'` sets it
        // from inside, and exec keeps the pid.
        var (read, write) = SafeFdHandle.CreatePipe();
        using (read)
        {
            ChildProcess child;
            using (write) child = ChildProcess.Spawn("/bin/sh", ["sh", "-c", "LISTEN_PID=$$ exec printenv LISTEN_PID >&3"], null, [write]);
            using (child)
            {
                Assert.Equal($"{child.Pid}\n", ReadToEnd(read));
                Assert.Equal(0, WaitBounded(child).Code);
            }
        }
    }

    [Fact]
    public void Terminate_KillsTheChildWithSigterm_AndTheStatusSaysSo()
    {
        using var child = ChildProcess.Spawn("/usr/bin/sleep", ["sleep", "30"]);
        Assert.False(child.TryWait(out _));
        Assert.True(child.Terminate());
        ChildExit exit = WaitBounded(child);
        Assert.Equal(Signal.SIGTERM, exit.Signal);
        Assert.Equal(143, exit.ShellStatus);
        Assert.Equal("killed by SIGTERM", exit.ToString());
        Assert.False(child.Terminate()); // reaped: the pid is no longer ours to signal
    }

    [Fact]
    public void Stop_WhenSigtermIsIgnored_FallsBackToSigkill()
    {
        // exec keeps an ignored disposition, so sleep ignores SIGTERM here.
        using var child = ChildProcess.Spawn("/bin/sh", ["sh", "-c", "trap '' TERM; exec sleep 30"]);
        WaitUntil(() => File.ReadAllText($"/proc/{child.Pid}/comm").Trim() == "sleep");
        ChildExit exit = child.Stop(TimeSpan.FromMilliseconds(200));
        Assert.Equal(Signal.SIGKILL, exit.Signal);
    }

    [Fact]
    public void Wait_WithTimeout_ReturnsFalseWhileTheChildRuns()
    {
        using var child = ChildProcess.Spawn("/usr/bin/sleep", ["sleep", "30"]);
        Assert.False(child.Wait(TimeSpan.FromMilliseconds(50), out _));
        Assert.Null(child.Exit);
    }

    [Fact]
    public void ExitHandle_BecomesReadableInEpoll_WhenTheChildExits()
    {
        using var epoll = new Epoll();
        using var child = ChildProcess.Spawn("/usr/bin/sleep", ["sleep", "30"]);
        epoll.Add(child.ExitHandle, 99);
        Span<EpollReady> ready = stackalloc EpollReady[1];
        Assert.Equal(0, epoll.Wait(ready, 50)); // running: not readable
        child.Kill();
        Assert.Equal(1, epoll.Wait(ready, 30_000));
        Assert.Equal(99UL, ready[0].Token);
        Assert.True(child.TryWait(out ChildExit exit));
        Assert.Equal(Signal.SIGKILL, exit.Signal);
    }

    [Fact]
    public void ExitHandle_OfAChildThatExitsByItself_IsReadable_AndTryWaitReaps()
    {
        using var epoll = new Epoll();
        using var child = ChildProcess.Spawn("/bin/sh", ["sh", "-c", "exit 7"]);
        epoll.Add(child.ExitHandle, 1);
        Span<EpollReady> ready = stackalloc EpollReady[1];
        Assert.Equal(1, epoll.Wait(ready, 30_000));
        Assert.True(child.TryWait(out ChildExit exit));
        Assert.Equal(7, exit.Code);
    }

    [Fact]
    public void Dispose_OfARunningChild_StopsAndReapsIt()
    {
        var child = ChildProcess.Spawn("/usr/bin/sleep", ["sleep", "30"]);
        int pid = child.Pid;
        Assert.True(Directory.Exists($"/proc/{pid}"));
        child.Dispose();
        Assert.False(Directory.Exists($"/proc/{pid}")); // no zombie: gone from the process table
        Assert.Equal(Signal.SIGTERM, child.Exit!.Value.Signal);
        child.Dispose();
    }

    [Fact]
    public void Dispose_OfAnExitedChild_ReapsTheZombie()
    {
        var child = ChildProcess.Spawn("/bin/true", ["true"]);
        int pid = child.Pid;
        WaitUntil(() => ProcState(pid) == "Z");
        child.Dispose();
        Assert.False(Directory.Exists($"/proc/{pid}"));
        Assert.Equal(0, child.Exit!.Value.Code);
    }

    [Fact]
    public void Spawn_OfAMissingProgram_IsEnoent_WithThePath()
    {
        var e = Assert.Throws<ErrnoException>(() => ChildProcess.Spawn("/nonexistent/program", ["program"]));
        Assert.Equal(Errno.ENOENT, e.Errno);
        Assert.Equal("posix_spawn", e.Operation);
        Assert.Equal("posix_spawn: ENOENT (No such file or directory: /nonexistent/program)", e.Message);
    }

    [Fact]
    public void Spawn_OfAFileThatIsNotExecutable_IsEacces()
    {
        var e = Assert.Throws<ErrnoException>(() => ChildProcess.Spawn("/etc/passwd", ["passwd"]));
        Assert.Equal(Errno.EACCES, e.Errno);
    }

    [Fact]
    public void Spawn_WithANulInAnArgument_IsRefused()
    {
        Assert.Throws<ArgumentException>(() => ChildProcess.Spawn("/bin/true", ["true", "a\0b"]));
        Assert.Throws<ArgumentException>(() => ChildProcess.Spawn("/bin/true", []));
        Assert.Throws<ArgumentException>(() => ChildProcess.Spawn("/bin/true", ["true"], new Dictionary<string, string?> { ["A=B"] = "x" }));
    }

    [Theory]
    [InlineData(0x0000, 0, 0, false)]
    [InlineData(0x2a00, 42, 0, false)]
    [InlineData(0xff00, 255, 0, false)]
    [InlineData(0x000f, 0, 15, false)]  // SIGTERM
    [InlineData(0x008b, 0, 11, true)]   // SIGSEGV, core dumped
    public void ChildExit_DecodesTheWaitStatusWord(int status, int code, int signal, bool core)
    {
        Assert.Equal(new ChildExit(code, (Signal)signal, core), ChildExit.FromWaitStatus(status));
    }

    internal static (ChildExit Exit, string Output) RunCapturingFd3(string script, IReadOnlyDictionary<string, string?>? env = null)
    {
        var (read, write) = SafeFdHandle.CreatePipe();
        using (read)
        {
            ChildProcess child;
            // Our write end closes right after the spawn, so the read sees EOF when the child exits.
            using (write) child = ChildProcess.Spawn("/bin/sh", ["sh", "-c", script], env, [write]);
            using (child)
            {
                string output = ReadToEnd(read);
                return (WaitBounded(child), output);
            }
        }
    }

    internal static unsafe string ReadToEnd(SafeFdHandle fd)
    {
        var bytes = new List<byte>();
        byte* buf = stackalloc byte[4096];
        nint n;
        while ((n = Interop.Read(fd, buf, 4096)) != 0)
        {
            if (n < 0)
            {
                Assert.Equal(Errno.EINTR, Interop.LastErrno);
                continue;
            }
            bytes.AddRange(new ReadOnlySpan<byte>(buf, (int)n));
        }
        return System.Text.Encoding.UTF8.GetString(bytes.ToArray());
    }

    internal static ChildExit WaitBounded(ChildProcess child)
    {
        Assert.True(child.Wait(Patience, out ChildExit exit), $"child {child.Pid} still runs after {Patience}");
        return exit;
    }

    private static void WaitUntil(Func<bool> condition)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(sw.Elapsed < Patience, "condition not met in time");
            Thread.Sleep(5);
        }
    }

    private static ulong StatusMask(string status, string key) =>
        Convert.ToUInt64(status.Split('\n').Single(l => l.StartsWith(key + ":"))[(key.Length + 1)..].Trim(), 16);

    private static string ProcState(int pid) =>
        File.ReadAllLines($"/proc/{pid}/status").Single(l => l.StartsWith("State:"))["State:".Length..].Trim()[..1];

    private static int ChildFdFlags(int pid, int fd) =>
        Convert.ToInt32(File.ReadAllLines($"/proc/{pid}/fdinfo/{fd}").Single(l => l.StartsWith("flags:"))["flags:".Length..].Trim(), 8);

    private static ulong ChildEventFdCount(int pid, int fd) =>
        Convert.ToUInt64(File.ReadAllLines($"/proc/{pid}/fdinfo/{fd}").Single(l => l.StartsWith("eventfd-count:"))["eventfd-count:".Length..].Trim(), 16);
}

[Collection(Serial.Name)]
public class ChildProcessLeakTests
{
    [Fact]
    public void SpawnWaitDispose_LeavesOurDescriptorsAsTheyWere()
    {
        using var a = EventFd.Create();
        using var b = EventFd.Create();
        var before = FdSnapshot.Open();
        using (var child = ChildProcess.Spawn("/bin/true", ["true"], null, [a.Handle, b.Handle]))
            ChildProcessTests.WaitBounded(child);
        Assert.Equal(before, FdSnapshot.Open());
        Assert.False(a.Handle.IsClosed);
    }

    [Fact]
    public void FailedSpawn_LeavesOurDescriptorsAsTheyWere()
    {
        using var a = EventFd.Create();
        var before = FdSnapshot.Open();
        Assert.Throws<ErrnoException>(() => ChildProcess.Spawn("/nonexistent/program", ["program"], null, [a.Handle]));
        Assert.Equal(before, FdSnapshot.Open());
    }
}
