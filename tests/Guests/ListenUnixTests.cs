using System.Diagnostics;
using Sharpvisor.Tests.Vmm;

namespace Sharpvisor.Tests.Guests;

/// <summary>
/// `sharpvisor listen --unix PATH` as its own process on one side, `run`
/// with two `unix:PATH` targets on the other: the listener takes both
/// eventfds, answers each ping with the interrupt, and prints every wakeup.
/// </summary>
public class ListenUnixTests
{
    [Fact]
    public void PingPong_ThroughAListenProcessOnAUnixSocket_AnswersEveryRoundAndPrintsEveryPing()
    {
        GuestBinaries.RequireBuilt();
        using var dir = new TempDir();
        string socket = Path.Combine(dir.Path, "s.sock");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { ProcessPathTests.SharpvisorDll(), "listen", "--unix", socket, "--expect", "2", "--answer", "notify-0x10=irq-5" })
            start.ArgumentList.Add(a);
        using var listener = Process.Start(start)!;
        Task<string> stdout = listener.StandardOutput.ReadToEndAsync();
        Task<string> stderr = listener.StandardError.ReadToEndAsync();
        try
        {
            var wait = Stopwatch.StartNew();
            while (!File.Exists(socket) && !listener.HasExited && wait.Elapsed < TimeSpan.FromMinutes(1))
                Thread.Sleep(20);
            Assert.True(File.Exists(socket), $"listen made no socket: {(listener.HasExited ? stderr.Result : "still starting")}");

            CliTests.Result r = CliTests.Execute("run", GuestBinaries.Guest("pingpong"), "--timeout", "120",
                "--notify", $"0x10=unix:{socket}", "--irq", $"5=unix:{socket}", "--stats");
            Assert.Equal("rounds 1000\npongs 1000\nother 0\nundelivered 0\nafter 0\n", r.Stdout);
            Assert.Equal(0, r.Status);
            Assert.Equal(["notify 0x10 delivered 1000"], r.StderrLines);
        }
        finally
        {
            using (var term = Process.Start("kill", ["-TERM", listener.Id.ToString()])) term.WaitForExit();
            Assert.True(listener.WaitForExit(TimeSpan.FromSeconds(60)), "listen still running 60 s after SIGTERM");
        }
        Assert.Equal(0, listener.ExitCode);
        Assert.Equal("", stderr.Result);
        // One line per wakeup, "<seconds.micros> notify-0x10 <count>": the counts add up to every ping.
        string[] lines = stdout.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.All(lines, line => Assert.Matches(@"^\d+\.\d{6} notify-0x10 \d+$", line));
        Assert.Equal(1000, lines.Sum(line => long.Parse(line.Split(' ')[2])));
        Assert.False(File.Exists(socket), "the socket file outlived listen");
    }

    [Fact]
    public void ListenUnix_OnAPathThatIsARegularFile_Exits69_InOneLine()
    {
        using var dir = new TempDir();
        string file = dir.Write("not-a-socket", [1, 2, 3]);
        CliTests.Result r = CliTests.Execute("listen", "--unix", file);
        Assert.Equal(69, r.Status);
        Assert.StartsWith($"sharpvisor: listen: --unix {file}: ", Assert.Single(r.StderrLines));
    }

    [Fact]
    public void Expect_WithoutUnix_IsAUsageError()
    {
        CliTests.Result r = CliTests.Execute("listen", "--expect", "2");
        Assert.Equal(64, r.Status);
        Assert.Contains("--expect needs --unix", Assert.Single(r.StderrLines));
    }
}
