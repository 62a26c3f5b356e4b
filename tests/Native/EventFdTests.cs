using System.Diagnostics;
using Sharpvisor.Native;

namespace Sharpvisor.Tests.Native;

public class EventFdTests
{
    private const int O_NONBLOCK = 0x800, FD_CLOEXEC_FLAG = 0x80000;

    [Fact]
    public void Create_Default_IsBlockingCounterModeCloseOnExec_PerKernel()
    {
        using var efd = EventFd.Create();
        int fd = efd.Handle.Fd;
        Assert.Contains("eventfd-count:", FdSnapshot.Info(fd));
        int flags = FdSnapshot.Flags(fd);
        Assert.Equal(0, flags & O_NONBLOCK);
        Assert.NotEqual(0, flags & FD_CLOEXEC_FLAG);
        Assert.Equal(EventFdFlags.None, efd.Flags);
    }

    [Fact]
    public void Signal_AddsToKernelCounter()
    {
        using var efd = EventFd.Create();
        efd.Signal();
        efd.Signal(41);
        Assert.Equal(42UL, FdSnapshot.EventFdCount(efd.Handle.Fd));
    }

    [Fact]
    public void SignalRaw_AddsOne_LikeTheNotifyPath()
    {
        using var efd = EventFd.Create();
        Assert.True(efd.SignalRaw());
        Assert.True(efd.SignalRaw());
        Assert.Equal(2UL, FdSnapshot.EventFdCount(efd.Handle.Fd));
    }

    [Fact]
    public void Read_InCounterMode_ReturnsWholeCountAndResets()
    {
        using var efd = EventFd.Create();
        efd.Signal(3);
        efd.Signal(4);
        Assert.Equal(7UL, efd.Read());
        Assert.Equal(0UL, FdSnapshot.EventFdCount(efd.Handle.Fd));
    }

    [Fact]
    public void Read_InSemaphoreMode_ReturnsOneEachTime()
    {
        using var efd = EventFd.Create(EventFdFlags.Semaphore);
        efd.Signal(3);
        Assert.Equal(1UL, efd.Read());
        Assert.Equal(1UL, efd.Read());
        Assert.Equal(1UL, FdSnapshot.EventFdCount(efd.Handle.Fd));
    }

    [Fact]
    public void Read_BlocksUntilAnotherThreadSignals()
    {
        using var efd = EventFd.Create();
        ulong got = 0;
        var reader = TaskAssert.OnThread(() => got = efd.Read());
        TaskAssert.StillBlocked(reader, 50);
        efd.Signal(5);
        TaskAssert.Completes(reader);
        Assert.Equal(5UL, got);
    }

    [Fact]
    public void TryRead_WhenZero_ReturnsFalseWithoutBlocking()
    {
        using var efd = EventFd.Create();
        Assert.False(efd.TryRead(out ulong v));
        Assert.Equal(0UL, v);
        efd.Signal(2);
        Assert.True(efd.TryRead(out v));
        Assert.Equal(2UL, v);
    }

    [Fact]
    public void TryRead_OnNonBlockingEventFd_UsesEagainAsState()
    {
        using var efd = EventFd.Create(EventFdFlags.NonBlocking);
        Assert.NotEqual(0, FdSnapshot.Flags(efd.Handle.Fd) & O_NONBLOCK);
        Assert.False(efd.TryRead(out _));
        efd.Signal();
        Assert.True(efd.TryRead(out ulong v));
        Assert.Equal(1UL, v);
    }

    [Fact]
    public void TrySignal_WhenCounterFullOnNonBlocking_ReturnsFalse()
    {
        // The counter tops out at 2^64 - 2; a non-blocking writer then gets EAGAIN.
        using var efd = EventFd.Create(EventFdFlags.NonBlocking);
        Assert.True(efd.TrySignal(ulong.MaxValue - 1));
        Assert.False(efd.TrySignal(1));
        Assert.True(efd.TryRead(out ulong v));
        Assert.Equal(ulong.MaxValue - 1, v);
        Assert.True(efd.TrySignal(1));
    }

