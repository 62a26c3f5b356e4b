using System.Text.RegularExpressions;
using Sharpvisor.Native;
using Sharpvisor.Vmm.Listen;

namespace Sharpvisor.Tests.Vmm;

/// <summary>
/// `sharpvisor listen` in process: the handshake from an environment given
/// as a function, and the loop on the test's own eventfds (their numbers are
/// valid here; listen works on duplicates, so they stay the test's).
/// </summary>
public class ListenTests
{
    private static Func<string, string?> Env(params (string Name, string Value)[] vars) =>
        name => vars.FirstOrDefault(v => v.Name == name).Value;

    [Fact]
    public void Handshake_TakesDescriptorsFrom3_WithTheirNames()
    {
        Assert.True(ListenFds.TryParse(Env(("LISTEN_FDS", "2"), ("LISTEN_PID", "42"), ("LISTEN_FDNAMES", "notify-0x10:irq-5")), 42,
            out ListenedFd[] fds, out string error), error);
        Assert.Equal([new ListenedFd(3, "notify-0x10"), new ListenedFd(4, "irq-5")], fds);
    }

    [Fact]
    public void Handshake_WithoutNamesOrPid_NamesByNumber()
    {
        Assert.True(ListenFds.TryParse(Env(("LISTEN_FDS", "2")), 42, out ListenedFd[] fds, out _));
        Assert.Equal([new ListenedFd(3, "fd3"), new ListenedFd(4, "fd4")], fds);
    }

    [Theory]
    [InlineData(null, "42", null, "LISTEN_FDS is not set")]
    [InlineData("0", "42", null, "LISTEN_FDS '0'")]
    [InlineData("x", "42", null, "LISTEN_FDS 'x'")]
    [InlineData("1", "41", null, "LISTEN_PID is 41, not this process (42)")]
    [InlineData("2", "42", "a", "1 names for LISTEN_FDS=2")]
    [InlineData("2", "42", "a:a", "names 'a' twice")]
    [InlineData("2", "42", "a:", "name ''")]
    public void Handshake_ThatIsMissingOrNotOurs_IsRefused(string? count, string pid, string? names, string contains)
    {
        var vars = new List<(string, string)> { ("LISTEN_PID", pid) };
        if (count is not null) vars.Add(("LISTEN_FDS", count));
        if (names is not null) vars.Add(("LISTEN_FDNAMES", names));
        Assert.False(ListenFds.TryParse(Env([.. vars]), 42, out _, out string error));
        Assert.Contains(contains, error);
        Assert.DoesNotContain("\n", error);
    }

    [Fact]
    public void Run_PrintsOneLinePerWakeup_WithRealtimeMicroseconds_AndAnswers()
    {
        using var notify = EventFd.Create();
        using var irq = EventFd.Create();
        var output = new StringWriter { NewLine = "\n" };
        var stderr = new StringWriter();
        notify.Signal(5);
        int status = Listener.Run([new ListenedFd(notify.Handle.Fd, "notify-0x10"), new ListenedFd(irq.Handle.Fd, "irq-5")],
            ["notify-0x10=irq-5"], exitAfter: 5, output, stderr, handleSignals: false);
        Assert.Equal(0, status);
        Assert.Equal("", stderr.ToString());
        string line = Assert.Single(output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Match m = Regex.Match(line, @"^(\d+)\.(\d{6}) notify-0x10 5$");
        Assert.True(m.Success, line);
        double seconds = double.Parse($"{m.Groups[1].Value}.{m.Groups[2].Value}", System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(seconds, DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 3600, DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 3600);
        // The answer went to irq-5 with the count read, and irq-5 was not read.
        Assert.Equal(5UL, FdSnapshot.EventFdCount(irq.Handle.Fd));
        Assert.Equal(0UL, FdSnapshot.EventFdCount(notify.Handle.Fd));
        Assert.False(notify.Handle.IsClosed);
    }

    [Fact]
    public void Run_WhenStopped_PrintsWhatIsPending_AndExits0()
    {
        using var a = EventFd.Create();
        using var b = EventFd.Create();
        a.Signal(3);
        b.Signal(4);
        var output = new StringWriter { NewLine = "\n" };
        using var cancel = new CancellationTokenSource();
        cancel.Cancel(); // as a SIGTERM that arrived with both counters pending
        int status = Listener.Run([new ListenedFd(a.Handle.Fd, "a"), new ListenedFd(b.Handle.Fd, "b")], [], null,
            output, TextWriter.Null, handleSignals: false, cancel.Token);
        Assert.Equal(0, status);
        string[] lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["a 3", "b 4"], lines.Select(l => l[(l.IndexOf(' ') + 1)..]).Order());
    }

    [Fact]
    public void Run_OnADescriptorThatIsNotAnEventfd_Exits69WithOneLine()
    {
        var (read, write) = SafeFdHandle.CreatePipe();
        using (read)
        using (write)
        {
            var stderr = new StringWriter();
            int status = Listener.Run([new ListenedFd(read.Fd, "notify-0x10")], [], 1, TextWriter.Null, stderr, false);
            Assert.Equal(69, status);
            string line = Assert.Single(stderr.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith($"sharpvisor: listen: descriptor {read.Fd} (notify-0x10): ", line);
            Assert.Contains("not an eventfd", line);
        }
    }

    [Theory]
    [InlineData("notify-0x10", "must be NAME=NAME2")]
    [InlineData("notify-0x10=irq-9", "must be NAME=NAME2")]
    [InlineData("notify-0x10=notify-0x10", "must be NAME=NAME2")]
    public void Run_WithABadAnswer_Exits64(string answer, string contains)
    {
        using var a = EventFd.Create();
        using var b = EventFd.Create();
        var stderr = new StringWriter();
        int status = Listener.Run([new ListenedFd(a.Handle.Fd, "notify-0x10"), new ListenedFd(b.Handle.Fd, "irq-5")], [answer], 1,
            TextWriter.Null, stderr, false);
        Assert.Equal(64, status);
        Assert.Contains(contains, Assert.Single(stderr.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)));
    }

    [Fact]
    public void Cli_ListenWithoutTheHandshake_Exits64WithOneLine()
    {
        // The test process has no LISTEN_FDS (and must not: the descriptors would be ours).
        Assert.Null(Environment.GetEnvironmentVariable("LISTEN_FDS"));
        CliTests.Result r = CliTests.Execute("listen");
        Assert.Equal(64, r.Status);
        Assert.Contains("LISTEN_FDS is not set", Assert.Single(r.StderrLines));
    }

    [Theory]
    [InlineData("--exit-after", "0")]
    [InlineData("--exit-after", "many")]
    public void Cli_ListenWithABadOption_Exits64(string option, string value)
    {
        CliTests.Result r = CliTests.Execute("listen", option, value);
        Assert.Equal(64, r.Status);
        Assert.Contains(option, Assert.Single(r.StderrLines));
    }
}
