using System.Runtime.CompilerServices;

namespace Sharpvisor.Native;

[Flags]
public enum EventFdFlags
{
    /// <summary>Blocking, counter mode: a read returns the whole count and resets it.</summary>
    None = 0,
    /// <summary>Semaphore mode: a read returns 1 and decrements the count.</summary>
    Semaphore = 1,
    /// <summary>O_NONBLOCK on the open file description (shared with every process that holds it).</summary>
    NonBlocking = 2,
}

/// <summary>
/// A Linux eventfd(2): a 64-bit counter in the kernel that one side adds to
/// (<see cref="Signal"/>) and the other reads and resets, waking a blocked
/// reader. It is how a vCPU thread tells a device thread, or another process,
/// that the guest has work for it, at the price of one system call.
/// </summary>
/// <example>
/// <code>
/// using var kick = EventFd.Create();
/// var device = new Thread(() => Console.WriteLine($"woken with count {kick.Read()}"));
/// device.Start();
/// kick.Signal();       // the count becomes 1; the device thread wakes
/// device.Join();
/// </code>
/// </example>
public sealed class EventFd : IDisposable
{
    private readonly SafeFdHandle _handle;

    private EventFd(SafeFdHandle handle, EventFdFlags flags)
    {
        _handle = handle;
        Flags = flags;
    }

    /// <summary>Mode and blocking flag as the kernel holds them.</summary>
    public EventFdFlags Flags { get; }

    /// <summary>The owned descriptor (close-on-exec unless it was inherited otherwise).</summary>
    public SafeFdHandle Handle => _handle;

    /// <summary>Creates an eventfd, close-on-exec, blocking and in counter mode unless asked otherwise.</summary>
    public static EventFd Create(EventFdFlags flags = EventFdFlags.None, uint initialValue = 0)
    {
        int kflags = Interop.EFD_CLOEXEC;
        if ((flags & EventFdFlags.Semaphore) != 0) kflags |= Interop.EFD_SEMAPHORE;
        if ((flags & EventFdFlags.NonBlocking) != 0) kflags |= Interop.EFD_NONBLOCK;
        int fd = Interop.EventFd(initialValue, kflags);
        if (fd < 0) ThrowHelper.ThrowLastErrno("eventfd");
        return new EventFd(new SafeFdHandle(fd, ownsHandle: true), flags);
    }

    /// <summary>
    /// Takes ownership of descriptor <paramref name="fd"/>, inherited from the
    /// parent process, after checking with the kernel that it is open and is an
    /// eventfd. Its flags (blocking, close-on-exec, mode) are read, never changed.
    /// </summary>
    /// <exception cref="ErrnoException">EBADF if it is not open, EINVAL if it is not an eventfd.</exception>
    public static EventFd FromInherited(int fd)
    {
        FdInfo info = FdInfo.Read(fd, "EventFd.FromInherited");
        if (!info.IsEventFd)
            ThrowHelper.ThrowErrno("EventFd.FromInherited", Errno.EINVAL, $"descriptor {fd} is {info.Kind}, not an eventfd");
        var flags = EventFdFlags.None;
        if (info.NonBlocking) flags |= EventFdFlags.NonBlocking;
        if (info.Semaphore) flags |= EventFdFlags.Semaphore;
        return new EventFd(new SafeFdHandle(fd, ownsHandle: true), flags);
    }

