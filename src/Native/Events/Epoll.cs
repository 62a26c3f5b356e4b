using System.Runtime.InteropServices;

namespace Sharpvisor.Native;

/// <summary>One ready descriptor from <see cref="Epoll.Wait"/>: the token it was added with, and why it woke.</summary>
public readonly record struct EpollReady(ulong Token, bool Readable, bool HangUp, bool Error);

/// <summary>
/// An epoll(7) instance: waits on many descriptors at once in the kernel, so a
/// single thread can sleep on all of a VM's interrupt eventfds.
/// </summary>
public sealed class Epoll : IDisposable
{
    private readonly SafeFdHandle _handle;

    public Epoll()
    {
        int fd = Interop.EpollCreate1(Interop.EPOLL_CLOEXEC);
        if (fd < 0) ThrowHelper.ThrowLastErrno("epoll_create1");
        _handle = new SafeFdHandle(fd, ownsHandle: true);
    }

    /// <summary>Watches <paramref name="fd"/> for input; <paramref name="token"/> comes back with each wakeup.</summary>
    public unsafe void Add(SafeHandle fd, ulong token)
    {
        var ev = new Interop.EpollEvent { Events = Interop.EPOLLIN, Data = token };
        if (Interop.EpollCtl(_handle, Interop.EPOLL_CTL_ADD, fd, &ev) != 0) ThrowHelper.ThrowLastErrno("epoll_ctl(ADD)");
    }

    public unsafe void Remove(SafeHandle fd)
    {
        if (Interop.EpollCtl(_handle, Interop.EPOLL_CTL_DEL, fd, null) != 0) ThrowHelper.ThrowLastErrno("epoll_ctl(DEL)");
    }

    /// <summary>
    /// Waits up to <paramref name="timeoutMs"/> (negative: for ever) for at least one
    /// watched descriptor. EINTR restarts the wait with the time that is left.
    /// Returns how many entries of <paramref name="ready"/> were filled (0 on timeout).
    /// </summary>
    public unsafe int Wait(Span<EpollReady> ready, int timeoutMs)
    {
        int max = Math.Min(ready.Length, 64);
        if (max == 0) throw new ArgumentException("needs room for at least one event", nameof(ready));
        // SAFETY: max entries on the stack (at most 64), and epoll_wait is
        // told max, so it fills at most n <= max of them; ready has at least
        // max entries, so ready[i] for i < n is in bounds (and checked anyway).
        var events = stackalloc Interop.EpollEvent[max];
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        int remaining = timeoutMs;
        int n;
        while ((n = Interop.EpollWait(_handle, events, max, remaining)) < 0)
        {
            Errno e = Interop.LastErrno;
            if (e != Errno.EINTR) ThrowHelper.ThrowErrno("epoll_wait", e);
            if (timeoutMs > 0) remaining = Poll.Remaining(start, timeoutMs);
        }
        for (int i = 0; i < n; i++)
        {
            uint m = events[i].Events;
            ready[i] = new EpollReady(events[i].Data, (m & Interop.EPOLLIN) != 0, (m & Interop.EPOLLHUP) != 0, (m & Interop.EPOLLERR) != 0);
        }
        return n;
    }

    public void Dispose() => _handle.Dispose();
}
