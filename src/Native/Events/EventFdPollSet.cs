using System.Runtime.InteropServices;

namespace Sharpvisor.Native;

/// <summary>
/// One thread's wait on a fixed set of eventfds: a single ppoll(2) that
/// sleeps in the kernel until one of them is readable or a timeout passes.
/// A halted vCPU uses one to sleep on all of the VM's interrupt eventfds and
/// its wake eventfds at once, with nanosecond timeouts and no relay thread
/// (a relay would add a wakeup to every interrupt).
/// </summary>
/// <remarks>
/// The set holds a reference on every handle for as long as it lives, so the
/// descriptor numbers it polls and reads stay valid, and it owns its own
/// pollfd array, so waiting allocates nothing. One set per thread: ppoll
/// writes its results into the array.
/// </remarks>
/// <example>
/// <code>
/// using var irq = EventFd.Create();
/// using var stop = EventFd.Create(EventFdFlags.NonBlocking);
/// using var set = new EventFdPollSet([irq.Handle, stop.Handle]);
/// irq.Signal();
/// ulong ready = set.Wait(timeoutNanoseconds: -1);   // bit 0: irq is readable
/// if ((ready &amp; 1) != 0 &amp;&amp; set.TryRead(0, out ulong count)) Console.WriteLine(count); // 1
/// </code>
/// </example>
public sealed unsafe class EventFdPollSet : IDisposable
{
    /// <summary>Most descriptors in one set: the readable ones come back as the bits of a ulong.</summary>
    public const int MaxDescriptors = 64;

    private readonly SafeHandle[] _handles;
    private readonly bool[] _referenced;
    private Interop.PollFd* _fds;

    /// <exception cref="ArgumentException">No handles, more than <see cref="MaxDescriptors"/>, or a closed one.</exception>
    public EventFdPollSet(IReadOnlyList<SafeHandle> handles)
    {
        if (handles.Count is 0 or > MaxDescriptors)
            throw new ArgumentException($"a poll set holds 1 to {MaxDescriptors} descriptors, not {handles.Count}", nameof(handles));
        _handles = [.. handles];
        _referenced = new bool[_handles.Length];
        // SAFETY: one pollfd per handle (at most 64), ours alone: the set is
        // one thread's (class remarks), and ppoll writes only REvents of the
        // _handles.Length entries it is given. Every index below is
        // i < _handles.Length, or checked against it (TryRead).
        _fds = (Interop.PollFd*)NativeMemory.AllocZeroed((nuint)(_handles.Length * sizeof(Interop.PollFd)));
        try
        {
            for (int i = 0; i < _handles.Length; i++)
            {
                if (_handles[i].IsClosed || _handles[i].IsInvalid)
                    throw new ArgumentException($"handle {i} is closed", nameof(handles));
                _handles[i].DangerousAddRef(ref _referenced[i]);
                _fds[i] = new Interop.PollFd { Fd = (int)_handles[i].DangerousGetHandle(), Events = Interop.POLLIN };
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public int Count => _handles.Length;

    /// <summary>
    /// Sleeps until at least one descriptor is readable or
    /// <paramref name="timeoutNanoseconds"/> pass (negative: no timeout; 0:
    /// just look). Returns the readable ones as bits (bit i for handle i); 0
    /// on a timeout, and also when a signal cut the wait short, so callers
    /// loop on their own clock. A descriptor in an error state counts as
    /// readable, so the caller's read reports the error instead of the set
    /// spinning on it.
    /// </summary>
    public ulong Wait(long timeoutNanoseconds)
    {
        ObjectDisposedException.ThrowIf(_fds == null, this);
        Interop.Timespec ts;
        Interop.Timespec* timeout = null;
        if (timeoutNanoseconds >= 0)
        {
            ts = new Interop.Timespec { Sec = timeoutNanoseconds / 1_000_000_000, Nsec = timeoutNanoseconds % 1_000_000_000 };
            timeout = &ts;
        }
        int n = Interop.PPoll(_fds, (nuint)_handles.Length, timeout, null);
        if (n <= 0)
        {
            if (n < 0 && Interop.LastErrno != Errno.EINTR) ThrowHelper.ThrowLastErrno("ppoll");
            return 0;
        }
        ulong ready = 0;
        for (int i = 0; i < _handles.Length; i++)
            if (_fds[i].REvents != 0) ready |= 1UL << i;
        return ready;
    }

    /// <summary>The descriptors readable right now (a zero-timeout poll).</summary>
    public ulong Ready() => Wait(0);

    /// <summary>
    /// One read(2) of handle <paramref name="index"/>'s counter: false if it
    /// was zero on a non-blocking eventfd. On a blocking one it would sleep
    /// instead, so call it only when <see cref="Ready"/> has just said the
    /// descriptor is readable and no other reader can have emptied it since.
    /// </summary>
    public bool TryRead(int index, out ulong value)
    {
        ObjectDisposedException.ThrowIf(_fds == null, this);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)index, (uint)_handles.Length, nameof(index));
        ulong v;
        while (true)
        {
            if (Interop.Read(_fds[index].Fd, &v, sizeof(ulong)) == sizeof(ulong))
            {
                value = v;
                return true;
            }
            Errno e = Interop.LastErrno;
            if (e == Errno.EAGAIN) { value = 0; return false; }
            if (e != Errno.EINTR) ThrowHelper.ThrowErrno("read(eventfd)", e);
        }
    }

    /// <summary>Releases the handles and the pollfd array; not while another call on the set runs (one thread's set).</summary>
    public void Dispose()
    {
        if (_fds == null) return;
        for (int i = 0; i < _handles.Length; i++)
            if (_referenced[i])
            {
                _handles[i].DangerousRelease();
                _referenced[i] = false;
            }
        NativeMemory.Free(_fds);
        _fds = null;
    }
}
