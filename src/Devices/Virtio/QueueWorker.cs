using System.Runtime.InteropServices;
using Sharpvisor.Devices.Virtio.Queues;
using Sharpvisor.Native;

namespace Sharpvisor.Devices.Virtio;

/// <summary>What a queue's thread needs from its transport.</summary>
internal interface IQueueOwner
{
    IDeviceHost Host { get; }
    VirtioDevice Device { get; }
    string Name { get; }

    /// <summary>DRIVER_OK and FEATURES_OK are set, NEEDS_RESET and FAILED are not.</summary>
    bool Serving { get; }

    ulong Negotiated { get; }

    void EnterBusy();
    void LeaveBusy();

    /// <summary>Sets InterruptStatus bit 0 and raises the interrupt.</summary>
    void UsedBuffers();

    /// <summary>DEVICE_NEEDS_RESET: the status bit, InterruptStatus bit 1, the interrupt and one report line.</summary>
    void NeedsReset(string detail);
}

/// <summary>
/// One virtqueue's host thread: it sleeps on the queue's doorbell (and a stop
/// eventfd, and the device's wake source if it has one), then serves every
/// chain the driver has made available: validates it whole, hands it to the
/// device, publishes the used entry and raises the interrupt as the driver
/// asked.
/// </summary>
/// <remarks>
/// The gate: the thread holds it while it serves, and the transport takes it
/// to detach the queue (a reset, QueueReady = 0, QueueReset), after setting
/// <see cref="_halting"/> so a long batch stops at the next chain. When
/// <see cref="Detach"/> returns, the thread holds no request and will not
/// touch the rings again until a new <see cref="Attach"/>.
/// </remarks>
internal sealed class QueueWorker : IDisposable
{
    private readonly IQueueOwner _owner;
    private readonly int _index;
    private readonly EventFd _stop = EventFd.Create(EventFdFlags.NonBlocking);
    private readonly Lock _gate = new();
    private readonly DescriptorChain _chain;
    private SplitQueue? _queue; // under _gate
    private volatile bool _halting;
    private Thread? _thread;

    public QueueWorker(IQueueOwner owner, int index)
    {
        _owner = owner;
        _index = index;
        _chain = new DescriptorChain(owner.Host.Ram, SplitRing.MaxSize);
    }

    /// <summary>The eventfd a notification of this queue signals (blocking, counter mode; read only by this thread).</summary>
    public EventFd Doorbell { get; } = EventFd.Create();

    public string ThreadName => $"{_owner.Name}-q{_index}";

    private int _threadId;

    /// <summary>The thread's kernel id once it runs (0 before): what a benchmark reads its CPU clock by.</summary>
    public int ThreadId => Volatile.Read(ref _threadId);

    public void Start()
    {
        if (_thread != null) return;
        _thread = new Thread(Run) { Name = ThreadName, IsBackground = true };
        _thread.Start();
    }

    /// <summary>Gives the thread a ready queue to serve (vCPU thread, under the transport's lock).</summary>
    public void Attach(SplitQueue queue)
    {
        lock (_gate) _queue = queue;
    }

    /// <summary>Takes the queue away; returns once the thread holds no request (see the remarks).</summary>
    public void Detach()
    {
        _halting = true;
        lock (_gate) _queue = null;
        _halting = false;
    }

    /// <summary>Wakes the thread to look at the available ring (DRIVER_OK, a queue made ready).</summary>
    public void Kick() => Doorbell.Signal();

    /// <summary>True if a notification is waiting for the thread to take it (a zero-timeout poll).</summary>
    public bool DoorbellPending
    {
        get
        {
            try
            {
                return Doorbell.Wait(TimeSpan.Zero);
            }
            catch (ObjectDisposedException)
            {
                return false; // disposed meanwhile: a stopped queue has nothing pending
            }
        }
    }