    /// <summary>
    /// A duplicate (close-on-exec) of descriptor <paramref name="fd"/>, which
    /// someone else owns (a caller passed it down, <c>--notify 0x10=fd:3</c>),
    /// after checking with the kernel that it is an eventfd. The original is
    /// left open and untouched. The duplicate shares its open file
    /// description: its counter, and its flags, which are read, never changed
    /// (a blocking eventfd stays blocking, so read it only when poll says it
    /// is readable, or it may block).
    /// </summary>
    /// <exception cref="ErrnoException">EBADF if it is not open, EINVAL if it is not an eventfd.</exception>
    public static EventFd DuplicateFrom(int fd)
    {
        const string op = "EventFd.DuplicateFrom";
        int dup = fd < 0 ? -1 : Interop.Fcntl(fd, Interop.F_DUPFD_CLOEXEC, 0);
        if (dup < 0)
        {
            Errno e = fd < 0 ? Errno.EBADF : Interop.LastErrno;
            ThrowHelper.ThrowErrno(op, e, e == Errno.EBADF ? $"descriptor {fd} is not open" : null);
        }
        var handle = new SafeFdHandle(dup, ownsHandle: true);
        try
        {
            // The duplicate, not fd itself, is what we check: fd could be
            // closed and its number reused between a check and a dup.
            FdInfo info = FdInfo.Read(dup, op);
            if (!info.IsEventFd)
                ThrowHelper.ThrowErrno(op, Errno.EINVAL, $"descriptor {fd} is {info.Kind}, not an eventfd");
            var flags = EventFdFlags.None;
            if (info.NonBlocking) flags |= EventFdFlags.NonBlocking;
            if (info.Semaphore) flags |= EventFdFlags.Semaphore;
            return new EventFd(handle, flags);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Adds <paramref name="count"/> to the counter, waking a reader. Always
    /// delivers: if the counter is full (2^64-2) it waits for a reader to make room.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe void Signal(ulong count = 1)
    {
        if (Interop.Write(_handle, &count, sizeof(ulong)) != sizeof(ulong)) SignalSlow(count);
    }

    /// <summary>
    /// One write(2) of 1 to the descriptor's number, through the very code the
    /// notify path writes with (<see cref="WriteOne"/>): no SafeHandle
    /// reference count around the call, so the caller must keep this EventFd
    /// undisposed meanwhile. For the baseline of <c>bench notify</c>'s
    /// vCPU-side cost, which must not be slower than what it is compared
    /// with. False if the write failed.
    /// </summary>
    public bool SignalRaw() => WriteOne((int)_handle.DangerousGetHandle());

    // Journey: eventfd-write
    /// <summary>
    /// Adds one to the eventfd with descriptor number <paramref name="fd"/>:
    /// the notify path's write (EventfdMap), on a number the caller keeps
    /// open. False if not delivered. Never throws.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe bool WriteOne(int fd)
    {
        // SAFETY: the kernel reads 8 bytes of a local. The number is not a
        // SafeHandle, so that it stays open is the caller's invariant: the
        // map's entries hold their duplicate until the grace period after
        // their removal. A number closed early is the hazard (it could name
        // another file by now), not memory.
        ulong one = 1;
        return Interop.Write(fd, &one, sizeof(ulong)) == sizeof(ulong) || WriteOneSlow(fd);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static unsafe bool WriteOneSlow(int fd)
    {
        // EINTR: retry. EAGAIN: a non-blocking eventfd whose counter is full;
        // the notification is not delivered, which the caller sees as a miss.
        ulong one = 1;
        while (Interop.LastErrno == Errno.EINTR)
            if (Interop.Write(fd, &one, sizeof(ulong)) == sizeof(ulong)) return true;
        return false;
    }

    /// <summary>Adds to the counter unless that would block (counter full on a non-blocking eventfd).</summary>
    public unsafe bool TrySignal(ulong count = 1)
    {
        while (true)
        {
            if (Interop.Write(_handle, &count, sizeof(ulong)) == sizeof(ulong)) return true;
            Errno e = Interop.LastErrno;
            if (e == Errno.EAGAIN) return false;
            if (e != Errno.EINTR) ThrowHelper.ThrowErrno("write(eventfd)", e);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void SignalSlow(ulong count)
    {
        // The fast path failed: EINTR (retry), EAGAIN on a full non-blocking
        // counter (wait until writable), anything else is a real error.
        while (!TrySignal(count)) WaitFor(Interop.POLLOUT, -1, default);
    }

    /// <summary>Blocks until the counter is nonzero, then reads it (counter mode: all of it, reset to 0; semaphore mode: 1).</summary>
    public ulong Read()
    {
        while (true)
        {
            if (ReadOnce(out ulong value)) return value;
            WaitFor(Interop.POLLIN, -1, default); // non-blocking descriptor: wait, then read again
        }
    }

    /// <summary>Like <see cref="Read()"/>, but gives up when <paramref name="cancellationToken"/> is cancelled.</summary>
    public ulong Read(CancellationToken cancellationToken)
    {
        TryRead(out ulong value, Timeout.InfiniteTimeSpan, cancellationToken);
        return value;
    }

    /// <summary>
    /// Reads the counter if it is nonzero, without blocking. On a blocking
    /// eventfd this polls first, then reads: another reader of the same
    /// eventfd could take the count between the two, so give each eventfd one
    /// reader (the normal use) or make it <see cref="EventFdFlags.NonBlocking"/>.
    /// </summary>
    public unsafe bool TryRead(out ulong value)
    {
        if ((Flags & EventFdFlags.NonBlocking) == 0 && !WaitFor(Interop.POLLIN, 0, default))
        {
            value = 0;
            return false;
        }
        return ReadOnce(out value);
    }

    /// <summary>
    /// Waits up to <paramref name="timeout"/> for a nonzero counter and reads
    /// it. Returns false on timeout; throws OperationCanceledException if cancelled.
    /// </summary>
    public bool TryRead(out ulong value, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        int timeoutMs = Poll.ToMilliseconds(timeout);
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        while (true)
        {
            int left = timeoutMs < 0 ? -1 : Poll.Remaining(start, timeoutMs);
            if (!WaitFor(Interop.POLLIN, left, cancellationToken))
            {
                value = 0;
                return false;
            }
            if (TryRead(out value)) return true;
        }
    }

    /// <summary>
    /// Waits up to <paramref name="timeout"/> until the counter is nonzero,
    /// without reading it. Throws OperationCanceledException if cancelled.
    /// </summary>
    public bool Wait(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        WaitFor(Interop.POLLIN, Poll.ToMilliseconds(timeout), cancellationToken);

    private unsafe bool ReadOnce(out ulong value)
    {
        ulong v;
        while (true)
        {
            if (Interop.Read(_handle, &v, sizeof(ulong)) == sizeof(ulong))
            {
                value = v;
                return true;
            }
            Errno e = Interop.LastErrno;
            if (e == Errno.EAGAIN) { value = 0; return false; }
            if (e != Errno.EINTR) ThrowHelper.ThrowErrno("read(eventfd)", e);
        }
    }

    private bool WaitFor(short events, int timeoutMs, CancellationToken cancellationToken) =>
        Poll.WaitOne(_handle, events, timeoutMs, cancellationToken, "poll(eventfd)");

    /// <summary>
    /// The counter as the kernel shows it (<c>/proc/self/fdinfo</c>), without
    /// reading or resetting it: for watching another process catch up with
    /// what was written. Slow (a file read); not for a hot path.
    /// </summary>
    public ulong PeekCount()
    {
        bool addedRef = false;
        try
        {
            _handle.DangerousAddRef(ref addedRef);
            return FdInfo.Read(_handle.Fd, "EventFd.PeekCount").Count;
        }
        finally
        {
            if (addedRef) _handle.DangerousRelease();
        }
    }

    public void Dispose() => _handle.Dispose();
}
