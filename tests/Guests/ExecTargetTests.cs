using System.Text.RegularExpressions;
using Sharpvisor.Native;
using Sharpvisor.Tests.Vmm;
using static Iced.Intel.AssemblerRegisters;

namespace Sharpvisor.Tests.Guests;

/// <summary>
/// exec: targets and `sharpvisor listen` between real processes: the test
/// starts `dotnet sharpvisor.dll run` (stdout and stderr in files, since the
/// children it starts write to them too), and sharpvisor starts its children,
/// `$SHARPVISOR listen` among them. Counts are exact on every side.
/// </summary>
/// <remarks>
/// No test waits on a clock. Where the test must know a child is up before
/// the guest goes on, the guest is the ping-pong one, answered by this
/// process through fd: targets, and the answers wait for what the test needs
/// to see (a pid file, a line on stderr).
/// </remarks>
public class ExecTargetTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(2);

    private sealed record Finished(ChildExit Exit, string Stdout, string Stderr)
    {
        public string[] StderrLines => Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);

        /// <summary>
        /// One line of `listen`'s. The guest and the child share stdout, and
        /// the guest writes a line in pieces ("rounds ", then "1000\n"), so a
        /// child's line can land inside one of the guest's: found anywhere,
        /// not only at a line start. The time has exactly ten digits, so that
        /// guest digits right before a child's line ("1000" then the line,
        /// then the guest's "\n") stay the guest's.
        /// </summary>
        private static readonly Regex ListenLine = new(@"\d{10}\.\d{6} (\S+) (\d+)\n");

        /// <summary>The lines `listen` printed on the shared stdout: name -> (lines, sum of counts).</summary>
        public Dictionary<string, (int Lines, ulong Sum)> Listened()
        {
            var seen = new Dictionary<string, (int Lines, ulong Sum)>();
            foreach (Match m in ListenLine.Matches(Stdout))
            {
                seen.TryGetValue(m.Groups[1].Value, out var s);
                seen[m.Groups[1].Value] = (s.Lines + 1, s.Sum + ulong.Parse(m.Groups[2].Value));
            }
            return seen;
        }

        /// <summary>What the guest printed: stdout without `listen`'s lines, wherever they landed.</summary>
        public string GuestOutput => ListenLine.Replace(Stdout, "");
    }

    private static string Quote(string s) => "'" + s.Replace("'", "'\\''") + "'";

    /// <summary>Starts `dotnet sharpvisor.dll ARGS` with <paramref name="fds"/> as descriptors 3.., output in dir/out and dir/err.</summary>
    private static ChildProcess Start(TempDir dir, IReadOnlyList<SafeFdHandle> fds, params string[] args)
    {
        string command = string.Join(' ', new[] { "dotnet", ProcessPathTests.SharpvisorDll() }.Concat(args).Select(Quote));
        return ChildProcess.Spawn("/bin/sh", ["sh", "-c", $"exec {command} >{Quote(Path.Combine(dir.Path, "out"))} 2>{Quote(Path.Combine(dir.Path, "err"))}"],
            descriptors: fds);
    }

    private static Finished Finish(TempDir dir, ChildProcess sharpvisor)
    {
        Assert.True(sharpvisor.Wait(Patience, out ChildExit exit), "sharpvisor did not finish");
        return new Finished(exit, File.ReadAllText(Path.Combine(dir.Path, "out")), File.ReadAllText(Path.Combine(dir.Path, "err")));
    }

    /// <summary>
    /// Runs the ping-pong guest with this process as its responder (0x10 on
    /// fd:3, interrupt 5 on fd:4) and <paramref name="extra"/> targets. The
    /// first answer waits until <paramref name="ready"/> holds, so the guest
    /// keeps running (halted) until the test has seen what it needs.
    /// <paramref name="during"/> runs then, while the VM still runs.
    /// </summary>
    private static Finished PingPong(TempDir dir, Func<bool> ready, Action? during, params string[] extra)
    {
        using var ping = EventFd.Create();
        using var pong = EventFd.Create();
        using var sharpvisor = Start(dir, [ping.Handle, pong.Handle],
            ["run", GuestBinaries.Guest("pingpong"), "--engine", "threaded", "--timeout", "120",
             "--notify", "0x10=fd:3", "--irq", "5=fd:4", "--stats", .. extra]);
        using var cancel = new CancellationTokenSource();
        Exception? failed = null;
        var responder = new Thread(() =>
        {
            try
            {
                var waited = System.Diagnostics.Stopwatch.StartNew();
                while (!ready())
                {
                    if (waited.Elapsed > Patience || cancel.IsCancellationRequested) return;
                    Thread.Sleep(10);
                }
                during?.Invoke();
                while (true)
                {
                    ping.Read(cancel.Token);
                    pong.Signal();
                }
            }
            catch (OperationCanceledException) { }
            catch (Exception e) { failed = e; }
        });
        responder.Start();
        try
        {
            return Finish(dir, sharpvisor);
        }
        finally
        {
            cancel.Cancel();
            responder.Join();
            if (failed is not null) throw new InvalidOperationException("the responder failed", failed);
        }
    }

    private static int ReadPid(string file) => int.Parse(File.ReadAllText(file).Trim());

    private static bool Exists(string file) => File.Exists(file);

    [Fact]
    public void NotifyLoop_IntoAListenChild_PrintsExactlyWhatTheGuestSent()
    {
        GuestBinaries.RequireBuilt();
        using var dir = new TempDir();
        // One notification answered (so listen is surely up), then 999 that
        // nobody waits for, then shutdown: listen must still count all 1000.
        string guest = NotifyTests.Flat(dir, "burst.bin", a =>
        {
            var loop = a.CreateLabel();
            NotifyTests.Hypercall(a, 17, 0x10);
            NotifyTests.Hypercall(a, 10, 0);     // LHCALL_HALT until listen answers with interrupt 5
            a.mov(esi, 999);
            a.Label(ref loop);
            NotifyTests.Hypercall(a, 17, 0x10);
            a.dec(esi);
            a.jnz(loop);
            NotifyTests.Hypercall(a, 2, 0);
        });
        const string listen = "exec:$SHARPVISOR listen --answer notify-0x10=irq-5";
        using var sharpvisor = Start(dir, [], "run", guest, "--flat", "0x1000", "--engine", "threaded", "--timeout", "120",
            "--notify", "0x10=" + listen, "--irq", "5=" + listen, "--stats");
        Finished r = Finish(dir, sharpvisor);
        Assert.Equal(["notify 0x10 delivered 1000"], r.StderrLines);
        Assert.Equal(0, r.Exit.ShellStatus);
        var listened = r.Listened();
        Assert.Equal(1000UL, listened["notify-0x10"].Sum);
        Assert.False(listened.ContainsKey("irq-5")); // an --answer destination is written, not watched
        Assert.Equal(r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length, listened["notify-0x10"].Lines);
    }

    [Fact]
    public void PingPong_WithOneSharedExecChild_AnswersEveryRoundExactly()
    {
        GuestBinaries.RequireBuilt();
        using var dir = new TempDir();
        const string listen = "exec:$SHARPVISOR listen --answer notify-0x10=irq-5";
        using var sharpvisor = Start(dir, [], "run", GuestBinaries.Guest("pingpong"), "--engine", "threaded", "--timeout", "120",
            "--notify", "0x10=" + listen, "--irq", "5=" + listen, "--stats");
        Finished r = Finish(dir, sharpvisor);
        Assert.Equal(["notify 0x10 delivered 1000"], r.StderrLines);
        Assert.Equal(0, r.Exit.ShellStatus);
        Assert.Equal("rounds 1000\npongs 1000\nother 0\nundelivered 0\nafter 0\n", r.GuestOutput);
        // Each round is answered before the next ping, so each wakeup reads exactly 1.
        Assert.Equal((1000, 1000UL), r.Listened()["notify-0x10"]);
    }

    [Fact]
    public void SharedChild_GetsTheHandshake_NotifyTargetsFirst_ThenIrqs_InCommandLineOrder()
    {
        GuestBinaries.RequireBuilt();
        using var dir = new TempDir();
        string report = Path.Combine(dir.Path, "handshake");
        // `sh -c '...'` is a simple command: exec keeps the pid, so its $$ is LISTEN_PID's.
        string cmd = $"exec:sh -c 'printf \"%s|%s|%s|%s|\" \"$LISTEN_FDS\" \"$LISTEN_FDNAMES\" \"$LISTEN_PID\" \"$$\" >{report}.tmp; "
            + $"for fd in 3 4 5 6; do readlink /proc/$$/fd/$fd; done >>{report}.tmp; "
            + $"test -x \"$SHARPVISOR\" && printf \"sv ok\" >>{report}.tmp; mv {report}.tmp {report}; exec sleep 1000'";
        Finished r = PingPong(dir, () => Exists(report), null,
            "--irq", "7=" + cmd, "--notify", "0x30=" + cmd, "--notify", "0x20=" + cmd);
        Assert.Equal(0, r.Exit.ShellStatus);
        string[] parts = File.ReadAllText(report).Split('|');
        Assert.Equal("3", parts[0]);
        Assert.Equal("notify-0x30:notify-0x20:irq-7", parts[1]);
        Assert.Equal(parts[3], parts[2]); // LISTEN_PID is the reader's own pid
        string[] links = parts[4].Split('\n');
        Assert.Equal(["anon_inode:[eventfd]", "anon_inode:[eventfd]", "anon_inode:[eventfd]", "sv ok"], links); // 3, 4, 5; no 6
        Assert.False(Directory.Exists($"/proc/{parts[2]}"));
    }

    [Fact]
    public void ChildThatExitsWhileTheVmRuns_IsReportedInOneLine_AndTheGuestKeepsRunning()
    {
        GuestBinaries.RequireBuilt();
        using var dir = new TempDir();
        string err = Path.Combine(dir.Path, "err");
        // The guest stays halted until the report is on stderr, then runs all 1000 rounds.
        Finished r = PingPong(dir, () => Exists(err) && Regex.Count(File.ReadAllText(err), "exec child") == 2, null,
            "--irq", "6=exec:sh -c 'exit 3'", "--notify", "0x20=exec:true");
        Assert.Equal(0, r.Exit.ShellStatus);
        Assert.Contains("pongs 1000\n", r.Stdout);
        Assert.Equal(4, r.StderrLines.Length);
        Assert.Contains(r.StderrLines, l => Regex.IsMatch(l, @"^sharpvisor: exec child 'sh -c 'exit 3'' \(pid \d+\) exited: exit status 3$"));
        Assert.Contains(r.StderrLines, l => Regex.IsMatch(l, @"^sharpvisor: exec child 'true' \(pid \d+\) exited: exit status 0$"));
        // Notifications of a value whose child is gone still reach its eventfd (the guest sent none of 0x20).
        Assert.Equal(["notify 0x10 delivered 1000", "notify 0x20 delivered 0"], r.StderrLines[2..]);
    }

    [Fact]
    public void ChildrenGetSigtermWhenTheVmEnds_AndAreReaped()
    {
        GuestBinaries.RequireBuilt();
        using var dir = new TempDir();
        string pidFile = Path.Combine(dir.Path, "pid");
        Finished r = PingPong(dir, () => Exists(pidFile) && Comm(ReadPid(pidFile)) == "sleep", null,
            "--irq", $"6=exec:sh -c 'echo $$ >{pidFile}.tmp && mv {pidFile}.tmp {pidFile} && exec sleep 1000'");
        Assert.Equal(0, r.Exit.ShellStatus);
        Assert.Equal(["notify 0x10 delivered 1000"], r.StderrLines); // an ordinary end is not news
        Assert.False(Directory.Exists($"/proc/{ReadPid(pidFile)}")); // killed and reaped: not even a zombie
    }

    [Fact]
    public void ChildThatIgnoresSigterm_GetsSigkillAfterTheGrace_WithOneLine()
    {
        GuestBinaries.RequireBuilt();
        using var dir = new TempDir();
        string pidFile = Path.Combine(dir.Path, "pid");
        Finished r = PingPong(dir, () => Exists(pidFile) && Comm(ReadPid(pidFile)) == "sleep", null,
            "--irq", $"6=exec:sh -c 'trap \"\" TERM; echo $$ >{pidFile}.tmp && mv {pidFile}.tmp {pidFile} && exec sleep 1000'");
        Assert.Equal(0, r.Exit.ShellStatus);
        Assert.Matches(@"^sharpvisor: exec child 'sh -c .*' \(pid \d+\) was still running 3 s after SIGTERM: sent SIGKILL$", r.StderrLines[0]);
        Assert.Equal("notify 0x10 delivered 1000", r.StderrLines[1]);
        Assert.False(Directory.Exists($"/proc/{ReadPid(pidFile)}"));
    }

    [Fact]
    public void SigtermToSharpvisor_StopsTheVm_AndTheChildren()
    {
        GuestBinaries.RequireBuilt();
        using var dir = new TempDir();
        string pidFile = Path.Combine(dir.Path, "pid");
        using var ping = EventFd.Create();
        using var pong = EventFd.Create();
        // Nobody answers the first ping: the guest halts until the signal.
        using var sharpvisor = Start(dir, [ping.Handle, pong.Handle], "run", GuestBinaries.Guest("pingpong"), "--engine", "threaded",
            "--timeout", "120", "--notify", "0x10=fd:3", "--irq", "5=fd:4",
            "--irq", $"6=exec:sh -c 'echo $$ >{pidFile}.tmp && mv {pidFile}.tmp {pidFile} && exec sleep 1000'");
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (!(Exists(pidFile) && Comm(ReadPid(pidFile)) == "sleep"))
        {
            Assert.True(waited.Elapsed < Patience, "the exec child did not start");
            Thread.Sleep(10);
        }
        // The child starts after the signal handlers are in place.
        sharpvisor.Terminate();
        Finished r = Finish(dir, sharpvisor);
        Assert.Equal(143, r.Exit.ShellStatus);
        Assert.Contains("SIGTERM", Assert.Single(r.StderrLines));
        Assert.False(Directory.Exists($"/proc/{ReadPid(pidFile)}"));
    }

    [Fact]
    public void Listen_AsItsOwnProcess_TakesTheHandshakeAndPrintsEachWakeup()
    {
        using var dir = new TempDir();
        using var first = EventFd.Create();
        using var second = EventFd.Create();
        string outFile = Path.Combine(dir.Path, "out");
        string command = $"LISTEN_PID=$$ exec dotnet {Quote(ProcessPathTests.SharpvisorDll())} listen --exit-after 3 >{Quote(outFile)} 2>{Quote(Path.Combine(dir.Path, "err"))}";
        using var listen = ChildProcess.Spawn("/bin/sh", ["sh", "-c", command],
            new Dictionary<string, string?> { ["LISTEN_FDS"] = "2", ["LISTEN_FDNAMES"] = "first:second" }, [first.Handle, second.Handle]);
        first.Signal(2);
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (!(File.Exists(outFile) && File.ReadAllText(outFile).Contains('\n')))
        {
            Assert.True(waited.Elapsed < Patience, "listen printed nothing");
            Thread.Sleep(10);
        }
        second.Signal(1); // the total is 3: listen exits by itself
        Finished r = Finish(dir, listen);
        Assert.Equal(0, r.Exit.ShellStatus);
        Assert.Equal("", r.Stderr);
        string[] lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Matches(@"^\d{10}\.\d{6} first 2$", lines[0]);
        Assert.Matches(@"^\d{10}\.\d{6} second 1$", lines[1]);
    }

    [Fact]
    public void Listen_WithDescriptorsMeantForAnotherProcess_Exits64()
    {
        using var dir = new TempDir();
        using var fd = EventFd.Create();
        string command = $"exec dotnet {Quote(ProcessPathTests.SharpvisorDll())} listen >{Quote(Path.Combine(dir.Path, "out"))} 2>{Quote(Path.Combine(dir.Path, "err"))}";
        using var listen = ChildProcess.Spawn("/bin/sh", ["sh", "-c", command],
            new Dictionary<string, string?> { ["LISTEN_FDS"] = "1", ["LISTEN_PID"] = "1" }, [fd.Handle]);
        Finished r = Finish(dir, listen);
        Assert.Equal(64, r.Exit.ShellStatus);
        Assert.Contains("LISTEN_PID is 1, not this process", Assert.Single(r.StderrLines));
    }

    private static string Comm(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/comm").Trim();
        }
        catch (IOException)
        {
            return "";
        }
    }
}
