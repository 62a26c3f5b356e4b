using System.Diagnostics;

namespace Sharpvisor.Native;

/// <summary>poll(2) with EINTR retried against the time that is left.</summary>
internal static class Poll
{
    /// <summary>
    /// Polls <paramref name="fds"/>; a negative timeout waits for ever. A signal
    /// that interrupts the wait restarts it with the remaining time, not the
    /// whole timeout, so a signal storm cannot stretch a wait indefinitely.
    /// </summary>
    internal static unsafe int Wait(Interop.PollFd* fds, int count, int timeoutMs, string operation = "poll")
    {
        long start = timeoutMs > 0 ? Stopwatch.GetTimestamp() : 0;
        int remaining = timeoutMs;
        while (true)
        {
            int r = Interop.Poll(fds, (nuint)count, remaining);
            if (r >= 0) return r;
            Errno e = Interop.LastErrno;
            if (e != Errno.EINTR) ThrowHelper.ThrowErrno(operation, e);
            if (timeoutMs > 0) remaining = Remaining(start, timeoutMs);
        }
    }

    /// <summary>
    /// Waits until <paramref name="handle"/> has <paramref name="events"/>, up
    /// to <paramref name="timeoutMs"/> (negative: for ever). True if it has.
    /// Cancellation wakes the poll through a second eventfd, so that a
    /// cancelled wait returns at once (with OperationCanceledException) rather
    /// than at the next time slice.
    /// </summary>
    internal static unsafe bool WaitOne(SafeFdHandle handle, short events, int timeoutMs, CancellationToken cancellationToken, string operation)
    {
        bool addedRef = false;
        try
        {
            handle.DangerousAddRef(ref addedRef);
            var fds = stackalloc Interop.PollFd[2];
            fds[0] = new Interop.PollFd { Fd = handle.Fd, Events = events };
            if (!cancellationToken.CanBeCanceled)
                return Wait(fds, 1, timeoutMs, operation) > 0;
            cancellationToken.ThrowIfCancellationRequested();
            using var wake = EventFd.Create();
            using var reg = cancellationToken.UnsafeRegister(static w => ((EventFd)w!).TrySignal(), wake);
            fds[1] = new Interop.PollFd { Fd = wake.Handle.Fd, Events = Interop.POLLIN };
            int n = Wait(fds, 2, timeoutMs, operation);
            cancellationToken.ThrowIfCancellationRequested();
            return n > 0 && fds[0].REvents != 0;
        }
        finally
        {
            if (addedRef) handle.DangerousRelease();
        }
    }

    /// <summary>Milliseconds left of <paramref name="timeoutMs"/> since <paramref name="start"/>, rounded up.</summary>
    internal static int Remaining(long start, int timeoutMs)
    {
        double elapsedMs = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        return (int)Math.Max(0, Math.Ceiling(timeoutMs - elapsedMs));
    }

    /// <summary>Converts a TimeSpan timeout to poll's milliseconds (infinite is -1), rounding up.</summary>
    internal static int ToMilliseconds(TimeSpan timeout)
    {
        if (timeout == Timeout.InfiniteTimeSpan) return -1;
        ArgumentOutOfRangeException.ThrowIfLessThan(timeout, TimeSpan.Zero);
        return (int)Math.Min(int.MaxValue, Math.Ceiling(timeout.TotalMilliseconds));
    }
}
