using Sharpvisor.Native;
using Sharpvisor.Tests.Native;
using Sharpvisor.Tests.Vmm;

namespace Sharpvisor.Tests.Guests;

/// <summary>
/// A <c>unix:</c> target between two real processes, received by an
/// implementation that is not ours: <see cref="MonoPosixReceiver"/>
/// (Mono.Posix's socket, accept4 and recvmsg with its CMSG helpers) accepts
/// the connection of a `sharpvisor` child process and takes the eventfd; the
/// kernel's count on it after the guest has run must be exact.
/// </summary>
public class UnixTargetProcessTests
{
    [Fact]
    public void NotifyLoop_IntoAMonoPosixReceiver_KernelCountIsExactly1000()
    {
        GuestBinaries.RequireBuilt();
        using var dir = new TempDir();
        using var receiver = new MonoPosixReceiver(Path.Combine(dir.Path, "notify.sock"));
        using ChildProcess child = ProcessRoundTripTests.Start(dir, [],
            "run", GuestBinaries.Guest("notify"), "--timeout", "120", "--notify", $"0x10=unix:{receiver.Path}", "--stats");
        (string payload, int[] fds) = receiver.AcceptOne(TimeSpan.FromMinutes(2));
        try
        {
            Assert.Equal("notify 0x10\n", payload);
            int fd = Assert.Single(fds);
            Assert.True(child.Wait(TimeSpan.FromMinutes(2), out ChildExit exit), "sharpvisor did not finish");
            Assert.Equal(0, exit.ShellStatus);
            Assert.Equal(1000UL, FdSnapshot.EventFdCount(fd));
            Assert.Equal(1000UL, MonoPosixReceiver.ReadCounter(fd));
            string[] stats = File.ReadAllText(Path.Combine(dir.Path, "err")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(["notify 0x10 delivered 1000", "notify 0x20 missed 1000", "notify 0x30 missed 1000"], stats);
            Assert.Contains("value 0x00000010 delivered 1000 missed 0", File.ReadAllText(Path.Combine(dir.Path, "out")));
        }
        finally
        {
            foreach (int fd in fds) MonoPosixReceiver.Close(fd);
        }
    }
}
