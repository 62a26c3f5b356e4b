using System.Diagnostics;
using Sharpvisor.Native;

namespace Sharpvisor.Tests.Native;

public class EventFdPollSetTests
{
    [Fact]
    public void Wait_ReturnsTheReadableOnesAsBits()
    {
        using var a = EventFd.Create();
        using var b = EventFd.Create();
        using var c = EventFd.Create();
        using var set = new EventFdPollSet([a.Handle, b.Handle, c.Handle]);
        Assert.Equal(0UL, set.Ready());
        b.Signal();
        c.Signal(3);
        Assert.Equal(0b110UL, set.Wait(-1));
        Assert.True(set.TryRead(2, out ulong count));
        Assert.Equal(3UL, count);
        Assert.Equal(0b010UL, set.Ready());
    }

    [Fact]
    public void Wait_WithATimeout_ReturnsZeroAfterIt()
    {
        using var a = EventFd.Create();
        using var set = new EventFdPollSet([a.Handle]);
        var sw = Stopwatch.StartNew();
        Assert.Equal(0UL, set.Wait(20_000_000));
        Assert.True(sw.ElapsedMilliseconds >= 19, $"{sw.ElapsedMilliseconds} ms");
    }

    [Fact]
    public void Wait_WakesWhenAnotherThreadSignals()
    {
        using var a = EventFd.Create();
        using var set = new EventFdPollSet([a.Handle]);
        var signaller = new Thread(() => { Thread.Sleep(50); a.Signal(); });
        signaller.Start();
        Assert.Equal(1UL, set.Wait(60_000_000_000));
        signaller.Join();
    }

    [Fact]
    public void TryRead_OnAnEmptyNonBlockingEventFd_IsFalse()
    {
        using var a = EventFd.Create(EventFdFlags.NonBlocking);
        using var set = new EventFdPollSet([a.Handle]);
        Assert.False(set.TryRead(0, out _));
    }

    [Fact]
    public void TheSetKeepsItsHandlesOpen_UntilDisposed()
    {
        var a = EventFd.Create();
        int fd = a.Handle.Fd;
        var set = new EventFdPollSet([a.Handle]);
        a.Dispose(); // the owner lets go, but the set still holds a reference
        Assert.Contains("eventfd-count:", FdSnapshot.Info(fd));
        Assert.Equal(0UL, set.Ready());
        set.Dispose(); // the last reference: now the descriptor is closed
    }

    [Fact]
    public void DuplicateFrom_ChecksTheKindAndLeavesTheOriginalAlone()
    {
        using var a = EventFd.Create(EventFdFlags.NonBlocking);
        int flagsBefore = FdSnapshot.Flags(a.Handle.Fd);
        using (var dup = EventFd.DuplicateFrom(a.Handle.Fd))
        {
            Assert.NotEqual(a.Handle.Fd, dup.Handle.Fd);
            Assert.Equal(EventFdFlags.NonBlocking, dup.Flags);
            dup.Signal(2);
        }
        Assert.Equal(2UL, FdSnapshot.EventFdCount(a.Handle.Fd)); // same counter, original still open
        Assert.Equal(flagsBefore, FdSnapshot.Flags(a.Handle.Fd));

        var (r, w) = SafeFdHandle.CreatePipe();
        using (r)
        using (w)
        {
            var e = Assert.Throws<ErrnoException>(() => EventFd.DuplicateFrom(r.Fd));
            Assert.Equal(Errno.EINVAL, e.Errno);
            Assert.Contains("pipe:", e.Message);
        }
        Assert.Equal(Errno.EBADF, Assert.Throws<ErrnoException>(() => EventFd.DuplicateFrom(-1)).Errno);
        Assert.Equal(Errno.EBADF, Assert.Throws<ErrnoException>(() => EventFd.DuplicateFrom(1_000_000)).Errno);
    }
}