    [Fact]
    public void Wait_TimesOut_WhenNothingArrives()
    {
        using var efd = EventFd.Create();
        var sw = Stopwatch.StartNew();
        Assert.False(efd.Wait(TimeSpan.FromMilliseconds(30)));
        Assert.True(sw.ElapsedMilliseconds >= 25, $"returned after {sw.ElapsedMilliseconds} ms");
    }

    [Fact]
    public void Wait_DoesNotConsumeTheCount()
    {
        using var efd = EventFd.Create();
        efd.Signal(9);
        Assert.True(efd.Wait(TimeSpan.Zero));
        Assert.Equal(9UL, efd.Read());
    }

    [Fact]
    public void TryReadWithTimeout_WhenCancelled_ThrowsPromptly()
    {
        using var efd = EventFd.Create();
        using var cts = new CancellationTokenSource();
        var reader = TaskAssert.OnThread(() => efd.TryRead(out _, Timeout.InfiniteTimeSpan, cts.Token));
        Thread.Sleep(30);
        cts.Cancel();
        var ex = Assert.Throws<AggregateException>(() => reader.Wait(TimeSpan.FromSeconds(10)));
        Assert.IsAssignableFrom<OperationCanceledException>(ex.InnerException);
    }

    [Fact]
    public void FromInherited_OfEventFd_ReadsItsFlagsWithoutChangingThem()
    {
        using var original = EventFd.Create(EventFdFlags.NonBlocking | EventFdFlags.Semaphore);
        using SafeFdHandle dup = original.Handle.Duplicate();
        int fd = dup.Fd;
        dup.SetHandleAsInvalid(); // ownership moves to the EventFd below
        int flagsBefore = FdSnapshot.Flags(fd);
        using var inherited = EventFd.FromInherited(fd);
        Assert.Equal(EventFdFlags.NonBlocking | EventFdFlags.Semaphore, inherited.Flags);
        Assert.Equal(flagsBefore, FdSnapshot.Flags(fd));
        original.Signal(2);
        Assert.True(inherited.TryRead(out ulong v));
        Assert.Equal(1UL, v); // semaphore mode, shared counter
    }

    [Fact]
    public void FromInherited_OfPipe_IsRefusedWithEinval()
    {
        var (r, w) = SafeFdHandle.CreatePipe();
        using (r)
        using (w)
        {
            var e = Assert.Throws<ErrnoException>(() => EventFd.FromInherited(r.Fd));
            Assert.Equal(Errno.EINVAL, e.Errno);
            Assert.Contains("pipe:", e.Message);
            Assert.True(FdSnapshot.IsOpen(r.Fd)); // refused, not taken
        }
    }

    [Fact]
    public void FromInherited_OfClosedDescriptor_IsRefusedWithEbadf()
    {
        var e = Assert.Throws<ErrnoException>(() => EventFd.FromInherited(999_999));
        Assert.Equal(Errno.EBADF, e.Errno);
    }

    [Fact]
    public void Signal_AfterDispose_ThrowsObjectDisposed()
    {
        var efd = EventFd.Create();
        efd.Dispose();
        Assert.Throws<ObjectDisposedException>(() => efd.Signal());
    }
}

[Collection(Serial.Name)]
public class EventFdLifetimeTests
{
    [Fact]
    public void Dispose_ClosesTheDescriptor_Once()
    {
        var efd = EventFd.Create();
        int fd = efd.Handle.Fd;
        Assert.True(FdSnapshot.IsOpen(fd));
        efd.Dispose();
        Assert.False(FdSnapshot.IsOpen(fd));
        efd.Dispose();
    }

    [Fact]
    public void CancelledWait_LeaksNoDescriptor()
    {
        using var efd = EventFd.Create();
        var before = FdSnapshot.Open();
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(20));
        Assert.ThrowsAny<OperationCanceledException>(() => efd.Wait(Timeout.InfiniteTimeSpan, cts.Token));
        Assert.Equal(before, FdSnapshot.Open());
    }
}
