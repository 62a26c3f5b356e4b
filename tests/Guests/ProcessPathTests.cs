using System.Text;

namespace Sharpvisor.Tests.Guests;

/// <summary>
/// The real process path: `dotnet sharpvisor.dll`, as built next to this
/// test run, with its own stdout, stderr and exit status.
/// </summary>
public class ProcessPathTests
{
    internal static string SharpvisorDll()
    {
        // tests/bin/<Configuration>/net10.0/ -> src/Vmm/bin/<Configuration>/net10.0/sharpvisor.dll
        string configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/')).Parent!.Name;
        string dll = Path.Combine(GuestBinaries.RepoRoot, "src", "Vmm", "bin", configuration, "net10.0", "sharpvisor.dll");
        Assert.True(File.Exists(dll), $"{dll} is not built");
        return dll;
    }

    private static ProcessResult Sharpvisor(params string[] args) =>
        ProcessResult.Run("dotnet", [SharpvisorDll(), .. args], TimeSpan.FromMinutes(2));

    [Fact]
    public void MissingImage_Exits66_WithOneLineAndNoStackTrace()
    {
        ProcessResult r = Sharpvisor("run", "/nonexistent/guest.elf");
        Assert.Equal(66, r.Status);
        string line = Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("sharpvisor: ", line);
        Assert.Empty(r.Stdout);
    }

    /// <summary>
    /// An endless character device as IMAGE: refused as what it is, not read
    /// until memory runs out. Run as a process with a small GC heap limit, so
    /// that if it ever reads on again it fails fast there, not in this test host.
    /// </summary>
    [Theory]
    [InlineData("/dev/zero")]
    [InlineData("/dev/urandom")]
    public void EndlessCharacterDevice_Exits65_WithOneLine(string device)
    {
        var start = new System.Diagnostics.ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in new[] { SharpvisorDll(), "run", device }) start.ArgumentList.Add(a);
        start.Environment["DOTNET_GCHeapHardLimit"] = "0x10000000"; // 256 MiB
        using var p = System.Diagnostics.Process.Start(start)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"run {device} still running after 2 minutes");
        }
        Assert.Equal(65, p.ExitCode);
        string line = Assert.Single(stderr.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("sharpvisor: ", line);
        Assert.Contains("character device", line);
        Assert.Equal("", stdout.Result);
    }

    [Fact]
    public void BadOption_Exits64()
    {
        ProcessResult r = Sharpvisor("run", "x.elf", "--mem", "lots");
        Assert.Equal(64, r.Status);
        Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void Help_Exits0()
    {
        ProcessResult r = Sharpvisor("--help");
        Assert.Equal(0, r.Status);
        Assert.Contains("Exit status", Encoding.UTF8.GetString(r.Stdout));
    }

    /// <summary>Needs the engine (Vcpu.Run).</summary>
    [Fact]
    public void Hello_Exits0_WithTheNativeOutputAndAnEmptyStderr()
    {
        GuestBinaries.RequireBuilt();
        ProcessResult native = ProcessResult.Run(GuestBinaries.Native("hello"), [], TimeSpan.FromMinutes(1));
        ProcessResult r = Sharpvisor("run", GuestBinaries.Guest("hello"), "--timeout", "60");
        Assert.Equal("", r.Stderr);
        Assert.Equal(native.Stdout, r.Stdout);
        Assert.Equal(0, r.Status);
    }

    /// <summary>Needs the engine: SIGINT stops a spinning guest cleanly, status 130, one line.</summary>
    [Fact]
    public void Sigint_StopsTheVcpuCleanly_Exits130()
    {
        using var dir = new global::Sharpvisor.Tests.Vmm.TempDir();
        string loop = global::Sharpvisor.Tests.Vmm.NotifyTests.Flat(dir, "loop.bin", a =>
        {
            var spin = a.CreateLabel();
            SayRunning(a);
            a.Label(ref spin);
            a.jmp(spin); // jmp $
        });
        AssertSignalStopsIt("INT", 130, loop, "--flat", "0x1000", "--engine", "threaded", "--timeout", "60");
    }

    /// <summary>
    /// SIGTERM while both vCPUs sleep in LHCALL_HALT: both are woken and
    /// stopped cleanly, status 143, one line.
    /// </summary>
    [Fact]
    public void Sigterm_WakesHaltedVcpus_AndStopsThemCleanly_Exits143()
    {
        using var dir = new global::Sharpvisor.Tests.Vmm.TempDir();
        string guest = global::Sharpvisor.Tests.Vmm.NotifyTests.Flat(dir, "sleepers.bin", a =>
        {
            var sleep = a.CreateLabel();
            a.test(Iced.Intel.AssemblerRegisters.eax, Iced.Intel.AssemblerRegisters.eax);
            a.jnz(sleep);
            SayRunning(a);
            a.Label(ref sleep);
            global::Sharpvisor.Tests.Vmm.NotifyTests.Hypercall(a, 10, 60_000_000); // a minute
            global::Sharpvisor.Tests.Vmm.NotifyTests.Hypercall(a, 2, 0);
        });
        AssertSignalStopsIt("TERM", 143, guest, "--flat", "0x1000", "--vcpus", "2", "--engine", "threaded", "--timeout", "120");
    }

    /// <summary>The guest writes "r" to the console: it runs, so the launcher's signal handlers are in place.</summary>
    private static void SayRunning(Iced.Intel.Assembler a)
    {
        a.mov(Iced.Intel.AssemblerRegisters.__byte_ptr[0x3000], (byte)'r');
        a.mov(Iced.Intel.AssemblerRegisters.ebx, 0x3000);
        a.mov(Iced.Intel.AssemblerRegisters.ecx, 1);
        a.mov(Iced.Intel.AssemblerRegisters.eax, 32);
        a.@int(0x1f);
    }

    /// <summary>
    /// Runs `sharpvisor run IMAGE ARGS` as a process, sends SIG<paramref name="signal"/>
    /// once the guest says it runs (however slow the start), and expects
    /// <paramref name="status"/> with one line on stderr naming the signal.
    /// </summary>
    private static void AssertSignalStopsIt(string signal, int status, string image, params string[] args)
    {
        var start = new System.Diagnostics.ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in new[] { SharpvisorDll(), "run", image }.Concat(args))
            start.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(start)!;
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        Assert.Equal('r', p.StandardOutput.Read());
        using (var kill = System.Diagnostics.Process.Start("kill", [$"-{signal}", p.Id.ToString()])) kill.WaitForExit();
        Assert.True(p.WaitForExit(TimeSpan.FromSeconds(60)), $"still running 60 s after SIG{signal}");
        Assert.Equal(status, p.ExitCode);
        string line = Assert.Single(stderr.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains($"SIG{signal}", line);
    }
}
