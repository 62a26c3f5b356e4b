using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Sharpvisor.Native;

/// <summary>
/// The per-thread word QSBR is built on, one per registered thread, each alone
/// in a 128-byte block (two cache lines: the adjacent-line prefetcher would
/// otherwise make neighbours share). The reader writes <see cref="Ctr"/>; the
/// updater reads it, and writes <see cref="Kick"/>.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Qsbr.LineSize)]
internal struct QsbrRecord
{
    /// <summary>0 while offline; otherwise the grace-period counter seen at the last quiescent state.</summary>
    [FieldOffset(0)] public ulong Ctr;
    /// <summary>
    /// Set by a waiting updater: "report a quiescent state soon, and wake me".
    /// Compiled loops poll it; the reader reads it once per grace period, after
    /// storing <see cref="Ctr"/>.
    /// </summary>
    [FieldOffset(8)] public int Kick;
    /// <summary>Owner's managed thread id (0 while the record is free).</summary>
    [FieldOffset(12)] public int ManagedThreadId;
    /// <summary>Owner's kernel thread id, for diagnostics.</summary>
    [FieldOffset(16)] public int Tid;
}

/// <summary>
/// A thread's membership of a <see cref="Qsbr"/> domain. Only the thread that
/// registered calls <see cref="QuiescentState"/>, <see cref="Offline"/> and
/// <see cref="Online"/>; they are cheap enough to call between every two
/// guest basic blocks.
/// </summary>
/// <remarks>
/// Safety: <see cref="Record"/> is this thread's record, valid while the
/// domain lives (see <see cref="Qsbr"/>), and its Ctr word is written only
/// here, by the owning thread. Unregistering sets Record to null before the
/// record can be handed out again, so a call after Dispose faults on null
/// (a NullReferenceException, or ObjectDisposedException where we check)
/// instead of writing another thread's word.
/// </remarks>
public sealed unsafe class QsbrThread : IDisposable
{
    private readonly Qsbr _domain;
    private readonly ulong* _gp;
    /// <summary>This thread's record; null once unregistered (written under the domain's registry lock).</summary>
    internal QsbrRecord* Record;

    internal QsbrThread(Qsbr domain, QsbrRecord* record, ulong* gp, string name)
    {
        _domain = domain;
        Record = record;
        _gp = gp;
        Name = name;
    }

    public string Name { get; }

    /// <summary>Kernel thread id of the registered thread.</summary>
    public int Tid => Record->Tid;

    public bool IsOnline => Volatile.Read(ref Record->Ctr) != 0;

    // Journey: rcu-qs
    /// <summary>
    /// Tells the domain that this thread holds no pointer it read from an
    /// RCU-protected location: every older version may now be freed as far as
    /// this thread is concerned. One load, one compare, and (once per grace
    /// period, when the counter has moved) one plain store: no lock, no
    /// interlocked instruction, no fence. The acquire on the counter keeps
    /// this thread's later loads of a protected pointer after it, so they see
    /// what was published before the counter moved.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void QuiescentState()
    {
        // SAFETY: _gp lives as long as the domain. Record is ours (see the
        // remarks); no check for null here, on the hot path: after Dispose the
        // load of Record->Ctr faults on null, which .NET turns into a
        // NullReferenceException, and Report is not reached.
        ulong gp = Volatile.Read(ref *_gp);
        if (Record->Ctr != gp) Report(gp);
    }

    /// <summary>
    /// Stores our word, then wakes the updater if it kicked us (liburcu QSBR's
    /// update-and-wakeup). The release store keeps this thread's earlier loads
    /// of protected pointers before it. No fence: our store could still sit in
    /// the store buffer while we read Kick, so an updater that kicked us could
    /// miss both our word and a wakeup. The updater keeps scanning for a while
    /// after its kick before it blocks, and blocks with a timeout, so that
    /// window costs at most latency, never safety (see Qsbr.WaitForReaders).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void Report(ulong ctr)
    {
        QsbrRecord* rec = Record;
        ObjectDisposedException.ThrowIf(rec == null, this);
        // SAFETY: our own record (remarks): only this thread writes its Ctr.
        Volatile.Write(ref rec->Ctr, ctr);
        if (Volatile.Read(ref rec->Kick) != 0) _domain.WakeUpdater();
    }

    /// <summary>
    /// True when an updater has waited on this thread past its spin phase and
    /// asks for a quiescent state soon. Translated code polls this in loops
    /// that would otherwise run for long without passing a block boundary.
    /// </summary>
    public bool KickRequested
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Volatile.Read(ref Record->Kick) != 0;
    }

    /// <summary>Address of the kick word, for compiled code that polls it inline.</summary>
    public int* KickAddress => &Record->Kick;

    /// <summary>
    /// Leaves the domain before something that may block (a system call, a
    /// sleep): updaters stop waiting for this thread. The thread must hold no
    /// protected pointer across it.
    /// </summary>
    public void Offline() => Report(0);

    /// <summary>Rejoins the domain after <see cref="Offline"/>.</summary>
    public void Online()
    {
        // The one fence on the read side. Without it our store could sit in the
        // store buffer while we load a protected pointer; an updater could then
        // read our word as still offline and free what we just loaded. Online
        // follows a blocking call, whose cost dwarfs the fence, so we pay it
        // here rather than make every grace period a process-wide membarrier.
        QsbrRecord* rec = Record;
        ObjectDisposedException.ThrowIf(rec == null, this);
        // SAFETY: our own record (remarks); _gp lives as long as the domain.
        Interlocked.Exchange(ref rec->Ctr, Volatile.Read(ref *_gp));
    }

    /// <summary>Unregisters; the thread may not use the domain afterwards.</summary>
    public void Dispose() => _domain.Unregister(this);
}
