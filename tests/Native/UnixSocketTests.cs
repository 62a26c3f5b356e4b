using Sharpvisor.Native;
using Sharpvisor.Tests.Vmm;

namespace Sharpvisor.Tests.Native;

public class UnixSocketTests
{
    private const int FD_CLOEXEC_FLAG = 0x80000;

    /// <summary>A listener on a fresh path, a client connected to it, and the accepted end.</summary>
    internal static (UnixSocket Listener, UnixSocket Client, UnixSocket Server) Pair(TempDir dir)
    {
        UnixSocket listener = UnixSocket.Listen(Path.Combine(dir.Path, "s.sock"));
        UnixSocket client = UnixSocket.Connect(listener.Path!);
        UnixSocket server = listener.Accept();
        return (listener, client, server);
    }

    [Fact]
    public unsafe void Layouts_MatchX8664Linux()
    {
        Assert.Equal(110, sizeof(Interop.SockaddrUn));
        Assert.Equal(16, sizeof(Interop.Iovec));
        Assert.Equal(56, sizeof(Interop.Msghdr));
        Assert.Equal(16, sizeof(Interop.Cmsghdr));
        Assert.Equal(12, sizeof(Interop.Ucred));
        Assert.Equal(144, sizeof(Interop.Stat));
        // glibc's macros for one, two and three ints of data.
        Assert.Equal(20, Interop.CmsgLen(4));
        Assert.Equal(24, Interop.CmsgSpace(4));
        Assert.Equal(24, Interop.CmsgLen(8));
        Assert.Equal(24, Interop.CmsgSpace(8));
        Assert.Equal(28, Interop.CmsgLen(12));
        Assert.Equal(32, Interop.CmsgSpace(12));
    }

    [Fact]
    public void SendWithDescriptors_OneEventFd_ArrivesAsTheSameCounter_CloseOnExec()
    {
        using var dir = new TempDir();
        var (listener, client, server) = Pair(dir);
        using (listener) using (client) using (server)
        {
            using var efd = EventFd.Create();
            client.SendWithDescriptors("irq 1\n"u8, [efd.Handle]);
            var buffer = new byte[64];
            int n = server.ReceiveWithDescriptors(buffer, out SafeFdHandle[] fds);
            Assert.Equal("irq 1\n", System.Text.Encoding.ASCII.GetString(buffer, 0, n));
            using SafeFdHandle received = Assert.Single(fds);
            Assert.NotEqual(efd.Handle.Fd, received.Fd);
            Assert.Contains("eventfd-count:", FdSnapshot.Info(received.Fd));
            Assert.NotEqual(0, FdSnapshot.Flags(received.Fd) & FD_CLOEXEC_FLAG);
            // One counter, two descriptors: what the receiver adds, the sender reads.
            using var theirs = EventFd.DuplicateFrom(received.Fd);
            theirs.Signal(7);
            Assert.Equal(7UL, efd.Read());
        }
    }

    [Fact]
    public void SendWithDescriptors_Several_ArriveInOrder()
    {
        using var dir = new TempDir();
        var (listener, client, server) = Pair(dir);
        using (listener) using (client) using (server)
        {
            using var a = EventFd.Create(initialValue: 1);
            using var b = EventFd.Create(initialValue: 2);
            using var c = EventFd.Create(initialValue: 3);
            client.SendWithDescriptors("abc"u8, [a.Handle, b.Handle, c.Handle]);
            var buffer = new byte[16];
            int n = server.ReceiveWithDescriptors(buffer, out SafeFdHandle[] fds);
            try
            {
                Assert.Equal(3, n);
                Assert.Equal([1UL, 2UL, 3UL], fds.Select(f => FdSnapshot.EventFdCount(f.Fd)));
            }
            finally
            {
                foreach (SafeFdHandle f in fds) f.Dispose();
            }
        }
    }

    [Fact]
    public void Receive_WithoutDescriptors_AndThePeersClose_IsZero()
    {
        using var dir = new TempDir();
        var (listener, client, server) = Pair(dir);
        using (listener) using (server)
        {
            using (client) client.SendWithDescriptors("hello"u8, []);
            var buffer = new byte[16];
            Assert.Equal(5, server.ReceiveWithDescriptors(buffer, out SafeFdHandle[] fds));
            Assert.Empty(fds);
            Assert.Equal(0, server.ReceiveWithDescriptors(buffer, out fds));
            Assert.Empty(fds);
        }
    }

