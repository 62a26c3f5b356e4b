using System.Text;
using System.Text.RegularExpressions;
using Iced.Intel;
using Sharpvisor.Native;
using Sharpvisor.Tests.Guests;
using static Iced.Intel.AssemblerRegisters;

namespace Sharpvisor.Tests.Vmm;

/// <summary>
/// --notify and --irq with fd: targets, end to end through the command line
/// in process: the eventfds are the test's own, so their descriptor numbers
/// are valid for the CLI, and a test thread plays the device on the other side.
/// </summary>
public class NotifyTests
{
    public static TheoryData<string> Engines => new("il", "threaded", "x64");

    internal static CliTests.Result Execute(params string[] args) => CliTests.Execute(args);

    /// <summary>A flat binary at 0x1000 from Iced-assembled code.</summary>
    internal static string Flat(TempDir dir, string name, Action<Assembler> program)
    {
        var asm = new Assembler(32);
        program(asm);
        var stream = new MemoryStream();
        asm.Assemble(new StreamCodeWriter(stream), 0x1000);
        return dir.Write(name, stream.ToArray());
    }

    internal static void Hypercall(Assembler a, uint number, uint argument)
    {
        a.mov(eax, number);
        a.mov(ebx, argument);
        a.@int(0x1f);
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public void NotifyGuest_FdTargets_DeliverExactCounts_AndStatsAgree(string engine)
    {
        GuestBinaries.RequireBuilt();
        using var a = EventFd.Create();
        using var b = EventFd.Create(EventFdFlags.NonBlocking);
        int flagsA = FdSnapshot.Flags(a.Handle.Fd), flagsB = FdSnapshot.Flags(b.Handle.Fd);
        CliTests.Result r = Execute("run", GuestBinaries.Guest("notify"), "--engine", engine, "--timeout", "120",
            "--notify", $"0x10=fd:{a.Handle.Fd}", "--notify", $"32=fd:{b.Handle.Fd}", "--stats", "--regs");
        Assert.Equal(0, r.Status);
        Assert.Equal("""
            value 0x00000010 delivered 1000 missed 0
            value 0x00000020 delivered 1000 missed 0
            value 0x00000030 delivered 0 missed 1000

            """.Replace("\r", ""), r.Stdout);
        Assert.Equal(1000UL, FdSnapshot.EventFdCount(a.Handle.Fd));
        Assert.Equal(1000UL, FdSnapshot.EventFdCount(b.Handle.Fd));
        // The stats come after the guest's output, before the JSON, which stays last.
        string[] lines = r.StderrLines;
        Assert.Equal(["notify 0x10 delivered 1000", "notify 0x20 delivered 1000", "notify 0x30 missed 1000"], lines[..^1]);
        Assert.StartsWith("{\"stop\":", lines[^1]);
        // Our duplicates never changed the caller's descriptors.
        Assert.Equal(flagsA, FdSnapshot.Flags(a.Handle.Fd));
        Assert.Equal(flagsB, FdSnapshot.Flags(b.Handle.Fd));
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public void PingPong_NotifyAndInterruptRoundTrips_WithAResponderThread(string engine)
    {
        GuestBinaries.RequireBuilt();
        using var ping = EventFd.Create();  // blocking, as a device's would be
        using var pong = EventFd.Create();
        long reads = 0, notifications = 0;
        using var cancel = new CancellationTokenSource();
        var responder = new Thread(() =>
        {
            try
            {
                while (true)
                {
                    ulong n = ping.Read(cancel.Token);
                    reads++;
                    notifications += (long)n;
                    pong.Signal();
                }
            }
            catch (OperationCanceledException) { }
        });
        responder.Start();
        CliTests.Result r;
        try
        {
            r = Execute("run", GuestBinaries.Guest("pingpong"), "--engine", engine, "--timeout", "120",
                "--notify", $"0x10=fd:{ping.Handle.Fd}", "--irq", $"5=fd:{pong.Handle.Fd}", "--stats");
        }
        finally
        {
            cancel.Cancel();
            responder.Join();
        }
        Assert.Equal("rounds 1000\npongs 1000\nother 0\nundelivered 0\nafter 0\n", r.Stdout);
        Assert.Equal(0, r.Status);
        Assert.Equal(["notify 0x10 delivered 1000"], r.StderrLines);
        // One notification per round, each answered before the next.
        Assert.Equal(1000, notifications);
        Assert.Equal(1000, reads);
    }

    [Fact]
    public void MissTable_FirstSixtyFourDistinctValues_ThenOther()
    {
        // Notifies values 1..70, then 3 and 70 once more, then shuts down.
        using var dir = new TempDir();
        string path = Flat(dir, "misses.bin", a =>
        {
            var loop = a.CreateLabel();
            a.mov(esi, 1);
            a.Label(ref loop);
            a.mov(eax, 17);
            a.mov(ebx, esi);
            a.@int(0x1f);
            a.inc(esi);
            a.cmp(esi, 70);
            a.jbe(loop);
            Hypercall(a, 17, 3);
            Hypercall(a, 17, 70);
            Hypercall(a, 2, 0);
        });
        CliTests.Result r = Execute("run", path, "--flat", "0x1000", "--engine", "threaded", "--timeout", "60", "--stats");
        Assert.Equal(0, r.Status);
        var expected = Enumerable.Range(1, 64).Select(v => $"notify 0x{v:x} missed {(v == 3 ? 2 : 1)}").Append("notify other missed 7");
        Assert.Equal(expected, r.StderrLines);
    }

    [Fact]
    public void NotifyValueZero_IsAGuestFault80()
    {
        using var dir = new TempDir();
        string path = Flat(dir, "zero.bin", a => Hypercall(a, 17, 0));
        CliTests.Result r = Execute("run", path, "--flat", "0x1000", "--engine", "threaded", "--timeout", "60");
        Assert.Equal(80, r.Status);
        Assert.Contains("LHCALL_NOTIFY with value 0", Assert.Single(r.StderrLines));
    }

    [Theory]
    [InlineData("--notify", "0=fd:3", "nonzero")]
    [InlineData("--notify", "0x10", "VALUE=TARGET")]
    [InlineData("--notify", "0x1_0=fd:3", "VALUE '0x1_0'")]
    [InlineData("--notify", "4294967296=fd:3", "32-bit")]
    [InlineData("--notify", "-1=fd:3", "'-1")]
    [InlineData("--notify", "0x10=3", "has no kind")]
    [InlineData("--notify", "0x10=foo:1", "unknown TARGET kind 'foo'")]
    [InlineData("--notify", "0x10=fd:", "descriptor number")]
    [InlineData("--notify", "0x10=fd:x", "descriptor number")]
    [InlineData("--irq", "0=fd:3", "from 1 to 31")]
    [InlineData("--irq", "32=fd:3", "from 1 to 31")]
    [InlineData("--irq", "5", "N=TARGET")]
    [InlineData("--irq", "5=tcp:/tmp/x", "unknown TARGET kind 'tcp'")]
    [InlineData("--vcpus", "0", "--vcpus '0'")]
    [InlineData("--vcpus", "65", "from 1 to 64")]
    [InlineData("--vcpus", "two", "--vcpus 'two'")]
    public void BadTargetOptions_AreUsageErrors64_WithOneLine(string option, string value, string contains)
    {
        CliTests.Result r = Execute("run", "x.elf", option, value);
        Assert.Equal(64, r.Status);
        string line = Assert.Single(r.StderrLines);
        Assert.StartsWith("sharpvisor: ", line);
        Assert.Contains(contains, line);
    }

    [Theory]
    [InlineData("0x10", "16", "--notify 0x10 is given twice")]
    [InlineData("0xAB", "0xab", "--notify 0xab is given twice")]
    public void DuplicateNotifyValue_InAnySpelling_Is64_NamedCanonically(string first, string second, string message)
    {
        CliTests.Result r = Execute("run", "x.elf", "--notify", $"{first}=fd:1", "--notify", $"{second}=fd:2");
        Assert.Equal(64, r.Status);
        Assert.Contains(message, Assert.Single(r.StderrLines));
    }

    [Fact]
    public void DuplicateIrq_Is64()
    {
        CliTests.Result r = Execute("run", "x.elf", "--irq", "3=fd:1", "--irq", "3=fd:2");
        Assert.Equal(64, r.Status);
        Assert.Contains("--irq 3 is given twice", Assert.Single(r.StderrLines));
    }

    [Fact]
    public void TargetNotOpen_Is69_WithOneLine()
    {
        GuestBinaries.RequireBuilt();
        CliTests.Result r = Execute("run", GuestBinaries.Guest("hello"), "--notify", "0x0010=fd:1000000");
        Assert.Equal(69, r.Status);
        Assert.Equal("sharpvisor: --notify 0x10=fd:1000000: target unavailable: descriptor 1000000 is not open", Assert.Single(r.StderrLines));
        Assert.Equal("", r.Stdout);
    }

    [Fact]
    public void TargetNotAnEventFd_Is69_WithOneLine()
    {
        GuestBinaries.RequireBuilt();
        var (read, write) = SafeFdHandle.CreatePipe();
        using (read)
        using (write)
        {
            CliTests.Result r = Execute("run", GuestBinaries.Guest("hello"), "--irq", $"7=fd:{read.Fd}");
            Assert.Equal(69, r.Status);
            string line = Assert.Single(r.StderrLines);
            Assert.StartsWith($"sharpvisor: --irq 7=fd:{read.Fd}: target unavailable:", line);
            Assert.Contains("pipe:", line);
            Assert.Contains("not an eventfd", line);
        }
    }

    [Fact]
    public void BadImage_WithTargets_Is65()
    {
        using var dir = new TempDir();
        using var efd = EventFd.Create();
        string path = dir.Write("bad.elf", "#!/bin/sh\n"u8.ToArray());
        CliTests.Result r = Execute("run", path, "--notify", $"1=fd:{efd.Handle.Fd}");
        Assert.Equal(65, r.Status);
        Assert.Single(r.StderrLines);
    }

    [Fact]
    public void HaltForEver_WithAnInterruptSource_IsNotADeadlock_ButTheTimeoutEndsIt82()
    {
        using var dir = new TempDir();
        using var irq = EventFd.Create();
        string path = Flat(dir, "halt.bin", a => Hypercall(a, 10, 0));
        CliTests.Result r = Execute("run", path, "--flat", "0x1000", "--engine", "threaded", "--timeout", "0.3", "--irq", $"1=fd:{irq.Handle.Fd}");
        Assert.Equal(82, r.Status);
        Assert.Contains("timeout", Assert.Single(r.StderrLines));
    }

    [Fact]
    public void Hlt_WaitsForAnInterrupt_ThenRuns()
    {
        // hlt, then LHCALL_HALT takes the interrupt hlt waited for, and shuts down with it.
        using var dir = new TempDir();
        using var irq = EventFd.Create();
        irq.Signal(); // already pending when the guest starts
        string path = Flat(dir, "hlt.bin", a =>
        {
            a.hlt();
            Hypercall(a, 10, 0);
            a.mov(ebx, eax);
            a.mov(eax, 2);
            a.@int(0x1f);
        });
        CliTests.Result r = Execute("run", path, "--flat", "0x1000", "--engine", "threaded", "--timeout", "60", "--irq", $"9=fd:{irq.Handle.Fd}");
        Assert.Equal(9, r.Status);
        Assert.Empty(r.StderrLines);
    }
}

/// <summary>Tests that count the process's descriptors: alone, so other tests' descriptors do not come and go meanwhile.</summary>
[Collection(Serial.Name)]
public class NotifyDescriptorTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void EveryDescriptorWeOpened_IsClosed_OnSuccessAndOnError(bool badTarget)
    {
        GuestBinaries.RequireBuilt();
        using var a = EventFd.Create();
        using var b = EventFd.Create();
        NotifyTests.Execute("--version"); // warm up whatever the runtime opens once
        HashSet<int> before = FdSnapshot.Open();
        CliTests.Result r = NotifyTests.Execute("run", GuestBinaries.Guest("notify"), "--timeout", "120", "--vcpus", "1",
            "--notify", $"0x10=fd:{a.Handle.Fd}", "--irq", $"3=fd:{b.Handle.Fd}",
            "--notify", $"0x20=fd:{(badTarget ? 1_000_000 : a.Handle.Fd)}");
        Assert.Equal(badTarget ? 69 : 0, r.Status);
        HashSet<int> after = FdSnapshot.Open();
        Assert.Equal(before.Order(), after.Order());
    }
}
