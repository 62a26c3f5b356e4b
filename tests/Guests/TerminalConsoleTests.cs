using System.Text;

namespace Sharpvisor.Tests.Guests;

/// <summary>
/// A console on a terminal: `dotnet sharpvisor.dll run vecho.elf --device
/// console` on the slave of a pseudoterminal that Python's pty module makes
/// (the oracle for what a terminal does is the kernel's line discipline, not
/// our code). While the guest runs, the terminal must be raw (a DEL typed
/// reaches the guest as the byte 0x7f, not as an erased character, and the
/// terminal does not echo), Ctrl-C must still stop the VM (130), and the
/// settings must be back as they were once it has stopped.
/// </summary>
public class TerminalConsoleTests
{
    private const string Script = """
        import os, pty, select, sys, termios, time
        dll, guest = sys.argv[1], sys.argv[2]
        pid, master = pty.fork()
        if pid == 0:
            os.execvp("dotnet", ["dotnet", dll, "run", guest, "--device", "console"])
        bound = time.monotonic() + 120
        before = termios.tcgetattr(master)
        def lflag(): return termios.tcgetattr(master)[3]
        # The VM makes the terminal raw before the guest runs: wait for that.
        while lflag() & termios.ICANON:
            if time.monotonic() > bound: sys.exit("the terminal never left canonical mode")
            time.sleep(0.01)
        if lflag() & termios.ECHO: sys.exit("the terminal still echoes")
        os.write(master, b"x\x7fy\n")
        seen = b""
        while b"x\x7fy" not in seen:
            left = bound - time.monotonic()
            if left <= 0: sys.exit("no echo of x DEL y; the guest got %r" % seen)
            ready, _, _ = select.select([master], [], [], left)
            if ready: seen += os.read(master, 4096)
        os.write(master, b"\x03")  # Ctrl-C: the terminal's SIGINT
        _, status = os.waitpid(pid, 0)
        after = termios.tcgetattr(master)
        if after != before: sys.exit("the terminal was not put back: %r, was %r" % (after, before))
        print(os.waitstatus_to_exitcode(status))
        """;

    [Fact]
    public void ATerminalIsRawWhileTheGuestRuns_CtrlCStillStops_AndItIsPutBackAfter()
    {
        GuestBinaries.RequireBuilt();
        string script = Path.Combine(Path.GetTempPath(), $"sv-pty-{Guid.NewGuid():n}.py");
        File.WriteAllText(script, Script);
        try
        {
            ProcessResult r = ProcessResult.Run("python3", [script, ProcessPathTests.SharpvisorDll(), GuestBinaries.Guest("vecho")], TimeSpan.FromMinutes(3));
            Assert.True(r.Status == 0, $"status {r.Status}: {r.Stderr}");
            Assert.Equal("130", Encoding.UTF8.GetString(r.Stdout).Trim());
        }
        finally
        {
            File.Delete(script);
        }
    }
}