    [Fact]
    public void TwoSendsWithDescriptors_AreNeverJoinedInOneReceive()
    {
        using var dir = new TempDir();
        var (listener, client, server) = Pair(dir);
        using (listener) using (client) using (server)
        {
            using var a = EventFd.Create(initialValue: 1);
            using var b = EventFd.Create(initialValue: 2);
            client.SendWithDescriptors("one\n"u8, [a.Handle]);
            client.SendWithDescriptors("two\n"u8, [b.Handle]);
            var buffer = new byte[64];
            for (ulong expected = 1; expected <= 2; expected++)
            {
                Assert.Equal(4, server.ReceiveWithDescriptors(buffer, out SafeFdHandle[] fds));
                using SafeFdHandle fd = Assert.Single(fds);
                Assert.Equal(expected, FdSnapshot.EventFdCount(fd.Fd));
            }
        }
    }

    [Fact]
    public void PeerCredentials_AreThisProcess()
    {
        using var dir = new TempDir();
        var (listener, client, server) = Pair(dir);
        using (listener) using (client) using (server)
        {
            string[] status = File.ReadAllLines("/proc/self/status");
            uint uid = uint.Parse(status.Single(l => l.StartsWith("Uid:")).Split('\t', StringSplitOptions.RemoveEmptyEntries)[1]);
            uint gid = uint.Parse(status.Single(l => l.StartsWith("Gid:")).Split('\t', StringSplitOptions.RemoveEmptyEntries)[1]);
            Assert.Equal(new PeerCredentials(Environment.ProcessId, uid, gid), server.PeerCredentials());
            Assert.Equal(new PeerCredentials(Environment.ProcessId, uid, gid), client.PeerCredentials());
        }
    }

    private static unsafe uint LStatMode(string path)
    {
        Interop.Stat st;
        Assert.Equal(0, Interop.LStat(path, &st));
        return st.Mode;
    }

    [Fact]
    public void Listen_MakesTheFileOwnerOnly_AndDisposeRemovesIt()
    {
        using var dir = new TempDir();
        string path = Path.Combine(dir.Path, "s.sock");
        using (UnixSocket.Listen(path))
            Assert.Equal(Interop.S_IFSOCK | 0x180 /* 0600 */, LStatMode(path));
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void Listen_OnAStaleSocket_ReplacesIt_OnALiveOne_IsEADDRINUSE()
    {
        using var dir = new TempDir();
        string path = Path.Combine(dir.Path, "s.sock");
        // A stale socket file: bound and listened on, then closed without
        // removing the file, as a process that died would leave it.
        var stale = UnixSocket.Listen(path);
        stale.Handle.Dispose();
        Assert.True(File.Exists(path));
        using (UnixSocket.Listen(path))
        {
            var e = Assert.Throws<ErrnoException>(() => UnixSocket.Listen(path));
            Assert.Equal(Errno.EADDRINUSE, e.Errno);
            Assert.Contains("already listens", e.Message);
        }
    }

    [Fact]
    public void Listen_OnARegularFile_LeavesItAlone_EADDRINUSE()
    {
        using var dir = new TempDir();
        string path = dir.Write("file", "data"u8.ToArray());
        var e = Assert.Throws<ErrnoException>(() => UnixSocket.Listen(path));
        Assert.Equal(Errno.EADDRINUSE, e.Errno);
        Assert.Contains("a regular file, not a socket", e.Message);
        Assert.Equal("data", File.ReadAllText(path));
    }

    [Fact]
    public void Connect_ToNothing_IsENOENT_NoSuchSocket()
    {
        var e = Assert.Throws<ErrnoException>(() => UnixSocket.Connect("/nonexistent/s.sock"));
        Assert.Equal(Errno.ENOENT, e.Errno);
        Assert.Equal("connect: ENOENT (no such socket: /nonexistent/s.sock)", e.Message);
    }

    [Fact]
    public void Connect_ToARegularFile_IsECONNREFUSED_NotASocket()
    {
        using var dir = new TempDir();
        string path = dir.Write("file", []);
        var e = Assert.Throws<ErrnoException>(() => UnixSocket.Connect(path));
        Assert.Equal(Errno.ECONNREFUSED, e.Errno);
        Assert.Contains($"{path} is a regular file, not a socket", e.Message);
    }

    [Fact]
    public void Connect_ToASocketNobodyListensOn_IsECONNREFUSED()
    {
        using var dir = new TempDir();
        string path = Path.Combine(dir.Path, "s.sock");
        var stale = UnixSocket.Listen(path);
        stale.Handle.Dispose();
        var e = Assert.Throws<ErrnoException>(() => UnixSocket.Connect(path));
        Assert.Equal(Errno.ECONNREFUSED, e.Errno);
        Assert.Contains($"nothing listens on {path}", e.Message);
    }

    [Theory]
    [InlineData("", Errno.EINVAL)]
    [InlineData("a\0b", Errno.EINVAL)]
    public void Connect_BadPath_IsRefusedBeforeAnySocket(string path, Errno errno)
    {
        Assert.Equal(errno, Assert.Throws<ErrnoException>(() => UnixSocket.Connect(path)).Errno);
    }

    [Fact]
    public void Connect_PathOf108Bytes_IsENAMETOOLONG()
    {
        var e = Assert.Throws<ErrnoException>(() => UnixSocket.Connect("/" + new string('x', 107)));
        Assert.Equal(Errno.ENAMETOOLONG, e.Errno);
    }

    [Fact]
    public void SendWithDescriptors_NoPayload_IsAnArgumentError()
    {
        using var dir = new TempDir();
        var (listener, client, server) = Pair(dir);
        using (listener) using (client) using (server)
        {
            using var efd = EventFd.Create();
            Assert.Throws<ArgumentException>(() => client.SendWithDescriptors([], [efd.Handle]));
        }
    }

    [Fact]
    public void WaitReadable_ListenerWithAConnectionWaiting_IsTrue_OtherwiseTimesOut()
    {
        using var dir = new TempDir();
        using var listener = UnixSocket.Listen(Path.Combine(dir.Path, "s.sock"));
        Assert.False(listener.WaitReadable(TimeSpan.Zero));
        using var client = UnixSocket.Connect(listener.Path!);
        Assert.True(listener.WaitReadable(TimeSpan.FromSeconds(30)));
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        Assert.Throws<OperationCanceledException>(() => listener.WaitReadable(Timeout.InfiniteTimeSpan, cancel.Token));
    }
}

/// <summary>Descriptor counts: alone, so other tests' descriptors do not come and go meanwhile.</summary>
[Collection(Serial.Name)]
public class UnixSocketLeakTests
{
    [Fact]
    public void RoundTrips_LeaveOurDescriptorsAsTheyWere()
    {
        using var dir = new TempDir();
        using var efd = EventFd.Create();
        HashSet<int> before = FdSnapshot.Open();
        for (int i = 0; i < 20; i++)
        {
            var (listener, client, server) = UnixSocketTests.Pair(dir);
            using (listener) using (client) using (server)
            {
                client.SendWithDescriptors("x"u8, [efd.Handle, efd.Handle]);
                server.ReceiveWithDescriptors(new byte[4], out SafeFdHandle[] fds);
                Assert.Equal(2, fds.Length);
                foreach (SafeFdHandle f in fds) f.Dispose();
            }
        }
        Assert.Equal(before.Order(), FdSnapshot.Open().Order());
    }

