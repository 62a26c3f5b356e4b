namespace Sharpvisor.Tests.Vmm;

/// <summary>
/// Bad exec: targets, in process: each is refused with one line before
/// anything starts (so no child is spawned here): a CMD with no program we
/// can know is a usage error (64), a program that is not there or cannot
/// run is unavailable (69).
/// </summary>
public class ExecTargetErrorTests
{
    private static CliTests.Result Run(TempDir dir, params string[] targets)
    {
        string image = dir.Write("spin.bin", [0xEB, 0xFE]); // never runs: the targets are refused first
        return CliTests.Execute(["run", image, "--flat", "0x1000", .. targets]);
    }

    [Fact]
    public void MissingProgram_Is69_WithOneLineNamingIt()
    {
        using var dir = new TempDir();
        CliTests.Result r = Run(dir, "--notify", "0x10=exec:nosuch-program-sv --flag");
        Assert.Equal(69, r.Status);
        Assert.Equal(["sharpvisor: --notify 0x10=exec:nosuch-program-sv --flag: target unavailable: program 'nosuch-program-sv' not found in PATH"], r.StderrLines);
        Assert.Equal("", r.Stdout);
    }

    [Theory]
    [InlineData("5=exec:/etc/passwd", "--irq 5=exec:/etc/passwd: target unavailable: program '/etc/passwd' is not executable")]
    [InlineData("5=exec:/tmp", "--irq 5=exec:/tmp: target unavailable: program '/tmp' is a directory, not an executable file")]
    [InlineData("5=exec:/nonexistent/prog x", "--irq 5=exec:/nonexistent/prog x: target unavailable: program '/nonexistent/prog' not found")]
    [InlineData("5=exec:\"$SV_TEST_UNSET_VARIABLE\" x", "CMD names no program")]
    public void UnrunnableProgram_Is69(string irq, string contains)
    {
        using var dir = new TempDir();
        CliTests.Result r = Run(dir, "--irq", irq);
        Assert.Equal(69, r.Status);
        Assert.Contains(contains, Assert.Single(r.StderrLines));
    }

    [Theory]
    [InlineData("0x10=exec:", "CMD is empty")]
    [InlineData("0x10=exec:   ", "CMD is empty")]
    [InlineData("0x10=exec:'sleep 1", "not closed")]
    [InlineData("0x10=exec:if true; then sleep 1; fi", "keyword 'if'")]
    [InlineData("0x10=exec:$(which sleep)", "$(")]
    [InlineData("0x10=nope:x", "this version knows fd:N, unix:PATH and exec:CMD")]
    public void CmdWithNoKnowableProgram_Is64(string notify, string contains)
    {
        using var dir = new TempDir();
        CliTests.Result r = Run(dir, "--notify", notify);
        Assert.Equal(64, r.Status);
        string line = Assert.Single(r.StderrLines);
        Assert.StartsWith("sharpvisor: --notify ", line);
        Assert.Contains(contains, line);
    }

    [Fact]
    public void RunHelp_DescribesExecTargets_AndListenHasItsOwnHelp()
    {
        Assert.Contains("exec:CMD", CliTests.Execute("run", "--help").Stdout);
        CliTests.Result listen = CliTests.Execute("listen", "--help");
        Assert.Equal(0, listen.Status);
        foreach (string s in new[] { "LISTEN_FDS", "--answer", "--exit-after", "<realtime seconds.micros> <name> <count>" })
            Assert.Contains(s, listen.Stdout);
    }
}
