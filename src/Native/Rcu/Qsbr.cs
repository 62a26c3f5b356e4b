using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Sharpvisor.Native;

// Journey: rcu
/// <summary>
/// Quiescent-state-based RCU, the flavour liburcu calls QSBR. Readers (vCPU
/// threads) read shared pointers with no lock and no atomic instruction at all;
/// instead each one says, now and then, "I hold nothing" (a quiescent state).
/// An updater publishes a new version, then calls <see cref="Synchronize"/>,
/// which returns once every thread that was reading at its start has passed a
/// quiescent state or gone offline: from then on no one can still hold the
/// old version, and it can be freed.
/// </summary>
/// <remarks>
/// The grace-period counter is 64-bit and only grows, so one phase suffices
/// (a 32-bit counter would need liburcu's two-phase flip to survive wrap).
/// A thread is quiescent for the grace period <c>g</c> when its word is 0
/// (offline) or at least <c>g</c>.
/// <para>
/// Safety of the native words. The counter (<c>_gp</c>) and the records are
/// allocated here and freed only by Dispose, which refuses while a thread is
/// registered and joins the reclaimer first: while the domain lives they are
/// valid. A record is written by one owner at a time: its thread writes
/// <see cref="QsbrRecord.Ctr"/>; updaters write <see cref="QsbrRecord.Kick"/>
/// (only ever 1, or 0 after the word caught up, so racing updaters agree);
/// the registry writes the rest under <c>_registryLock</c> while no thread owns
/// it. A record is recycled, never freed, when its thread unregisters, and the
/// QsbrThread that held it lets go of it then, so a stale one cannot write
/// its successor's word.
/// </para>
/// </remarks>
public sealed unsafe class Qsbr : IDisposable
{
    internal const int LineSize = 128;

    /// <summary>How long <see cref="Synchronize"/> spins before it kicks and blocks.</summary>
    private static readonly long SpinTicks = Stopwatch.Frequency * 2 / 1_000_000; // 2 µs
    /// <summary>How long it keeps scanning after the kick before it blocks (see WaitForReaders).</summary>
    private static readonly long PostKickSpinTicks = Stopwatch.Frequency * 2 / 1_000_000; // 2 µs
    /// <summary>
    /// How long a blocked updater waits for a wakeup before it scans again: a
    /// backstop for the stall report only, since kicked readers wake it. Longer
    /// than a scheduler tick (4 ms at HZ=250) on purpose: a timeout that ends
    /// before the next tick makes the kernel reprogram the timer device when
    /// the wait starts and again when it is cut short, which in a VM is two
    /// exits to the hypervisor, about 6 µs each on our CI machine.
    /// </summary>
    private static readonly TimeSpan WakeTimeout = TimeSpan.FromMilliseconds(10);

    /// <summary>
    /// How long the reclaimer's grace period lets readers come to a quiescent
    /// state on their own before it kicks them. Nobody waits on a deferred
    /// free, and a kick costs the kicked vCPU a wakeup of this thread (an
    /// eventfd write and, in a VM, an inter-processor interrupt), paid on the
    /// notify path. Under a stream of map updates the reclaimer ran a grace
    /// period, and kicked, every 30-50 µs; polling, it runs one or two a
    /// millisecond, for batches as large. vCPUs pass quiescent states every
    /// few hundred µs anyway, so the kick is for a guest stuck in one
    /// compiled loop.
    /// </summary>
    private static readonly long PatientKickTicks = Stopwatch.Frequency / 50; // 20 ms
    /// <summary>The reclaimer's pause between scans of the readers' words.</summary>
    private static readonly TimeSpan PatientPoll = TimeSpan.FromMilliseconds(1);

    private readonly ulong* _gp;                    // own 128-byte block: read by every reader
    private readonly Lock _registryLock = new();
    private readonly List<nint> _records = [];      // every record ever handed out (live or free)
    private readonly Stack<nint> _freeRecords = new();
    private readonly HashSet<QsbrThread> _threads = [];
    private readonly Lock _gpLock = new();          // one grace period at a time
    private readonly EventFd _wake = EventFd.Create(EventFdFlags.NonBlocking); // kicked readers -> the one waiting updater
    private nint[] _snapshot = [];                   // reused under _gpLock
    private nint[] _reclaimSnapshot = [];            // the reclaimer's own
    private long _gracePeriods;
    private bool _disposed;