    [Fact]
    public void TruncatedControlData_ClosesEveryDescriptorThatArrived_EMSGSIZE()
    {
        using var dir = new TempDir();
        var (listener, client, server) = UnixSocketTests.Pair(dir);
        using (listener) using (client) using (server)
        {
            using var a = EventFd.Create();
            using var b = EventFd.Create();
            HashSet<int> before = FdSnapshot.Open();
            client.SendWithDescriptors("four"u8, [a.Handle, b.Handle, a.Handle, b.Handle]);
            var e = Assert.Throws<ErrnoException>(() => server.ReceiveWithDescriptors(new byte[16], out _, maxDescriptors: 2));
            Assert.Equal(Errno.EMSGSIZE, e.Errno);
            Assert.Contains("closed", e.Message);
            Assert.Equal(before.Order(), FdSnapshot.Open().Order());
        }
    }

    [Fact]
    public void FailedConnectAndListen_LeaveNoDescriptor()
    {
        using var dir = new TempDir();
        string file = dir.Write("file", []);
        HashSet<int> before = FdSnapshot.Open();
        Assert.Throws<ErrnoException>(() => UnixSocket.Connect("/nonexistent/s.sock"));
        Assert.Throws<ErrnoException>(() => UnixSocket.Connect(file));
        Assert.Throws<ErrnoException>(() => UnixSocket.Listen(file));
        Assert.Equal(before.Order(), FdSnapshot.Open().Order());
    }
}

/// <summary>Our sending side against an independent receiver (Mono.Posix, libMonoPosixHelper.so).</summary>
public class UnixSocketMonoPosixTests
{
    [Fact]
    public void MonoPosixReceiver_GetsOurPayloadAndDescriptors_SameCounters()
    {
        using var dir = new TempDir();
        using var receiver = new MonoPosixReceiver(Path.Combine(dir.Path, "mono.sock"));
        using var a = EventFd.Create(initialValue: 5);
        using var b = EventFd.Create();
        using (var client = UnixSocket.Connect(receiver.Path))
            client.SendWithDescriptors("notify 0x10\n"u8, [a.Handle, b.Handle]);
        (string payload, int[] fds) = receiver.AcceptOne(TimeSpan.FromSeconds(30));
        try
        {
            Assert.Equal("notify 0x10\n", payload);
            Assert.Equal(2, fds.Length);
            Assert.Equal(5UL, MonoPosixReceiver.ReadCounter(fds[0]));
            MonoPosixReceiver.Signal(fds[1], 9);
            Assert.Equal(9UL, b.Read());
        }
        finally
        {
            foreach (int fd in fds) MonoPosixReceiver.Close(fd);
        }
    }
}