    // Journey: virtqueue-worker
    /// <summary>
    /// A queue's own thread, lguest's "each virtqueue in a separate thread":
    /// it sleeps in one poll on the queue's doorbell eventfd (the one the
    /// vCPU's map lookup writes) and a stop eventfd, and when the doorbell
    /// rings it takes every chain the driver made available, serves it, and
    /// hands it back. The vCPU meanwhile runs guest code: a doorbell costs it
    /// one map lookup and one write(2).
    /// </summary>
    private void Run()
    {
        Volatile.Write(ref _threadId, CpuTime.CurrentThreadId());
        EventFd? wake = _owner.Device.WakeSource(_index);
        SafeHandle[] handles = wake == null ? [Doorbell.Handle, _stop.Handle] : [Doorbell.Handle, _stop.Handle, wake.Handle];
        EventFdPollSet set;
        try
        {
            set = new EventFdPollSet(handles);
        }
        catch (Exception e)
        {
            _owner.Host.Report($"{ThreadName}: cannot wait on the doorbell: {e.Message}");
            return;
        }
        using (set)
        {
            while (true)
            {
                ulong ready;
                try
                {
                    ready = set.Wait(-1);
                }
                catch (Exception e)
                {
                    _owner.Host.Report($"{ThreadName}: waiting on the doorbell failed, the queue stops: {e.Message}");
                    return;
                }
                if ((ready & 2) != 0) return;
                if (ready == 0) continue;
                // Busy before the doorbell is read: from the guest's notify to
                // the interrupt, either the eventfd is readable or this count is
                // up, so the VM never sees the device idle in between.
                _owner.EnterBusy();
                try
                {
                    if ((ready & 1) != 0) set.TryRead(0, out _);
                    if ((ready & 4) != 0) set.TryRead(2, out _);
                    lock (_gate) ServeAvailable();
                }
                catch (Exception e)
                {
                    // A device bug, not a guest's doing; the guest still sees a
                    // device that needs a reset rather than a dead host thread.
                    _owner.NeedsReset($"internal error serving queue {_index}: {e.GetType().Name}: {e.Message}");
                }
                finally
                {
                    _owner.LeaveBusy();
                }
            }
        }
    }

    /// <summary>Serves every available chain (under the gate).</summary>
    private void ServeAvailable()
    {
        SplitQueue? q = _queue;
        if (q == null || !_owner.Serving) return;
        GuestMemory ram = _owner.Host.Ram;
        ushort oldUsed = q.UsedIdx;
        string? fault = null;
        while (!_halting && _owner.Serving)
        {
            if (!q.TryReadAvailIdx(out ushort availIdx))
            {
                fault = $"queue {_index}: available ring at 0x{q.Layout.Avail:x} lies outside RAM";
                break;
            }
            int pending = (ushort)(availIdx - q.LastAvail);
            if (pending > q.Size)
            {
                fault = $"queue {_index}: available idx moved from {q.LastAvail} to {availIdx}, more than the queue size {q.Size}";
                break;
            }
            if (pending == 0)
            {
                // With EVENT_IDX, ask for the next notification, then look once
                // more: the driver may have added a chain before it saw the ask.
                if (!q.EventIdx) break;
                if (!q.TryArmNotification() || !q.TryReadAvailIdx(out ushort again))
                {
                    fault = $"queue {_index}: used ring at 0x{q.Layout.Used:x} lies outside RAM";
                    break;
                }
                if (again == availIdx) break;
                continue;
            }
            if (!q.TryReadNextHead(out ushort head))
            {
                fault = $"queue {_index}: available ring at 0x{q.Layout.Avail:x} lies outside RAM";
                break;
            }
            ChainFault cf = ChainWalker.Walk(ram, q.Layout, head, q.Indirect, _chain, out string? detail);
            if (cf != ChainFault.None)
            {
                fault = $"queue {_index}: {detail}";
                break;
            }
            ServeResult result = _owner.Device.Serve(_index, _chain, _owner.Negotiated);
            if (result.Outcome == ServeOutcome.Deferred) break;
            if (result.Outcome == ServeOutcome.Malformed)
            {
                fault = $"queue {_index}: request at head {head}: {result.Fault}";
                break;
            }
            uint written = Math.Min(result.Written, _chain.WritableLength);
            ReportWritten(written);
            if (!q.TryPublish(head, written))
            {
                fault = $"queue {_index}: used ring at 0x{q.Layout.Used:x} lies outside RAM";
                break;
            }
            q.Advance();
            // With EVENT_IDX the driver names the entry it wants the interrupt
            // at, and one that asks for it midway through its requests goes on
            // with the first while this thread serves the rest: so look after
            // each entry, not only when the ring runs dry. (Without it the
            // flags can only say "now" or "never", and one interrupt per round
            // serves them.)
            if (q.EventIdx && q.WantsInterrupt(oldUsed))
            {
                _owner.UsedBuffers();
                oldUsed = q.UsedIdx;
            }
        }
        if (q.WantsInterrupt(oldUsed)) _owner.UsedBuffers();
        if (fault != null) _owner.NeedsReset(fault);
        else _owner.Device.Served(_index);
    }

    /// <summary>Tells the VM which guest bytes the device wrote: the first <paramref name="written"/> writable bytes.</summary>
    private void ReportWritten(uint written)
    {
        foreach (BufferSegment s in _chain.Writable)
        {
            if (written == 0) break;
            uint n = Math.Min(written, s.Length);
            if (n != 0) _owner.Host.CodeWritten(s.Address, n);
            written -= n;
        }
    }

    /// <summary>Stops the thread and waits for it; then frees the eventfds.</summary>
    public void Dispose()
    {
        _halting = true;
        if (_thread != null)
        {
            _stop.Signal();
            _thread.Join();
            _thread = null;
        }
        _stop.Dispose();
        Doorbell.Dispose();
    }
}
