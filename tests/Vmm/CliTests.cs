using System.Text;
using System.Text.Json;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Vmm;
using Sharpvisor.Vmm.Launcher;

namespace Sharpvisor.Tests.Vmm;

/// <summary>The command line in process, with stdout and stderr captured.</summary>
public class CliTests
{
    internal sealed record Result(int Status, string Stdout, string Stderr)
    {
        public string[] StderrLines => Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    internal static Result Execute(params string[] args)
    {
        var stdout = new MemoryStream();
        var stderr = new StringWriter { NewLine = "\n" };
        int status = Cli.Execute(args, stdout, stderr);
        return new Result(status, Encoding.UTF8.GetString(stdout.ToArray()), stderr.ToString());
    }

    internal static void AssertOneLineError(Result r, int status, string contains)
    {
        Assert.Equal(status, r.Status);
        string line = Assert.Single(r.StderrLines);
        Assert.StartsWith("sharpvisor: ", line);
        Assert.Contains(contains, line);
    }

    [Fact]
    public void Help_PrintsUsageAndTheExitStatusTable_Status0()
    {
        Result r = Execute("--help");
        Assert.Equal(0, r.Status);
        Assert.Contains("run", r.Stdout);
        Assert.Contains("Exit status", r.Stdout);
        Assert.Contains("82", r.Stdout);
        Assert.Equal("", r.Stderr);
    }

    [Fact]
    public void RunHelp_ListsEveryOption()
    {
        Result r = Execute("run", "--help");
        Assert.Equal(0, r.Status);
        foreach (string option in new[] { "--engine", "--mem", "--flat", "--regs", "--timeout", "--vcpus", "--notify", "--irq", "--stats" })
            Assert.Contains(option, r.Stdout);
    }

    [Fact]
    public void Version_PrintsNameAndVersion()
    {
        Result r = Execute("--version");
        Assert.Equal(0, r.Status);
        Assert.StartsWith("sharpvisor 0.", r.Stdout);
    }

    [Theory]
    [InlineData(new string[0], "command is required")]
    [InlineData(new[] { "frobnicate" }, "frobnicate")]
    [InlineData(new[] { "run" }, "Required argument")]
    [InlineData(new[] { "run", "--bogus" }, "unknown option '--bogus'")]
    [InlineData(new[] { "run", "x.elf", "--bogus" }, "--bogus")]
    [InlineData(new[] { "run", "x.elf", "--engine", "jit" }, "jit")]
    [InlineData(new[] { "run", "x.elf", "--mem", "12Q" }, "--mem '12Q'")]
    [InlineData(new[] { "run", "x.elf", "--mem", "4G" }, "3G")]
    [InlineData(new[] { "run", "x.elf", "--mem", "1000" }, "multiple of 4K")]
    [InlineData(new[] { "run", "x.elf", "--mem" }, "--mem")]
    [InlineData(new[] { "run", "x.elf", "--flat", "nowhere" }, "--flat 'nowhere'")]
    [InlineData(new[] { "run", "x.elf", "--timeout", "0" }, "--timeout '0'")]
    [InlineData(new[] { "run", "x.elf", "--timeout", "soon" }, "--timeout 'soon'")]
    [InlineData(new[] { "run", "a.elf", "b.elf" }, "b.elf")]
    [InlineData(new[] { "smoke", "-3" }, "")]
    public void BadOptions_AreUsageErrors64_WithOneLine(string[] args, string contains) =>
        AssertOneLineError(Execute(args), 64, contains);

    [Fact]
    public void EmptyImagePath_IsAUsageError64_WithOneLine() =>
        AssertOneLineError(Execute("run", ""), 64, "IMAGE");

    [Fact]
    public void ControlWithoutArguments_SaysItOnce()
    {
        Result r = Execute("control");
        AssertOneLineError(r, 64, "control");
        string line = r.StderrLines[0];
        string first = line["sharpvisor: ".Length..line.IndexOf(" (see sharpvisor --help)", StringComparison.Ordinal)];
        Assert.DoesNotContain(";", first);
    }

    /// <summary>
    /// A FIFO nobody writes to: opening it for reading would wait for a writer
    /// for ever. It is not a regular file, so it is refused at once.
    /// </summary>
    [Fact]
    public void FifoAsImage_Is65_WithoutWaitingForAWriter()
    {
        using var dir = new TempDir();
        string fifo = System.IO.Path.Combine(dir.Path, "image.fifo");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", [fifo])) mkfifo.WaitForExit();
        Assert.True(File.Exists(fifo), "mkfifo made no FIFO");
        Task<Result> run = Task.Run(() => Execute("run", fifo));
        bool finished = run.Wait(TimeSpan.FromSeconds(60));
        if (!finished)
        {
            // Let the blocked open return (it pairs with this writer), so no thread stays stuck in this test host.
            using (File.OpenWrite(fifo)) { }
            run.Wait();
        }
        Assert.True(finished, "run of a FIFO was still waiting for a writer after 60 s");
        AssertOneLineError(run.Result, 65, "FIFO");
    }

