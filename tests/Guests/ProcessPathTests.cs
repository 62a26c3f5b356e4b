using System.Text;

namespace Sharpvisor.Tests.Guests;

/// <summary>
/// The real process path: `dotnet sharpvisor.dll`, as built next to this
/// test run, with its own stdout, stderr and exit status.
/// </summary>
public class ProcessPathTests
{
    private static string SharpvisorDll()
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
        using var dir = new Sharpvisor.Tests.Vmm.TempDir();
        string loop = dir.Write("loop.bin", [0xEB, 0xFE]); // jmp $
        var start = new System.Diagnostics.ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in new[] { SharpvisorDll(), "run", loop, "--flat", "0x1000", "--engine", "threaded", "--timeout", "60" })
            start.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(start)!;
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        Thread.Sleep(1500); // past runtime start-up and signal registration
        using (var kill = System.Diagnostics.Process.Start("kill", ["-INT", p.Id.ToString()])) kill.WaitForExit();
        Assert.True(p.WaitForExit(TimeSpan.FromSeconds(30)), "still running 30 s after SIGINT");
        Assert.Equal(130, p.ExitCode);
        string line = Assert.Single(stderr.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("SIGINT", line);
    }
}
