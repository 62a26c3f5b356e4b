using System.IO.Pipes;
using System.Text;
using System.Text.RegularExpressions;
using Iced.Intel;
using Sharpvisor.Native;
using Sharpvisor.Tests.Guests;
using static Iced.Intel.AssemblerRegisters;

namespace Sharpvisor.Tests.Vmm;

/// <summary>
/// <c>run --control PATH</c> in process: the VM runs on a thread of its own,
/// and the test is the other process at the control socket (docs/control-socket.md).
/// </summary>
// File.GetUnixFileMode is Unix-only, like everything Sharpvisor does.
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class ControlSocketTests
{
    private static readonly TimeSpan Long = TimeSpan.FromMinutes(2);
    private static readonly Regex VcpuLine = new(@"^vcpu (\d+) value 0x([0-9a-f]{8}) delivered (\d+) missed (\d+)$", RegexOptions.Multiline);
    private const int Rounds = 20000; // per vCPU, as in guests/smp.c

    /// <summary>One connection to a control socket: a request line (with descriptors), then its reply line.</summary>
    private sealed class Client(UnixSocket socket) : IDisposable
    {
        private readonly List<byte> _pending = [];

        /// <summary>Connects, retrying while the VM is still starting; null if <paramref name="vm"/> ended first.</summary>
        public static Client? Connect(string path, Thread? vm = null)
        {
            DateTime end = DateTime.UtcNow + Long;
            while (true)
            {
                try
                {
                    return new Client(UnixSocket.Connect(path));
                }
                catch (ErrnoException) when (DateTime.UtcNow < end && vm?.IsAlive != false)
                {
                    Thread.Sleep(5);
                }
                catch (ErrnoException) when (vm?.IsAlive == false)
                {
                    return null;
                }
            }
        }

        public string? Request(string line, params SafeFdHandle[] fds)
        {
            SendRaw(Encoding.ASCII.GetBytes(line + "\n"), fds);
            return ReadLine();
        }

        public void SendRaw(byte[] bytes, params SafeFdHandle[] fds) => socket.SendWithDescriptors(bytes, fds);

        /// <summary>The next reply line, or null when the server closed the connection.</summary>
        public string? ReadLine()
        {
            var buffer = new byte[512];
            while (true)
            {
                int newline = _pending.IndexOf((byte)'\n');
                if (newline >= 0)
                {
                    string line = Encoding.ASCII.GetString([.. _pending.Take(newline)]);
                    _pending.RemoveRange(0, newline + 1);
                    return line;
                }
                Assert.True(socket.WaitReadable(Long), "no reply from the control socket");
                int n = socket.ReceiveWithDescriptors(buffer, out SafeFdHandle[] fds);
                foreach (SafeFdHandle fd in fds) fd.Dispose();
                Assert.Empty(fds);
                if (n == 0) return null;
                _pending.AddRange(buffer.AsSpan(0, n));
            }
        }

        public void Dispose() => socket.Dispose();
    }

    private static Thread Start(string[] args, Action<CliTests.Result> done)
    {
        var thread = new Thread(() => done(CliTests.Execute(args)));
        thread.Start();
        return thread;
    }

    [Theory]
    [MemberData(nameof(NotifyTests.Engines), MemberType = typeof(NotifyTests))]
    public void AttachAndDetach_WhileTwoVcpusNotify_CountsAgreeExactly(string engine)
    {
        GuestBinaries.RequireBuilt();
        if (engine == "il" && !Sharpvisor.Jit.Runtime.Engines.IsIlAvailable) Assert.Skip("no dynamic code");
        // As in SmpTests: the counts must agree on every run; that updates
        // really overlapped the run is a precondition, so a run that saw too
        // few (the machine was busy) is made again.
        int during = 0;
        for (int attempt = 1; attempt <= 5 && during <= 10; attempt++)
            during = RunWhileAttaching(engine);
        Assert.True(during > 10, $"only {during} control requests were answered while the guest ran, in 5 runs");
    }

    /// <summary>One run of the smp guest while the test attaches and detaches its values over the control socket; returns the updates answered.</summary>
    private static int RunWhileAttaching(string engine)
    {
        using var dir = new TempDir();
        string path = Path.Combine(dir.Path, "vm.ctl");
        using var a = EventFd.Create();
        using var b = EventFd.Create();
        CliTests.Result? result = null;
        Thread vm = Start(["run", GuestBinaries.Guest("smp"), "--vcpus", "2", "--engine", engine, "--timeout", "120",
            "--stats", "--control", path], r => result = r);
        int updates = 0;
        try
        {
            using Client? client = Client.Connect(path, vm);
            bool attachedA = false, attachedB = false;
            while (client != null && vm.IsAlive)
            {
                string? reply;
                try
                {
                    if ((updates & 1) == 0)
                    {
                        reply = client.Request(attachedA ? "detach notify 0x100" : "attach notify 0x100", attachedA ? [] : [a.Handle]);
                        attachedA = !attachedA;
                    }
                    else
                    {
                        reply = client.Request(attachedB ? "detach notify 0x101" : "attach notify 0x101", attachedB ? [] : [b.Handle]);
                        attachedB = !attachedB;
                    }
                }
                catch (ErrnoException)
                {
                    break; // the VM ended and closed the socket mid-request
                }
                if (reply == null) break; // the VM ended
                Assert.Equal("ok", reply);
                updates++;
            }
        }
        finally
        {
            vm.Join();
        }

        Assert.NotNull(result);
        Assert.True(result.Status == 0, $"status {result.Status}: {result.Stderr}");
        Assert.False(File.Exists(path), "the control socket is left behind");
        var guest = VcpuLine.Matches(result.Stdout).ToDictionary(m => Convert.ToUInt32(m.Groups[2].Value, 16), m => (Delivered: long.Parse(m.Groups[3].Value), Missed: long.Parse(m.Groups[4].Value)));
        foreach ((uint value, EventFd fd) in new[] { (0x100u, a), (0x101u, b) })
        {
            long statsDelivered = Stat(result, value, "delivered"), statsMissed = Stat(result, value, "missed");
            Assert.Equal((ulong)statsDelivered, FdSnapshot.EventFdCount(fd.Handle.Fd)); // what the receiver would read
            Assert.Equal(guest[value].Delivered, statsDelivered);                      // what the guest saw in EAX
            Assert.Equal(guest[value].Missed, statsMissed);
            Assert.Equal(Rounds, statsDelivered + statsMissed);                         // what the guest sent
        }
        TestContext.Current.TestOutputHelper?.WriteLine($"{engine}: {updates} updates; 0x100 {guest[0x100]}, 0x101 {guest[0x101]}");
        return updates;
    }

    /// <summary>A --stats count (0 if the line is absent: a value never attached, or that never missed).</summary>
    private static long Stat(CliTests.Result r, uint value, string what)
    {
        string prefix = $"notify 0x{value:x} {what} ";
        string? line = r.StderrLines.FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal));
        return line == null ? 0 : long.Parse(line[prefix.Length..]);
    }

    /// <summary>
    /// A guest that notifies 0x10 every millisecond (LHCALL_HALT with a
    /// timeout in between) until one notification is delivered, then shuts
    /// down: attaching 0x10 over the control socket is how a test ends it.
    /// </summary>
    private static string WaitForAttach(TempDir dir) =>
        NotifyTests.Flat(dir, "wait-for-attach.bin", a =>
        {
            var again = a.CreateLabel();
            var done = a.CreateLabel();
            a.Label(ref again);
            NotifyTests.Hypercall(a, 17, 0x10);
            a.cmp(eax, 1);
            a.je(done);
            NotifyTests.Hypercall(a, 10, 1000);
            a.jmp(again);
            a.Label(ref done);
            NotifyTests.Hypercall(a, 2, 0);
        });

    [Fact]
    public void Requests_ListShowsWhatIsAttached_BadRequestsGetOneErrorLine_AndTheVmRunsOn()
    {
        using var dir = new TempDir();
        string path = Path.Combine(dir.Path, "vm.ctl");
        using var kept = EventFd.Create();
        using var ender = EventFd.Create();
        CliTests.Result? result = null;
        Thread vm = Start(["run", WaitForAttach(dir), "--flat", "0x1000", "--engine", "threaded", "--timeout", "120",
            "--stats", "--control", path], r => result = r);
        try
        {
            using (Client client = Client.Connect(path, vm)!)
            {
                Assert.NotNull(client);
                // Owner only, while it runs.
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
                Assert.Equal("notify", client.Request("list"));
                Assert.Equal("ok", client.Request("attach notify 0x20", kept.Handle));
                Assert.Equal("ok", client.Request("attach notify 48", kept.Handle));
                Assert.Equal("notify 0x20 0x30", client.Request("list"));
                Assert.Equal("ok", client.Request("detach notify 0x30"));
                Assert.Equal("notify 0x20", client.Request("list"));

                Assert.Equal("error 0x20 is already attached", client.Request("attach notify 0x20", kept.Handle));
                Assert.Equal("error 0x40 is not attached", client.Request("detach notify 0x40"));
                Assert.StartsWith("error attach notify 0x40 needs exactly one eventfd", client.Request("attach notify 0x40"));
                Assert.StartsWith("error attach notify 0x40 needs exactly one eventfd", client.Request("attach notify 0x40", kept.Handle, kept.Handle));
                Assert.StartsWith("error detach notify 0x20 takes no descriptor", client.Request("detach notify 0x20", kept.Handle));
                Assert.StartsWith("error value 0 is reserved", client.Request("attach notify 0", kept.Handle));
                Assert.StartsWith("error 'banana' is not a notify value", client.Request("attach notify banana", kept.Handle));
                Assert.StartsWith("error '32' is not an interrupt line", client.Request("attach irq 32", kept.Handle));
                Assert.Equal("error interrupt 5 is not attached", client.Request("detach irq 5"));
                Assert.StartsWith("error attach irq 5 needs exactly one eventfd", client.Request("attach irq 5"));
                Assert.StartsWith("error unknown request 'frobnicate'", client.Request("frobnicate the VM"));
                Assert.StartsWith("error an empty request", client.Request(""));
                Assert.Equal("error list takes no arguments", client.Request("list all"));
                using (var pipe = new AnonymousPipeServerStream(PipeDirection.Out))
                using (var pipeFd = new SafeFdHandle((int)pipe.SafePipeHandle.DangerousGetHandle(), ownsHandle: false))
                {
                    string? reply = client.Request("attach notify 0x40", pipeFd);
                    Assert.Matches(@"^error the descriptor sent is pipe:\[\d+\], not an eventfd$", reply);
                }
                Assert.Equal("notify 0x20", client.Request("list")); // nothing refused was attached

                // Binary data: one error line, then the server closes this connection.
                client.SendRaw([0x01, 0xff, 0x00, (byte)'\n']);
                Assert.Equal("error binary data in a request; closing", client.ReadLine());
                Assert.Null(client.ReadLine());
            }
            using (Client client = Client.Connect(path, vm)!)
            {
                // A line longer than the longest request: one error line, closed.
                client.SendRaw(Encoding.ASCII.GetBytes(new string('a', 300)));
                Assert.StartsWith("error a request line has at most 256 bytes", client.ReadLine());
                Assert.Null(client.ReadLine());
            }
            using (Client client = Client.Connect(path, vm)!)
            {
                // The VM runs on and the server still answers; attaching 0x10 ends the guest.
                Assert.True(vm.IsAlive);
                Assert.Equal("notify 0x20", client.Request("list"));
                Assert.Equal("ok", client.Request("attach notify 0x10", ender.Handle));
            }
        }
        finally
        {
            vm.Join();
        }
        Assert.NotNull(result);
        Assert.True(result.Status == 0, $"status {result.Status}: {result.Stderr}");
        Assert.Equal(1UL, FdSnapshot.EventFdCount(ender.Handle.Fd));
        Assert.Equal(1, Stat(result, 0x10, "delivered"));
        Assert.Equal(0, Stat(result, 0x20, "delivered"));
        Assert.False(File.Exists(path), "the control socket is left behind");
    }

    [Fact]
    public void IrqAttachedWhileBothVcpusHalt_WakesOne_AfterAnEarlierLineWasAttachedAndDetached()
    {
        // Both vCPUs halt with no timeout and no interrupt source: with the
        // control socket open that is a wait, not a deadlock. The one that
        // takes an interrupt shuts the VM down with its number as status.
        using var dir = new TempDir();
        string guest = NotifyTests.Flat(dir, "halt-then-exit.bin", a =>
        {
            NotifyTests.Hypercall(a, 10, 0); // EAX = the interrupt taken
            a.mov(ebx, eax);
            a.mov(eax, 2);
            a.@int(0x1f);
        });
        string path = Path.Combine(dir.Path, "vm.ctl");
        using var five = EventFd.Create();
        using var seven = EventFd.Create();
        CliTests.Result? result = null;
        Thread vm = Start(["run", guest, "--flat", "0x1000", "--vcpus", "2", "--engine", "threaded", "--timeout", "120",
            "--control", path], r => result = r);
        try
        {
            using Client client = Client.Connect(path, vm)!;
            Assert.NotNull(client);
            Assert.Equal("ok", client.Request("attach irq 5", five.Handle));
            Assert.Equal("error interrupt 5 is already attached", client.Request("attach irq 5", five.Handle));
            Assert.Equal("notify irq 5", client.Request("list"));
            Assert.Equal("ok", client.Request("detach irq 5"));
            Assert.Equal("notify", client.Request("list"));
            Assert.Equal("ok", client.Request("attach irq 7", seven.Handle));
            Assert.Equal("ok", client.Request("attach notify 0x10", five.Handle));
            Assert.Equal("notify 0x10 irq 7", client.Request("list"));
            Assert.True(vm.IsAlive, $"the VM ended early: {result?.Stderr}");
            seven.Signal();
        }
        finally
        {
            vm.Join();
        }
        Assert.NotNull(result);
        Assert.True(result.Status == 7, $"status {result.Status}: {result.Stderr}");
        Assert.Equal(0UL, FdSnapshot.EventFdCount(seven.Handle.Fd)); // the VM read it
        Assert.False(File.Exists(path), "the control socket is left behind");
    }

    [Fact]
    public void ControlCommand_PrintsTheReply_Exits0OnOk1OnError69WhenUnreachable()
    {
        using var dir = new TempDir();
        string path = Path.Combine(dir.Path, "vm.ctl");
        using var ender = EventFd.Create();
        CliTests.Result? result = null;
        Thread vm = Start(["run", WaitForAttach(dir), "--flat", "0x1000", "--engine", "threaded", "--timeout", "120",
            "--stats", "--control", path], r => result = r);
        try
        {
            using (Client.Connect(path, vm)) { } // the VM is up
            CliTests.Result list = CliTests.Execute("control", path, "list");
            Assert.Equal((0, "notify\n", ""), (list.Status, list.Stdout, list.Stderr));
            CliTests.Result bad = CliTests.Execute("control", path, "frobnicate");
            Assert.Equal(1, bad.Status);
            Assert.StartsWith("error unknown request 'frobnicate'", bad.Stdout);
            CliTests.Result noFd = CliTests.Execute("control", path, "attach", "notify", "0x10");
            Assert.Equal(1, noFd.Status);
            CliTests.Result closed = CliTests.Execute("control", path, "attach", "notify", "0x10", "--fd", "999999");
            Assert.Equal(64, closed.Status);
            Assert.Contains("descriptor 999999 is not open", Assert.Single(closed.StderrLines));
            CliTests.Result ok = CliTests.Execute("control", path, "attach", "notify", "0x10", "--fd", ender.Handle.Fd.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal((0, "ok\n"), (ok.Status, ok.Stdout)); // and the guest shuts down
        }
        finally
        {
            vm.Join();
        }
        Assert.NotNull(result);
        Assert.True(result.Status == 0, $"status {result.Status}: {result.Stderr}");
        CliTests.Result gone = CliTests.Execute("control", path, "list");
        Assert.Equal(69, gone.Status);
        Assert.StartsWith($"sharpvisor: control {path}: ", Assert.Single(gone.StderrLines));
        Assert.Equal("", gone.Stdout);
    }

    [Fact]
    public void TwoVcpus_BothHaltForEver_WithAControlSocket_IsNotADeadlock_TheTimeoutEndsIt()
    {
        using var dir = new TempDir();
        string guest = NotifyTests.Flat(dir, "hlt.bin", a => a.hlt());
        string path = Path.Combine(dir.Path, "vm.ctl");
        CliTests.Result r = CliTests.Execute("run", guest, "--flat", "0x1000", "--vcpus", "2", "--engine", "threaded",
            "--timeout", "2", "--control", path);
        Assert.Equal(82, r.Status);
        Assert.StartsWith("sharpvisor: timeout: ", Assert.Single(r.StderrLines));
        Assert.False(File.Exists(path), "the control socket is left behind");
    }

    [Fact]
    public void Control_WhereSomethingElseIs_Exits69_WithOneLine()
    {
        using var dir = new TempDir();
        string guest = NotifyTests.Flat(dir, "hlt.bin", a => a.hlt());
        string path = dir.Write("not-a-socket", [1, 2, 3]);
        CliTests.Result r = CliTests.Execute("run", guest, "--flat", "0x1000", "--engine", "threaded", "--timeout", "60", "--control", path);
        Assert.Equal(69, r.Status);
        string line = Assert.Single(r.StderrLines);
        Assert.StartsWith($"sharpvisor: --control {path}: ", line);
        Assert.Contains("not a socket", line);
        Assert.Equal([1, 2, 3], File.ReadAllBytes(path)); // left alone
    }
}