    [Fact]
    public void MissingImage_Is66()
    {
        AssertOneLineError(Execute("run", "/nonexistent/guest.elf"), 66, "not found");
    }

    [Fact]
    public void DirectoryAsImage_Is66()
    {
        using var dir = new TempDir();
        AssertOneLineError(Execute("run", dir.Path), 66, "directory");
    }

    public static TheoryData<string, byte[], string> MalformedImages => new()
    {
        { "elf64", TestElf.Elf64(), "64-bit" },
        { "x86-64 machine", new TestElf { Machine = TestElf.EM_X86_64 }.Load(0x100000, [0x90]).Build(), "not i386" },
        { "ET_DYN", new TestElf { Type = TestElf.ET_DYN }.Load(0x100000, [0x90]).Build(), "ET_DYN" },
        { "beyond RAM", new TestElf().Load(0x100000, [0x90]).Load(0x3fff000, [1], 0x2000).Build(), "outside guest RAM" },
        { "overlap", new TestElf().Load(0x100000, new byte[64]).Load(0x100020, [1]).Build(), "overlapping" },
        { "truncated", TestElf.HiGuest().Build()[..90], "truncated" },
        { "not ELF", "#!/bin/sh\n"u8.ToArray(), "not an ELF" },
    };

    [Theory]
    [MemberData(nameof(MalformedImages))]
    public void MalformedImage_Is65_WithOneLine(string name, byte[] image, string contains)
    {
        using var dir = new TempDir();
        string path = dir.Write(name.Replace(' ', '-'), image);
        AssertOneLineError(Execute("run", path, "--regs"), 65, contains);
    }

    [Fact]
    public void ImageLargerThanRam_Is65()
    {
        using var dir = new TempDir();
        string path = dir.Write("big.bin", new byte[8192]);
        AssertOneLineError(Execute("run", path, "--flat", "0", "--mem", "4K"), 65, "larger than guest RAM");
    }

    [Fact]
    public void Describe_NamesTheStopInOneLine()
    {
        Assert.Equal("timeout: --timeout of 2 s elapsed (guest eip 0x100010)",
            Cli.Describe(new VcpuExit(StopReason.Timeout, "--timeout of 2 s elapsed"), 0x100010));
        Assert.Equal("guest fault: read of 4 bytes at 0x5000000 outside guest RAM at eip 0x100004",
            Cli.Describe(new VcpuExit(StopReason.Fault, "read of 4 bytes at 0x5000000 outside guest RAM\nat eip 0x100004"), 0));
    }

    [Theory]
    [InlineData(StopReason.Fault, 80)]
    [InlineData(StopReason.Deadlock, 81)]
    [InlineData(StopReason.Timeout, 82)]
    [InlineData(StopReason.Error, 70)]
    public void ExitStatuses_MapEachStopReason(StopReason reason, int status) =>
        Assert.Equal(status, ExitStatuses.For(new VcpuExit(reason, "x")));

    [Theory]
    [InlineData(2, 130)]
    [InlineData(15, 143)]
    public void ExitStatuses_Signal_Is128PlusTheSignal(int signal, int status) =>
        Assert.Equal(status, ExitStatuses.For(new VcpuExit(StopReason.Signal, "x", Signal: signal)));

    [Fact]
    public void RegsReport_IsOneJsonLineWithUnsignedRegisters()
    {
        using var mem = Sharpvisor.Native.GuestMemory.Allocate(1 << 20);
        using var engine = new ExecutionEngine(mem, EngineKind.Threaded);
        using var host = new Sharpvisor.Vmm.Hypercalls.HypercallHost(mem, Stream.Null);
        using var vcpu = new Vcpu(engine, 0, host);
        Machine.Reset(vcpu, 0x100000, 1 << 20);
        vcpu.State[Sharpvisor.Jit.Cpu.Gpr.Edi] = 0xffffffff;
        string line = RegsReport.Format(VcpuExit.Shutdown(3), 3, [vcpu]);
        Assert.DoesNotContain("\n", line);
        using JsonDocument doc = JsonDocument.Parse(line);
        JsonElement stop = doc.RootElement.GetProperty("stop");
        Assert.Equal("shutdown", stop.GetProperty("reason").GetString());
        Assert.Equal(3, stop.GetProperty("exit").GetInt32());
        Assert.Equal(3, stop.GetProperty("guest_status").GetInt32());
        JsonElement cpu = Assert.Single(doc.RootElement.GetProperty("vcpus").EnumerateArray());
        Assert.Equal(0, cpu.GetProperty("id").GetInt32());
        Assert.Equal(0xffffffffu, cpu.GetProperty("edi").GetUInt32());
        Assert.Equal(1u << 20, cpu.GetProperty("esp").GetUInt32());
        Assert.Equal(0x100000u, cpu.GetProperty("eip").GetUInt32());
        Assert.Equal(2u, cpu.GetProperty("eflags").GetUInt32());

        string fault = RegsReport.Format(VcpuExit.Of(new GuestFault(FaultKind.DivideError, 0x100000, null, null, [0xf7, 0xf1])), 80, [vcpu]);
        using JsonDocument f = JsonDocument.Parse(fault);
        Assert.Equal(JsonValueKind.Null, f.RootElement.GetProperty("stop").GetProperty("guest_status").ValueKind);
    }

