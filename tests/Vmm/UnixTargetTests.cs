using System.Text;
using Sharpvisor.Native;
using Sharpvisor.Tests.Guests;
using Sharpvisor.Vmm.Launcher;
using Sharpvisor.Vmm.Listen;

namespace Sharpvisor.Tests.Vmm;

/// <summary>
/// <c>unix:PATH</c> targets through the command line in process: the
/// listeners are this test's, so sharpvisor's connections land here, and a
/// test thread plays the device with the eventfds they brought.
/// </summary>
public class UnixTargetTests
{
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(2);

    /// <summary>Runs the CLI on a thread of its own, so the test can serve its targets meanwhile.</summary>
    private static Thread Start(string[] args, Action<CliTests.Result> done)
    {
        var thread = new Thread(() => done(CliTests.Execute(args)));
        thread.Start();
        return thread;
    }

    [Fact]
    public void PingPong_OverTwoUnixTargets_AnswersEveryRoundExactly()
    {
        GuestBinaries.RequireBuilt();
        using var dir = new TempDir();
        using var pings = UnixFdReceiver.Listen(Path.Combine(dir.Path, "ping.sock"));
        using var pongs = UnixFdReceiver.Listen(Path.Combine(dir.Path, "pong.sock"));
        CliTests.Result? result = null;
        Thread vm = Start(["run", GuestBinaries.Guest("pingpong"), "--engine", "threaded", "--timeout", "120",
            "--notify", $"0x10=unix:{pings.Path}", "--irq", $"5=unix:{pongs.Path}", "--stats"], r => result = r);
        long notifications = 0, reads = 0;
        try
        {
            Assert.True(pings.TryReceive(Long, out ReceivedEventFd? ping), "no connection for the notify target");
            Assert.True(pongs.TryReceive(Long, out ReceivedEventFd? pong), "no connection for the irq target");
            using (ping)
            using (pong)
            {
                Assert.Equal("notify-0x10", ping!.Name);
                Assert.Equal("irq-5", pong!.Name);
                Assert.Equal(Environment.ProcessId, ping.From.Pid);
                // The responder: every notification read is answered with the interrupt.
                for (int round = 0; round < 1000; round++)
                {
                    Assert.True(ping.EventFd.TryRead(out ulong n, Long), $"no notification in round {round}");
                    notifications += (long)n;
                    reads++;
                    pong.EventFd.Signal();
                }
            }
        }
        finally
        {
            vm.Join();
        }
        Assert.Equal("rounds 1000\npongs 1000\nother 0\nundelivered 0\nafter 0\n", result!.Stdout);
        Assert.Equal(["notify 0x10 delivered 1000"], result.StderrLines);
        Assert.Equal(0, result.Status);
        Assert.Equal(1000, notifications);
        Assert.Equal(1000, reads);
    }

    [Fact]
    public void NotifyLoop_IntoAUnixTarget_KernelCountIsTheGuests()
    {
        GuestBinaries.RequireBuilt();
        using var dir = new TempDir();
        using var receiver = UnixFdReceiver.Listen(Path.Combine(dir.Path, "n.sock"));
        // Both targets on one socket: one connection each, in the order given.
        CliTests.Result r = CliTests.Execute("run", GuestBinaries.Guest("notify"), "--timeout", "120",
            "--notify", $"0x10=unix:{receiver.Path}", "--notify", $"0x20=unix:{receiver.Path}", "--stats");
        // Sharpvisor has exited and closed its ends; the messages waited in the backlog.
        using ReceivedEventFd first = receiver.Receive();
        using ReceivedEventFd second = receiver.Receive();
        Assert.Equal(0, r.Status);
        Assert.Equal(("notify-0x10", "notify-0x20"), (first.Name, second.Name));
        Assert.Equal(1000UL, first.EventFd.Read());
        Assert.Equal(1000UL, second.EventFd.Read());
        Assert.Equal(["notify 0x10 delivered 1000", "notify 0x20 delivered 1000", "notify 0x30 missed 1000"], r.StderrLines);
    }

    [Fact]
    public void NoSuchSocket_Is69_WithOneLine()
    {
        GuestBinaries.RequireBuilt();
        CliTests.Result r = CliTests.Execute("run", GuestBinaries.Guest("hello"), "--notify", "16=unix:/nonexistent/s.sock");
        Assert.Equal(69, r.Status);
        Assert.Equal("sharpvisor: --notify 0x10=unix:/nonexistent/s.sock: target unavailable: connect: ENOENT (no such socket: /nonexistent/s.sock)",
            Assert.Single(r.StderrLines));
        Assert.Equal("", r.Stdout);
    }

