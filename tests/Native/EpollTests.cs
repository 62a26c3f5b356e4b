using Sharpvisor.Native;

namespace Sharpvisor.Tests.Native;

public class EpollTests
{
    [Fact]
    public void Wait_ReportsTheTokenOfEachReadyEventFd()
    {
        using var epoll = new Epoll();
        using var a = EventFd.Create();
        using var b = EventFd.Create();
        using var c = EventFd.Create();
        epoll.Add(a.Handle, 10);
        epoll.Add(b.Handle, 20);
        epoll.Add(c.Handle, 30);
        b.Signal();
        c.Signal();
        Span<EpollReady> ready = stackalloc EpollReady[8];
        int n = epoll.Wait(ready, 1000);
        Assert.Equal([20UL, 30UL], ready[..n].ToArray().Select(r => r.Token).Order());
        Assert.All(ready[..n].ToArray(), r => Assert.True(r.Readable));
    }

    [Fact]
    public void Wait_TimesOut_WithNothingReady()
    {
        using var epoll = new Epoll();
        using var a = EventFd.Create();
        epoll.Add(a.Handle, 1);
        Span<EpollReady> ready = stackalloc EpollReady[4];
        Assert.Equal(0, epoll.Wait(ready, 20));
    }

    [Fact]
    public void Remove_StopsReporting()
    {
        using var epoll = new Epoll();
        using var a = EventFd.Create();
        epoll.Add(a.Handle, 1);
        epoll.Remove(a.Handle);
        a.Signal();
        Span<EpollReady> ready = stackalloc EpollReady[4];
        Assert.Equal(0, epoll.Wait(ready, 0));
    }

    [Fact]
    public void Add_Twice_IsEexist()
    {
        using var epoll = new Epoll();
        using var a = EventFd.Create();
        epoll.Add(a.Handle, 1);
        var e = Assert.Throws<ErrnoException>(() => epoll.Add(a.Handle, 2));
        Assert.Equal(Errno.EEXIST, e.Errno);
    }
}
