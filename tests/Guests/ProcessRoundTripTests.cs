using Sharpvisor.Native;
using Sharpvisor.Tests.Vmm;

namespace Sharpvisor.Tests.Guests;

/// <summary>
/// `fd:` targets between two real processes: this test process opens the
/// eventfds, starts `sharpvisor` with them as descriptors 3 and 4 (posix_spawn
/// through <see cref="ChildProcess"/>, as a shell user's `3&lt;&gt;` would), and
/// serves the other side itself. Counts on both sides must be exact.
/// </summary>
public class ProcessRoundTripTests
{
    /// <summary>
    /// Starts `dotnet sharpvisor.dll ARGS` with <paramref name="fds"/> as
    /// descriptors 3.., its stdout and stderr in files (sh redirects them, then
    /// execs, so sharpvisor is the child and keeps 3 and 4).
    /// </summary>
    internal static ChildProcess Start(TempDir dir, IReadOnlyList<SafeFdHandle> fds, params string[] args)
    {
        string command = string.Join(' ', new[] { "dotnet", ProcessPathTests.SharpvisorDll() }.Concat(args).Select(Quote));
        return ChildProcess.Spawn("/bin/sh", ["sh", "-c", $"exec {command} >{Quote(Path.Combine(dir.Path, "out"))} 2>{Quote(Path.Combine(dir.Path, "err"))}"],
            descriptors: fds);
    }

    private static string Quote(string s) => "'" + s.Replace("'", "'\\''") + "'";

    [Fact]
    public void PingPong_WithAResponderInAnotherProcess_AnswersEveryRoundExactly()
    {
        GuestBinaries.RequireBuilt();
        using var dir = new TempDir();
        using var ping = EventFd.Create();
        using var pong = EventFd.Create();
        long notifications = 0, reads = 0;
        using var child = Start(dir, [ping.Handle, pong.Handle],
            "run", GuestBinaries.Guest("pingpong"), "--engine", "threaded", "--timeout", "120",
            "--notify", "0x10=fd:3", "--irq", "5=fd:4", "--stats");
        // The responder: every notification read here is answered with the interrupt.
        using var cancel = new CancellationTokenSource();
        var responder = new Thread(() =>
        {
            try
            {
                while (true)
                {
                    notifications += (long)ping.Read(cancel.Token);
                    reads++;
                    pong.Signal();
                }
            }
            catch (OperationCanceledException) { }
        });
        responder.Start();
        ChildExit exit;
        try
        {
            Assert.True(child.Wait(TimeSpan.FromMinutes(2), out exit), "sharpvisor did not finish");
        }
        finally
        {
            cancel.Cancel();
            responder.Join();
        }
        Assert.Equal("rounds 1000\npongs 1000\nother 0\nundelivered 0\nafter 0\n", File.ReadAllText(Path.Combine(dir.Path, "out")));
        Assert.Equal("notify 0x10 delivered 1000\n", File.ReadAllText(Path.Combine(dir.Path, "err")));
        Assert.Equal(0, exit.ShellStatus);
        Assert.Equal(1000, notifications);
        Assert.Equal(1000, reads);
    }

    [Fact]
    public void NotifyLoop_IntoAnotherProcess_KernelCountsEqualTheGuestsAndTheHosts()
    {
        GuestBinaries.RequireBuilt();
        using var dir = new TempDir();
        using var a = EventFd.Create(EventFdFlags.NonBlocking);
        using var b = EventFd.Create(EventFdFlags.NonBlocking);
        using var child = Start(dir, [a.Handle, b.Handle],
            "run", GuestBinaries.Guest("notify"), "--timeout", "120",
            "--notify", "0x10=fd:3", "--notify", "0x20=fd:4", "--stats");
        Assert.True(child.Wait(TimeSpan.FromMinutes(2), out ChildExit exit), "sharpvisor did not finish");
        Assert.Equal(0, exit.ShellStatus);
        // What the kernel counted on each eventfd: every delivered notification, none lost.
        Assert.True(a.TryRead(out ulong countA, TimeSpan.Zero));
        Assert.True(b.TryRead(out ulong countB, TimeSpan.Zero));
        Assert.Equal(1000ul, countA);
        Assert.Equal(1000ul, countB);
        string[] stats = File.ReadAllText(Path.Combine(dir.Path, "err")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["notify 0x10 delivered 1000", "notify 0x20 delivered 1000", "notify 0x30 missed 1000"], stats);
        string stdout = File.ReadAllText(Path.Combine(dir.Path, "out"));
        Assert.Contains("value 0x00000010 delivered 1000 missed 0", stdout);
        Assert.Contains("value 0x00000030 delivered 0 missed 1000", stdout);
    }
}