    private readonly object _deferLock = new(); // Monitor: the reclaimer and Barrier wait on it
    private List<Deferred> _deferred = [], _spare = []; // the queue, and the reclaimer's last batch for reuse
    private long _deferredQueued, _deferredDone;
    private Thread? _reclaimer;
    private Exception? _reclaimError;

    public Qsbr()
    {
        // SAFETY: AlignedAlloc throws rather than return null; a whole line of
        // ours, not yet shared with any reader.
        _gp = (ulong*)NativeMemory.AlignedAlloc(LineSize, LineSize);
        NativeMemory.Clear(_gp, LineSize);
        *_gp = 1; // 0 means "offline", so the first counter value is 1
    }

    /// <summary>How long a grace period may wait on one thread before <see cref="Stalled"/> fires.</summary>
    public TimeSpan StallThreshold { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Raised (on the waiting updater's thread) when a grace period has waited
    /// longer than <see cref="StallThreshold"/> for a thread. With no handler
    /// the diagnostic goes to stderr.
    /// </summary>
    public event Action<QsbrStall>? Stalled;

    /// <summary>Grace periods completed so far.</summary>
    public long GracePeriods => Volatile.Read(ref _gracePeriods);

    /// <summary>Threads registered now.</summary>
    public int ThreadCount { get { lock (_registryLock) return _threads.Count; } }

    /// <summary>Registers the calling thread, online.</summary>
    public QsbrThread Register(string? name = null)
    {
        lock (_registryLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            QsbrRecord* rec;
            if (_freeRecords.TryPop(out nint free))
            {
                rec = (QsbrRecord*)free;
            }
            else
            {
                rec = (QsbrRecord*)NativeMemory.AlignedAlloc(LineSize, LineSize);
                _records.Add((nint)rec);
            }
            // SAFETY: a new record, or a free one: no QsbrThread holds it (its
            // last one let go in Unregister) and a racing updater's snapshot
            // only reads it (a stale snapshot waits on it needlessly at worst).
            // QsbrRecord is exactly LineSize bytes.
            NativeMemory.Clear(rec, LineSize);
            rec->ManagedThreadId = Environment.CurrentManagedThreadId;
            rec->Tid = Interop.GetTid();
            var thread = new QsbrThread(this, rec, _gp, name ?? Thread.CurrentThread.Name ?? $"tid {rec->Tid}");
            _threads.Add(thread);
            thread.Online();
            return thread;
        }
    }

    internal void Unregister(QsbrThread thread)
    {
        lock (_registryLock)
        {
            if (!_threads.Remove(thread)) return; // twice
            thread.Offline();
            // The record is recycled, never freed while the domain lives: an
            // updater may still be scanning a snapshot that contains it, and a
            // recycled record is at worst waited on needlessly, never freed memory.
            QsbrRecord* rec = thread.Record;
            rec->ManagedThreadId = 0;
            // The thread lets go of the record before anyone can get it again:
            // a stale QsbrThread then throws instead of writing its successor's word.
            thread.Record = null;
            _freeRecords.Push((nint)rec);
        }
    }

    // Journey: rcu-synchronize
    /// <summary>
    /// Waits for a grace period: returns once every thread that was online at
    /// the call has passed a quiescent state or gone offline. Spins briefly,
    /// then kicks the threads it still waits for and blocks until one of them
    /// wakes it (never burns a core on a long wait). Called from a registered thread,
    /// that thread counts as quiescent (it holds nothing while it waits here).
    /// </summary>
    public void Synchronize()
    {
        lock (_gpLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            SynchronizeLocked();
        }
    }

    private void SynchronizeLocked() => GracePeriod(ref _snapshot, patient: false);

    /// <summary>
    /// One grace period. Grace periods may overlap (the reclaimer's runs
    /// beside an updater's): each waits for words at or past its own target,
    /// so the only shared state is the counter, bumped atomically, and each
    /// caller brings its own snapshot buffer.
    /// </summary>
    private void GracePeriod(ref nint[] snapshot, bool patient)
    {
        // Bump the counter with a full fence: our publication of the new
        // version and the bump must be visible before we read any reader's
        // word, or a reader coming online could load the old pointer after
        // we had already read it as offline.
        // SAFETY: _gp is live while the domain is (Dispose waits for the
        // reclaimer, and refuses while threads are registered); every updater
        // bumps it with an interlocked add, readers only load it.
        ulong target = (ulong)Interlocked.Increment(ref *(long*)_gp);

        int n;
        int self = Environment.CurrentManagedThreadId;
        QsbrRecord* selfRecord = null;
        lock (_registryLock)
        {
            n = _threads.Count;
            if (snapshot.Length < n) snapshot = new nint[Math.Max(n, 2 * snapshot.Length)];
            int i = 0;
            foreach (QsbrThread th in _threads)
            {
                if (th.Record->ManagedThreadId == self) { selfRecord = th.Record; continue; }
                snapshot[i++] = (nint)th.Record;
            }
            n = i;
        }

        if (patient) WaitPatiently(snapshot.AsSpan(0, n), target);
        else WaitForReaders(snapshot.AsSpan(0, n), target);

        // Our own thread passed a quiescent state by calling us.
        // SAFETY: selfRecord is our own thread's record, so its Ctr is ours to
        // write (the owner rule), and it cannot be recycled under us: only
        // our thread's Dispose would unregister it.
        if (selfRecord != null && Volatile.Read(ref selfRecord->Ctr) != 0)
            Volatile.Write(ref selfRecord->Ctr, target);
        Interlocked.Increment(ref _gracePeriods);
    }

    /// <summary>
    /// Drops every reader that is offline or has caught up with
    /// <paramref name="target"/> (clearing its kick if we kicked), and returns
    /// those still behind, compacted to the front.
    /// </summary>
    private static Span<nint> DropCaughtUp(Span<nint> pending, ulong target, bool kicked)
    {
        int left = 0;
        // SAFETY: the records were live when snapshotted and are never freed
        // while the domain lives (at worst recycled, see Unregister). Kick is
        // the updaters' word: cleared only once the reader has caught up.
        for (int i = 0; i < pending.Length; i++)
        {
            var rec = (QsbrRecord*)pending[i];
            ulong ctr = Volatile.Read(ref rec->Ctr);
            if (ctr == 0 || ctr >= target)
            {
                if (kicked) Volatile.Write(ref rec->Kick, 0);
                continue;
            }
            pending[left++] = pending[i];
        }
        return pending[..left];
    }

    private void WaitForReaders(Span<nint> pending, ulong target)
    {
        long start = Stopwatch.GetTimestamp();
        DateTime startUtc = default;
        long kickedAt = 0;
        bool kicked = false, stallReported = false;
        while (true)
        {
            pending = DropCaughtUp(pending, target, kicked);
            if (pending.IsEmpty) return;

            long elapsed = Stopwatch.GetTimestamp() - start;
            if (elapsed < SpinTicks)
            {
                Thread.SpinWait(8);
                continue;
            }
            if (!kicked)
            {
                // Block rather than sleep: a short sleep does not give the CPU
                // to a reader preempted on ours (the timer fires before we are
                // switched out), and a long one overshoots. A kicked reader
                // wakes us when it passes a quiescent state or goes offline.
                // SAFETY: live records (see DropCaughtUp); Kick is the
                // updaters' word, and every updater writes the same 1.
                foreach (nint r in pending) Volatile.Write(ref ((QsbrRecord*)r)->Kick, 1);
                kicked = true;
                startUtc = DateTime.UtcNow - Stopwatch.GetElapsedTime(start);
                // A reader stores its word, then reads Kick, with no fence of
                // its own (readers stay fence-free). So it may read Kick before
                // our kick lands while its store still sits in its store
                // buffer, where our scan cannot see it: neither of us would
                // act. We fence our own side, and keep scanning a little past
                // the kick, far longer than a store buffer takes to drain,
                // before we block. A wakeup lost even so costs the backstop
                // timeout below, never safety: only the words decide when the
                // grace period ends. (A process-wide membarrier here would close
                // the window formally, but costs ~30 µs of IPIs in a VM.)
                Interlocked.MemoryBarrier();
                kickedAt = Stopwatch.GetTimestamp();
                continue;
            }
            if (Stopwatch.GetTimestamp() - kickedAt < PostKickSpinTicks)
            {
                Thread.SpinWait(8);
                continue;
            }
            if (!stallReported && Stopwatch.GetElapsedTime(start) > StallThreshold)
            {
                stallReported = true;
                ReportStall((QsbrRecord*)pending[0], target, startUtc, Stopwatch.GetElapsedTime(start));
            }
            // The counter keeps a wake that came before we block; stale ones
            // (from readers of an earlier grace period) cost one more scan.
            if (_wake.Wait(WakeTimeout)) _wake.TryRead(out _);
        }
    }

    /// <summary>
    /// The reclaimer's wait: scans the readers' words every
    /// <see cref="PatientPoll"/> and lets them pass their quiescent states in
    /// their own time, kicking only those still behind after
    /// <see cref="PatientKickTicks"/>. It never blocks on the wakeup eventfd,
    /// which stays the synchronous updater's.
    /// </summary>
    private void WaitPatiently(Span<nint> pending, ulong target)
    {
        long start = Stopwatch.GetTimestamp();
        bool kicked = false, stallReported = false;
        while (true)
        {
            pending = DropCaughtUp(pending, target, kicked);
            if (pending.IsEmpty) return;

            long elapsed = Stopwatch.GetTimestamp() - start;
            if (!kicked && elapsed >= PatientKickTicks)
            {
                // SAFETY: as in WaitForReaders.
                foreach (nint r in pending) Volatile.Write(ref ((QsbrRecord*)r)->Kick, 1);
                kicked = true;
            }
            if (!stallReported && Stopwatch.GetElapsedTime(start) > StallThreshold)
            {
                stallReported = true;
                ReportStall((QsbrRecord*)pending[0], target, DateTime.UtcNow - Stopwatch.GetElapsedTime(start), Stopwatch.GetElapsedTime(start));
            }
            Thread.Sleep(PatientPoll);
        }
    }

    /// <summary>Wakes the updater blocked in <see cref="Synchronize"/>; called by a kicked reader.</summary>
    internal void WakeUpdater() => _wake.TrySignal();

    private void ReportStall(QsbrRecord* rec, ulong target, DateTime sinceUtc, TimeSpan waited)
    {
        string name = "unknown";
        lock (_registryLock)
        {
            foreach (QsbrThread th in _threads)
                if (th.Record == rec) { name = th.Name; break; }
        }
        var stall = new QsbrStall(name, rec->Tid, target, sinceUtc, waited);
        Action<QsbrStall>? handler = Stalled;
        if (handler != null) handler(stall);
        else Console.Error.WriteLine(stall.ToString());
    }

    // Journey: rcu-defer
    /// <summary>
    /// Frees <paramref name="ptr"/> (from NativeMemory.Alloc) after a grace
    /// period, without blocking the caller: the call_rcu of liburcu. A
    /// background thread batches what is queued and waits one grace period
    /// for the whole batch.
    /// </summary>
    public void Defer(void* ptr) => Enqueue(new Deferred(DeferredKind.Free, null, (nint)ptr, 0, 0));

    /// <summary>
    /// Calls <paramref name="owner"/>'s <see cref="IRcuReclaimable.Reclaim"/>
    /// with the three arguments after a grace period: a deferral that
    /// allocates nothing, for an updater in a loop (a closure per call would
    /// feed the garbage collector, whose pauses stop every vCPU).
    /// </summary>
    public void Defer(IRcuReclaimable owner, nint arg0, nint arg1, nint arg2)
    {
        ArgumentNullException.ThrowIfNull(owner);
        Enqueue(new Deferred(DeferredKind.Owner, owner, arg0, arg1, arg2));
    }

    /// <summary>Runs <paramref name="reclaim"/> after a grace period, on the reclaimer thread.</summary>
    public void Defer(Action reclaim)
    {
        ArgumentNullException.ThrowIfNull(reclaim);
        Enqueue(new Deferred(DeferredKind.Action, reclaim, 0, 0, 0));
    }

    private enum DeferredKind : byte { Free, Action, Owner }

    private readonly record struct Deferred(DeferredKind Kind, object? Target, nint Arg0, nint Arg1, nint Arg2);

    private void Enqueue(Deferred item)
    {
        lock (_deferLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _deferred.Add(item);
            _deferredQueued++;
            if (_reclaimer == null)
            {
                _reclaimer = new Thread(ReclaimLoop) { IsBackground = true, Name = "qsbr-reclaim" };
                _reclaimer.Start();
            }
            Monitor.PulseAll(_deferLock);
        }
    }

    private void ReclaimLoop()
    {
        while (true)
        {
            List<Deferred> batch;
            lock (_deferLock)
            {
                while (_deferred.Count == 0 && !_disposed) Monitor.Wait(_deferLock);
                if (_deferred.Count == 0) return; // disposed and drained
                batch = _deferred;
                _deferred = _spare;
                Monitor.PulseAll(_deferLock); // producers held back by WaitForBacklog: the queue is empty again
            }

            // Also runs while Dispose drains the queue, after _disposed is set.
            // Not under _gpLock: a patient grace period may take milliseconds,
            // and a synchronous updater must not queue behind it.
            GracePeriod(ref _reclaimSnapshot, patient: true);
            foreach (Deferred d in batch)
            {
                try
                {
                    switch (d.Kind)
                    {
                        case DeferredKind.Free: NativeMemory.Free((void*)d.Arg0); break;
                        case DeferredKind.Action: ((Action)d.Target!)(); break;
                        case DeferredKind.Owner: ((IRcuReclaimable)d.Target!).Reclaim(d.Arg0, d.Arg1, d.Arg2); break;
                    }
                }
                catch (Exception e) { _reclaimError ??= e; }
            }

            int done = batch.Count;
            batch.Clear();
            lock (_deferLock)
            {
                _spare = batch;
                _deferredDone += done;
                Monitor.PulseAll(_deferLock);
            }
        }
    }

    /// <summary>
    /// Backpressure for a producer of deferred work: waits until fewer than
    /// <paramref name="max"/> items are queued for the reclaimer. An updater
    /// in a loop can retire faster than one reclaimer closes and frees
    /// (measured: attach/detach in a tight loop piled up descriptors until
    /// the process ran out), and what waits for a grace period holds memory
    /// and descriptors. A registered caller goes offline meanwhile, so the
    /// grace period it waits on is not held up by itself; so it must hold no
    /// protected pointer (a map updater holds none; a vCPU inside translated
    /// code does, and never calls this).
    /// </summary>
    public void WaitForBacklog(int max)
    {
        lock (_deferLock)
        {
            if (_deferred.Count < max || _disposed) return;
        }
        QsbrThread? self = FindCurrentThread();
        bool wasOnline = self?.IsOnline == true;
        if (wasOnline) self!.Offline();
        try
        {
            lock (_deferLock)
            {
                while (_deferred.Count >= max && !_disposed) Monitor.Wait(_deferLock);
            }
        }
        finally
        {
            if (wasOnline) self!.Online();
        }
    }

    /// <summary>
    /// Waits until everything deferred before this call has been reclaimed
    /// (liburcu's rcu_barrier). A registered caller goes offline meanwhile,
    /// so it does not hold up the grace period it waits for. Rethrows the
    /// first exception a deferred callback threw.
    /// </summary>
    public void Barrier()
    {
        QsbrThread? self = FindCurrentThread();
        bool wasOnline = self?.IsOnline == true;
        if (wasOnline) self!.Offline();
        try
        {
            lock (_deferLock)
            {
                long ticket = _deferredQueued;
                while (_deferredDone < ticket) Monitor.Wait(_deferLock);
            }
        }
        finally
        {
            if (wasOnline) self!.Online();
        }
        Exception? e = Interlocked.Exchange(ref _reclaimError, null);
        if (e != null) throw new AggregateException("a deferred RCU callback failed", e);
    }

    private QsbrThread? FindCurrentThread()
    {
        int self = Environment.CurrentManagedThreadId;
        lock (_registryLock)
        {
            foreach (QsbrThread th in _threads)
                if (th.Record->ManagedThreadId == self) return th;
        }
        return null;
    }

    /// <summary>
    /// Reclaims everything deferred, then frees the domain. Every thread must
    /// have unregistered: a registered thread would be left holding freed memory.
    /// </summary>
    public void Dispose()
    {
        lock (_registryLock)
        {
            if (_disposed) return;
            if (_threads.Count != 0)
                throw new InvalidOperationException($"{_threads.Count} thread(s) still registered with the QSBR domain");
        }
        Thread? reclaimer;
        lock (_deferLock)
        {
            lock (_gpLock) lock (_registryLock) _disposed = true;
            reclaimer = _reclaimer;
            Monitor.PulseAll(_deferLock);
        }
        reclaimer?.Join();
        foreach (nint r in _records) NativeMemory.AlignedFree((void*)r);
        _records.Clear();
        NativeMemory.AlignedFree(_gp);
        _wake.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>What <see cref="Qsbr.Defer(IRcuReclaimable, nint, nint, nint)"/> calls back after a grace period.</summary>
public interface IRcuReclaimable
{
    /// <summary>Runs on the reclaimer thread once no reader can hold what the arguments name.</summary>
    void Reclaim(nint arg0, nint arg1, nint arg2);
}