    [Fact]
    public void ARegularFile_Is69_NotASocket()
    {
        GuestBinaries.RequireBuilt();
        using var dir = new TempDir();
        string file = dir.Write("file", []);
        CliTests.Result r = CliTests.Execute("run", GuestBinaries.Guest("hello"), "--irq", $"3=unix:{file}");
        Assert.Equal(69, r.Status);
        Assert.Equal($"sharpvisor: --irq 3=unix:{file}: target unavailable: connect: ECONNREFUSED ({file} is a regular file, not a socket)",
            Assert.Single(r.StderrLines));
    }

    [Fact]
    public void ASocketNobodyListensOn_Is69_Refused()
    {
        GuestBinaries.RequireBuilt();
        using var dir = new TempDir();
        string path = Path.Combine(dir.Path, "stale.sock");
        UnixSocket.Listen(path).Handle.Dispose(); // the file stays, the listener is gone
        CliTests.Result r = CliTests.Execute("run", GuestBinaries.Guest("hello"), "--notify", $"0x10=unix:{path}");
        Assert.Equal(69, r.Status);
        Assert.Contains($"target unavailable: connect: ECONNREFUSED (nothing listens on {path})", Assert.Single(r.StderrLines));
    }

    [Theory]
    [InlineData("--notify", "0x10=unix:", "unix:PATH needs the path of a Unix socket")]
    [InlineData("--irq", "1=unix:", "unix:PATH needs the path of a Unix socket")]
    public void EmptyPath_Is64(string option, string value, string contains)
    {
        CliTests.Result r = CliTests.Execute("run", "x.elf", option, value);
        Assert.Equal(64, r.Status);
        Assert.Contains(contains, Assert.Single(r.StderrLines));
    }

    [Fact]
    public void PathLongerThan107Bytes_Is64()
    {
        CliTests.Result r = CliTests.Execute("run", "x.elf", "--notify", "1=unix:/" + new string('x', 107));
        Assert.Equal(64, r.Status);
        Assert.Contains("at most 107 bytes", Assert.Single(r.StderrLines));
    }

    [Theory]
    [InlineData(0x10u, "notify 0x10\n", "notify-0x10")]
    [InlineData(0xffffffffu, "notify 0xffffffff\n", "notify-0xffffffff")]
    public void Line_ForNotify_IsCanonical_AndParsesBackToItsName(uint value, string line, string name)
    {
        var spec = new NotifySpec(value, new Target(TargetKind.Unix, -1, "unix:/x"));
        Assert.Equal(line, UnixTarget.Line(spec));
        Assert.True(UnixTarget.TryParseLine(Encoding.ASCII.GetBytes(line), out string parsed, out _));
        Assert.Equal(name, parsed);
        Assert.True(line.Length <= UnixTarget.MaxLineLength);
    }

    [Theory]
    [InlineData("notify 0x0010\n")]
    [InlineData("notify 16\n")]
    [InlineData("notify 0x0\n")]
    [InlineData("notify 0X10\n")]
    [InlineData("notify 0xAB\n")]
    [InlineData("notify 0x100000000\n")]
    [InlineData("irq 0\n")]
    [InlineData("irq 32\n")]
    [InlineData("irq 01\n")]
    [InlineData("irq 1")]
    [InlineData("irq 1\nirq 2\n")]
    [InlineData("irq  1\n")]
    [InlineData("hello\n")]
    [InlineData("\n")]
    [InlineData("")]
    public void TryParseLine_RefusesAnythingButOneCanonicalLine(string payload)
    {
        Assert.False(UnixTarget.TryParseLine(Encoding.ASCII.GetBytes(payload), out _, out string error));
        Assert.DoesNotContain("\n", error);
    }
}

/// <summary>The receiver against senders that do not follow the protocol.</summary>
public class UnixFdReceiverTests
{
    private static ReceivedEventFd Send(UnixFdReceiver receiver, byte[] payload, params SafeFdHandle[] fds)
    {
        using (var client = UnixSocket.Connect(receiver.Path))
            if (payload.Length > 0) client.SendWithDescriptors(payload, fds);
        return receiver.Receive();
    }

    [Fact]
    public void Receive_AGoodMessage_NamesIt_AndTheCounterIsShared()
    {
        using var dir = new TempDir();
        using var receiver = UnixFdReceiver.Listen(Path.Combine(dir.Path, "r.sock"));
        using var efd = EventFd.Create();
        using ReceivedEventFd got = Send(receiver, "irq 31\n"u8.ToArray(), efd.Handle);
        Assert.Equal("irq-31", got.Name);
        got.EventFd.Signal(3);
        Assert.Equal(3UL, efd.Read());
    }

    public static TheoryData<string, int, string> Garbage => new()
    {
        { "hello\n", 1, "neither 'notify VALUE' nor 'irq N'" },
        { "notify 0x0010\n", 1, "lowercase 0x-hex without leading zeros" },
        { "irq 40\n", 1, "1 to 31" },
        { "irq 1\n", 0, "came with 0 descriptors, not 1" },
        { "irq 1\n", 2, "came with 2 descriptors, not 1; its descriptors were closed" },
        { "irq 1\nx", 1, "more than one line" },
        { "", 0, "not a line" },
    };