    [Fact]
    public void Reset_SetsTheAbiEntryState_WithStacksSpacedPerVcpu()
    {
        using var mem = Sharpvisor.Native.GuestMemory.Allocate(1 << 20);
        using var engine = new ExecutionEngine(mem, EngineKind.Threaded);
        using var host = new Sharpvisor.Vmm.Hypercalls.HypercallHost(mem, Stream.Null);
        using var vcpu = new Vcpu(engine, 2, host);
        Machine.Reset(vcpu, 0x1234, 1 << 20);
        Assert.Equal(0x1234u, vcpu.State.Eip);
        Assert.Equal((1u << 20) - 2 * 65536, vcpu.State[Sharpvisor.Jit.Cpu.Gpr.Esp]);
        Assert.Equal(2u, vcpu.State[Sharpvisor.Jit.Cpu.Gpr.Eax]);
        Assert.Equal(0u, vcpu.State[Sharpvisor.Jit.Cpu.Gpr.Ebx]);
        Assert.Equal(2u, vcpu.State.GetEflags());
    }

    // --- These run guest code: they pass once Vcpu.Run is implemented. ---

    [Theory]
    [InlineData("threaded")]
    [InlineData("il")]
    [InlineData("x64")]
    public void HandAssembledGuest_WritesAndShutsDownWithItsStatus(string engine)
    {
        using var dir = new TempDir();
        string path = dir.Write("hi.elf", TestElf.HiGuest().Build());
        Result r = Execute("run", path, "--engine", engine, "--timeout", "30", "--regs");
        Assert.Equal("hi\n", r.Stdout);
        Assert.Equal(7, r.Status);
        // A shutdown prints no line of its own; --regs adds the JSON line.
        string json = Assert.Single(r.StderrLines);
        using JsonDocument doc = JsonDocument.Parse(json);
        Assert.Equal(7, doc.RootElement.GetProperty("stop").GetProperty("guest_status").GetInt32());
    }

    [Fact]
    public void FlatGuest_FaultingRead_Is80WithOneLineNamingTheAddress()
    {
        using var dir = new TempDir();
        // mov eax, [0x7ffffff0]: far outside 1 MiB of RAM.
        string path = dir.Write("fault.bin", [0xA1, 0xF0, 0xFF, 0xFF, 0x7F]);
        Result r = Execute("run", path, "--flat", "0x1000", "--mem", "1M", "--engine", "threaded", "--timeout", "30");
        AssertOneLineError(r, 80, "guest fault");
        Assert.Contains("0x7ffffff0", r.Stderr);
    }

    [Fact]
    public void FlatGuest_Hlt_IsADeadlock81()
    {
        using var dir = new TempDir();
        string path = dir.Write("hlt.bin", [0xF4]);
        AssertOneLineError(Execute("run", path, "--flat", "0x1000", "--engine", "threaded", "--timeout", "30"), 81, "deadlock");
    }

    [Fact]
    public void FlatGuest_EndlessLoop_StopsAtTimeout82()
    {
        using var dir = new TempDir();
        string path = dir.Write("loop.bin", [0xEB, 0xFE]); // jmp $
        AssertOneLineError(Execute("run", path, "--flat", "0x1000", "--engine", "threaded", "--timeout", "0.3"), 82, "timeout");
    }

    [Fact]
    public void FlatGuest_UnknownHypercall_Is80()
    {
        using var dir = new TempDir();
        // mov eax, 99; int 0x1f
        string path = dir.Write("unknown.bin", [0xB8, 99, 0, 0, 0, 0xCD, 0x1F]);
        AssertOneLineError(Execute("run", path, "--flat", "0x1000", "--engine", "threaded", "--timeout", "30"), 80, "unknown hypercall 99");
    }
}