    [Theory]
    [MemberData(nameof(Garbage))]
    public void Receive_Garbage_IsOneLineError_ThenTheNextConnectionWorks(string payload, int fdCount, string contains)
    {
        using var dir = new TempDir();
        using var receiver = UnixFdReceiver.Listen(Path.Combine(dir.Path, "r.sock"));
        using var efd = EventFd.Create();
        SafeFdHandle[] fds = Enumerable.Repeat(efd.Handle, fdCount).ToArray();
        var e = Assert.Throws<InvalidDataException>(() => Send(receiver, Encoding.ASCII.GetBytes(payload), fds));
        Assert.StartsWith($"unix:{receiver.Path}: from pid {Environment.ProcessId}: ", e.Message);
        Assert.Contains(contains, e.Message);
        Assert.DoesNotContain("\n", e.Message);
        using ReceivedEventFd good = Send(receiver, "notify 0x20\n"u8.ToArray(), efd.Handle);
        Assert.Equal("notify-0x20", good.Name);
    }

    [Fact]
    public void Receive_APipeInsteadOfAnEventFd_IsRefused_NamingWhatCame()
    {
        using var dir = new TempDir();
        using var receiver = UnixFdReceiver.Listen(Path.Combine(dir.Path, "r.sock"));
        var (read, write) = SafeFdHandle.CreatePipe();
        using (read)
        using (write)
        {
            var e = Assert.Throws<InvalidDataException>(() => Send(receiver, "irq 1\n"u8.ToArray(), read));
            Assert.Contains("came with pipe:[", e.Message);
            Assert.Contains("not an eventfd; its descriptor was closed", e.Message);
        }
    }

    [Fact]
    public void TryReceive_NoConnection_IsFalse()
    {
        using var dir = new TempDir();
        using var receiver = UnixFdReceiver.Listen(Path.Combine(dir.Path, "r.sock"));
        Assert.False(receiver.TryReceive(TimeSpan.Zero, out ReceivedEventFd? got));
        Assert.Null(got);
    }

    [Fact]
    public void Dispose_RemovesTheSocketFile()
    {
        using var dir = new TempDir();
        string path = Path.Combine(dir.Path, "r.sock");
        using (UnixFdReceiver.Listen(path))
            Assert.True(File.Exists(path));
        Assert.False(File.Exists(path));
    }
}

/// <summary>Descriptor counts, alone (see <see cref="Serial"/>).</summary>
[Collection(Serial.Name)]
public class UnixTargetDescriptorTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void EveryDescriptorWeOpened_IsClosed_OnSuccessAndOnError(bool badTarget)
    {
        GuestBinaries.RequireBuilt();
        using var dir = new TempDir();
        using var receiver = UnixFdReceiver.Listen(Path.Combine(dir.Path, "r.sock"));
        CliTests.Execute("--version"); // warm up whatever the runtime opens once
        HashSet<int> before = FdSnapshot.Open();
        CliTests.Result r = CliTests.Execute("run", GuestBinaries.Guest("notify"), "--timeout", "120",
            "--notify", $"0x10=unix:{receiver.Path}", "--irq", $"3=unix:{receiver.Path}",
            "--notify", $"0x20=unix:{(badTarget ? "/nonexistent/s.sock" : receiver.Path)}");
        Assert.Equal(badTarget ? 69 : 0, r.Status);
        Assert.Equal(before.Order(), FdSnapshot.Open().Order());
    }

    [Fact]
    public void Receiver_Garbage_ClosesEveryDescriptorThatCame()
    {
        using var dir = new TempDir();
        using var receiver = UnixFdReceiver.Listen(Path.Combine(dir.Path, "r.sock"));
        using var efd = EventFd.Create();
        // What came are duplicates of efd: count those, rather than compare
        // lists of every descriptor, which other threads (a finalizer closing
        // an earlier test's pipe) may change meanwhile, as seen once in CI.
        string id = FdSnapshot.EventFdId(efd.Handle.Fd) ?? throw new InvalidOperationException("this kernel shows no eventfd-id in fdinfo");
        Assert.Equal(1, FdSnapshot.DescriptorsOfEventFd(id));
        using (var client = UnixSocket.Connect(receiver.Path))
            client.SendWithDescriptors("irq 1\n"u8, [efd.Handle, efd.Handle, efd.Handle]);
        Assert.Throws<InvalidDataException>(() => receiver.Receive());
        using (var client = UnixSocket.Connect(receiver.Path))
            client.SendWithDescriptors("garbage"u8, Enumerable.Repeat(efd.Handle, 20).ToArray()); // more than the 16 room is made for
        Assert.Contains("EMSGSIZE", Assert.Throws<InvalidDataException>(() => receiver.Receive()).Message);
        Assert.Equal(1, FdSnapshot.DescriptorsOfEventFd(id));
    }
}
