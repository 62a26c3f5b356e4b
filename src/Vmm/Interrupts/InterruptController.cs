using System.Diagnostics;
using System.Numerics;
using System.Runtime.InteropServices;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Native;

namespace Sharpvisor.Vmm.Interrupts;

// Journey: interrupts
/// <summary>
/// Interrupts from the host to the guest, and the waits that end with one.
/// Each interrupt line 1..31 can have an eventfd attached; a host process
/// that writes to it makes that interrupt pending. Pending interrupts belong
/// to the VM, not to a vCPU: one bit each, so they are edge-like and
/// coalesce (three writes, or a count of 3, before the guest looks are one
/// pending interrupt), and LHCALL_HALT on any vCPU takes the lowest.
/// </summary>
/// <remarks>
/// <para>
/// A halted vCPU sleeps in the kernel, in one ppoll on every interrupt
/// eventfd plus two of its own: the VM's stop eventfd, which stays readable
/// once the VM is stopping (a shutdown on another vCPU, a fault, the
/// timeout, a signal), so every halted vCPU wakes at once and for good; and
/// its kick eventfd, with which another vCPU that made an interrupt pending
/// tells it to look. No relay thread sits between the eventfd and the vCPU:
/// it would add a thread wakeup to every interrupt round trip. The vCPU goes
/// offline in the VM's QSBR domain for the sleep, so map updates never wait
/// for a sleeping vCPU.
/// </para>
/// <para>
/// The eventfds are the caller's and may be blocking, and their flags are
/// never changed. A read is made only when a poll says the counter is
/// nonzero, under a lock, after a zero-timeout poll that checks again: two
/// vCPUs woken by the same write would otherwise both read, and the second
/// read would sleep for ever. (So each interrupt eventfd must have this VM as
/// its only reader.)
/// </para>
/// <para>
/// Lost wakeups: a vCPU that reads an eventfd and sets a pending bit may have
/// emptied it under the nose of another halted vCPU, whose ppoll then sleeps
/// on. So whoever sets a bit kicks every vCPU that has announced it is about
/// to sleep. The sleeper announces itself (a full fence) before it looks at
/// the pending bits a last time; the setter sets the bits (a full fence)
/// before it looks at the announcements. Either the sleeper sees the bit or
/// the setter sees the sleeper, and a kick that lands before the ppoll starts
/// leaves the kick eventfd readable, so that ppoll returns at once.
/// </para>
/// <para>
/// Deadlock: with no interrupt source attached, a wait without a timeout
/// (LHCALL_HALT with 0, or hlt) can only end when another vCPU stops the VM.
/// The VM counts the vCPUs in such waits; the one whose wait makes the count
/// equal to the number of vCPUs stops the VM as deadlocked (exit 81), since
/// none is left to run. A vCPU alone in such a wait while another still runs
/// is not a deadlock: the running one may still shut down. Waits with a
/// timeout are not counted: they end by themselves. Nor are any waits while
/// a control socket is open (<see cref="SourcesMayBeAttached"/>): the
/// process at its other end may still attach a source, so the VM waits.
/// </para>
/// </remarks>
public sealed class InterruptController : IDisposable
{
    /// <summary>The highest interrupt number; numbers are 1..31 so that 0 can mean "none" (a HALT timeout).</summary>
    public const int MaxLine = 31;

    /// <summary>Most reads of one semaphore-mode eventfd per look: a count of 3 takes 3 reads to empty.</summary>
    private const int MaxDrainRounds = 1024;

    private readonly int _vcpus;
    private readonly EventFd?[] _lines = new EventFd?[MaxLine + 1];
    // A device's line counts as a source only while its device is busy (see AttachDevice).
    private readonly Func<bool>?[] _busy = new Func<bool>?[MaxLine + 1];
    private volatile Func<bool>[] _devices = [];
    private readonly Lock _setupLock = new();
    private readonly Lock _drainLock = new();
    private readonly EventFd _stop = EventFd.Create(EventFdFlags.NonBlocking);
    private volatile bool _started;
    private bool _sourcesMayBeAttached;
    private int _generation;           // bumped by every attach and detach; each waiter's poll set has one
    private volatile int _attachedCount;
    private Waiter[] _waiters = [];
    private uint _pending;             // bit n: interrupt n is pending
    private int _waitingForever;
    private VcpuExit? _stopExit;
    private readonly long[] _raised = new long[MaxLine + 1];

    /// <summary>
    /// One vCPU's side: its poll set, built for one generation of the attached
    /// lines, and its kick eventfd, and whether it is about to sleep. Only its
    /// vCPU's thread touches the poll set (and rebuilds it); others only kick.
    /// </summary>
    private sealed class Waiter(EventFd kick) : IDisposable
    {
        public readonly EventFd Kick = kick;
        public EventFdPollSet? Set;
        public int Generation = -1;
        public int[] LineNumbers = [];   // the attached lines, ascending; position i is poll-set index i
        public ulong LinesMask;          // poll-set bits of the lines
        public bool AnySemaphore;
        public int KickIndex;
        public ulong KickBit;
        public int Sleeping;

        /// <summary>A poll set for <paramref name="lines"/> (by line number, null where none), then the stop and kick eventfds.</summary>
        public void Rebuild(EventFd?[] lines, EventFd stop, int generation)
        {
            int[] numbers = [.. Enumerable.Range(1, MaxLine).Where(n => lines[n] != null)];
            SafeHandle[] handles = [.. numbers.Select(n => lines[n]!.Handle), stop.Handle, Kick.Handle];
            var set = new EventFdPollSet(handles); // holds a reference on each: a detached eventfd closes when no set has it
            Set?.Dispose();
            Set = set;
            LineNumbers = numbers;
            LinesMask = (1UL << numbers.Length) - 1;
            AnySemaphore = numbers.Any(n => (lines[n]!.Flags & EventFdFlags.Semaphore) != 0);
            KickIndex = handles.Length - 1;
            KickBit = 1UL << KickIndex;
            Generation = generation;
        }

        public void Dispose()
        {
            Set?.Dispose();
            Kick.Dispose();
        }
    }

    public InterruptController(int vcpus)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(vcpus, 1);
        _vcpus = vcpus;
    }

    /// <summary>
    /// Attaches <paramref name="eventFd"/> to interrupt <paramref name="line"/>
    /// (1..31): a write to it makes the interrupt pending. Before the VM runs,
    /// or while it runs (a control socket): then every vCPU is kicked, and
    /// rebuilds its poll set before it sleeps again. The caller keeps
    /// ownership; the controller holds a reference while it waits on it.
    /// </summary>
    /// <exception cref="InvalidOperationException">The line already has an eventfd.</exception>
    public void Attach(int line, EventFd eventFd)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(line, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(line, MaxLine);
        lock (_setupLock)
        {
            if (_lines[line] != null) throw new InvalidOperationException($"interrupt {line} already has an eventfd");
            _lines[line] = eventFd;
            Changed();
        }
    }

    /// <summary>
    /// Attaches a device's interrupt eventfd to <paramref name="line"/>, as
    /// <see cref="Attach"/> does, except that the line counts as an interrupt
    /// source only while <paramref name="busy"/> says so (a request in flight,
    /// an open console input): an idle device can raise nothing, so a guest
    /// that waits on it with nothing asked is still a deadlock.
    /// </summary>
    /// <remarks>
    /// The device must raise its interrupt before it stops being busy: a waiter
    /// that sees it idle then finds the eventfd readable, and waits for it.
    /// </remarks>
    public void AttachDevice(int line, EventFd eventFd, Func<bool> busy)
    {
        ArgumentNullException.ThrowIfNull(busy);
        ArgumentOutOfRangeException.ThrowIfLessThan(line, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(line, MaxLine);
        lock (_setupLock)
        {
            if (_lines[line] != null) throw new InvalidOperationException($"interrupt {line} already has an eventfd");
            _lines[line] = eventFd;
            _busy[line] = busy;
            Changed();
        }
    }

    /// <summary>
    /// Detaches interrupt <paramref name="line"/>'s eventfd; false if it had
    /// none. The caller may dispose the eventfd at once: a vCPU's poll set
    /// that still holds it keeps it open until that vCPU rebuilds its set
    /// (before it next sleeps), and only then is it closed. An interrupt it
    /// already made pending stays pending.
    /// </summary>
    public bool Detach(int line)
    {
        if (line is < 1 or > MaxLine) return false;
        lock (_setupLock)
        {
            if (_lines[line] == null) return false;
            _lines[line] = null;
            _busy[line] = null;
            Changed();
            return true;
        }
    }

    /// <summary>
    /// Under the setup lock: a new generation of lines. Once running, every
    /// vCPU is kicked after the new generation is published, so one that
    /// checked the generation before it and then sleeps finds its kick
    /// eventfd readable and wakes at once to rebuild.
    /// </summary>
    private void Changed()
    {
        _attachedCount = Enumerable.Range(0, MaxLine + 1).Count(n => _lines[n] != null && _busy[n] == null);
        _devices = [.. _busy.Where(b => b != null).Select(b => b!)];
        Interlocked.Increment(ref _generation); // a full fence before the kicks
        if (!_started) return;
        foreach (Waiter w in _waiters) w.Kick.TrySignal();
    }

    /// <summary>True if some interrupt line has an eventfd other than an idle device's (a wait without a timeout can then end).</summary>
    public bool HasSources
    {
        get { lock (_setupLock) return _attachedCount > 0 || AnyDeviceBusy(); }
    }

    /// <summary>True if <paramref name="line"/> belongs to a device (<see cref="AttachDevice"/>).</summary>
    public bool IsDeviceLine(int line)
    {
        if (line is < 1 or > MaxLine) return false;
        lock (_setupLock) return _busy[line] != null;
    }

    private bool AnyDeviceBusy()
    {
        foreach (Func<bool> busy in _devices)
            if (busy()) return true;
        return false;
    }

    /// <summary>The interrupt lines that have an eventfd, ascending.</summary>
    public int[] AttachedLines
    {
        get { lock (_setupLock) return [.. Enumerable.Range(1, MaxLine).Where(n => _lines[n] != null)]; }
    }

    /// <summary>
    /// Set before the VM runs when an interrupt source may still be attached
    /// while it runs (a control socket is open): then a wait without a
    /// timeout can end even with no source attached yet, and all vCPUs in
    /// such waits are not a deadlock.
    /// </summary>
    public bool SourcesMayBeAttached
    {
        get => _sourcesMayBeAttached;
        set
        {
            lock (_setupLock)
            {
                if (_started) throw new InvalidOperationException("whether sources may be attached later is set before the VM runs");
                _sourcesMayBeAttached = value;
            }
        }
    }

    /// <summary>The pending interrupts, bit n for interrupt n.</summary>
    public uint Pending => Volatile.Read(ref _pending);

    /// <summary>Times each interrupt was made pending (after coalescing), by line.</summary>
    public long Raised(int line) => Volatile.Read(ref _raised[line]);

    /// <summary>The stop every wait now returns, once the VM is stopping.</summary>
    public VcpuExit? StopExit => Volatile.Read(ref _stopExit);

    /// <summary>
    /// Builds each vCPU's poll set from the attached lines. The machine calls
    /// it before the vCPUs start; the first wait calls it otherwise.
    /// </summary>
    public void Start()
    {
        lock (_setupLock)
        {
            if (_started) return;
            var waiters = new List<Waiter>();
            try
            {
                for (int v = 0; v < _vcpus; v++)
                {
                    waiters.Add(new Waiter(EventFd.Create(EventFdFlags.NonBlocking)));
                    waiters[^1].Rebuild(_lines, _stop, _generation);
                }
            }
            catch
            {
                foreach (Waiter w in waiters) w.Dispose();
                throw;
            }
            _waiters = [.. waiters];
            _started = true;
        }
    }

    /// <summary>
    /// The VM is stopping with <paramref name="exit"/>: every wait, now or
    /// later, returns it at once. The first call wins; any thread may call.
    /// </summary>
    public void Stop(VcpuExit exit)
    {
        if (Interlocked.CompareExchange(ref _stopExit, exit, null) == null)
            _stop.TrySignal(); // stays readable: the stop eventfd is never read
    }

    /// <summary>
    /// LHCALL_HALT: sleeps until an interrupt is pending and takes the lowest
    /// (<paramref name="irq"/>), or until <paramref name="timeoutMicroseconds"/>
    /// pass (0: no timeout), then <paramref name="irq"/> is 0. Never returns
    /// early on a timeout. Returns null to carry on, or why the vCPU stops.
    /// </summary>
    public VcpuExit? Halt(Vcpu vcpu, uint timeoutMicroseconds, out uint irq) =>
        Wait(vcpu, Deadline(timeoutMicroseconds), take: true, out irq, "LHCALL_HALT without a timeout", 2);

    /// <summary><c>hlt</c>: sleeps until an interrupt is pending, and leaves it pending.</summary>
    public VcpuExit? WaitForInterrupt(Vcpu vcpu) =>
        Wait(vcpu, long.MaxValue, take: false, out _, "hlt", 1);

    private static long Deadline(uint timeoutMicroseconds) =>
        timeoutMicroseconds == 0
            ? long.MaxValue
            : Stopwatch.GetTimestamp() + (long)((UInt128)timeoutMicroseconds * (ulong)Stopwatch.Frequency / 1_000_000);

    private VcpuExit? Wait(Vcpu vcpu, long deadline, bool take, out uint irq, string what, int length)
    {
        irq = 0;
        if (!_started) Start();
        Waiter w = _waiters[vcpu.Index];
        // Without an interrupt source, and none to come, only another vCPU's stop can end this.
        bool forever = deadline == long.MaxValue && _attachedCount == 0 && !_sourcesMayBeAttached && !AnyDeviceBusy();
        if (forever && _devices.Length > 0)
        {
            // An idle device may have raised its line just before it went
            // idle: then the interrupt is in its eventfd (or already pending),
            // and this wait ends with it.
            Refresh(w);
            if (Volatile.Read(ref _pending) != 0 || (w.Set!.Ready() & w.LinesMask) != 0)
                forever = false;
        }
        if (forever && Interlocked.Increment(ref _waitingForever) == _vcpus)
        {
            // The VM stops with this; the count goes back so that a wait
            // after it (a host that ignores the stop) is judged afresh.
            Interlocked.Decrement(ref _waitingForever);
            return Deadlock(vcpu, what, length);
        }
        try
        {
            while (true)
            {
                if (Volatile.Read(ref _stopExit) is { } stop) return stop;
                if (take ? TryTake(out irq) : Volatile.Read(ref _pending) != 0) return null;
                long left = deadline - Stopwatch.GetTimestamp();
                if (deadline != long.MaxValue && left <= 0) return null; // timed out; irq is 0
                Refresh(w);

                // Announce the sleep (a full fence), then look a last time.
                Interlocked.Exchange(ref w.Sleeping, 1);
                if (Volatile.Read(ref _pending) != 0 || Volatile.Read(ref _stopExit) != null)
                {
                    Volatile.Write(ref w.Sleeping, 0);
                    continue;
                }
                // Offline: we hold nothing RCU-protected while asleep (or while
                // draining, whose reads are system calls).
                vcpu.Qsbr?.Offline();
                try
                {
                    long ns = deadline == long.MaxValue ? -1 : (long)((UInt128)(ulong)left * 1_000_000_000 / (ulong)Stopwatch.Frequency);
                    ulong ready = w.Set!.Wait(ns);
                    Volatile.Write(ref w.Sleeping, 0);
                    if ((ready & w.KickBit) != 0) w.Set.TryRead(w.KickIndex, out _);
                    if ((ready & w.LinesMask) != 0) Drain(w, ready);
                }
                finally
                {
                    Volatile.Write(ref w.Sleeping, 0);
                    vcpu.Qsbr?.Online();
                }
            }
        }
        finally
        {
            if (forever) Interlocked.Decrement(ref _waitingForever);
        }
    }

    /// <summary>Rebuilds <paramref name="w"/>'s poll set if a line was attached or detached since it was built.</summary>
    private void Refresh(Waiter w)
    {
        if (w.Generation != Volatile.Read(ref _generation))
            lock (_setupLock) w.Rebuild(_lines, _stop, _generation);
    }

    /// <summary>Takes the lowest pending interrupt, if any.</summary>
    private bool TryTake(out uint irq)
    {
        uint pending = Volatile.Read(ref _pending);
        while (pending != 0)
        {
            uint lowest = pending & (0u - pending);
            uint seen = Interlocked.CompareExchange(ref _pending, pending & ~lowest, pending);
            if (seen == pending)
            {
                irq = (uint)BitOperations.TrailingZeroCount(lowest);
                return true;
            }
            pending = seen;
        }
        irq = 0;
        return false;
    }

    /// <summary>
    /// Reads every interrupt eventfd that is readable and makes its interrupt
    /// pending; then kicks the other vCPUs that are about to sleep.
    /// </summary>
    private void Drain(Waiter self, ulong polled)
    {
        uint raised = 0;
        lock (_drainLock)
        {
            for (int round = 0; round < MaxDrainRounds; round++)
            {
                // The zero-timeout poll under the lock is the re-check: another
                // vCPU may have emptied a counter since our own poll saw it.
                // With one vCPU there is no other reader (each line's eventfd
                // has this VM as its only reader), so what the sleep's poll
                // said still holds, and the re-check's system call is saved
                // on every interrupt.
                ulong ready = (round == 0 && _vcpus == 1 ? polled : self.Set!.Ready()) & self.LinesMask;
                if (ready == 0) break;
                for (; ready != 0; ready &= ready - 1)
                {
                    int i = BitOperations.TrailingZeroCount(ready);
                    if (self.Set!.TryRead(i, out _)) raised |= 1u << self.LineNumbers[i];
                }
                if (!self.AnySemaphore) break; // counter mode: one read empties a counter
            }
        }
        if (raised == 0) return;
        uint before = Interlocked.Or(ref _pending, raised); // a full fence before we look at the sleepers
        for (uint fresh = raised & ~before; fresh != 0; fresh &= fresh - 1)
            Interlocked.Increment(ref _raised[BitOperations.TrailingZeroCount(fresh)]);
        foreach (Waiter other in _waiters)
            if (other != self && Volatile.Read(ref other.Sleeping) != 0)
                other.Kick.TrySignal();
    }

    private VcpuExit Deadlock(Vcpu vcpu, string what, int length)
    {
        string where = $"{what} at eip 0x{vcpu.State.Eip - (uint)length:x}";
        return new VcpuExit(StopReason.Deadlock, _vcpus == 1
            ? $"{where} waits for an interrupt, and no interrupt source is attached to raise one"
            : $"all {_vcpus} vCPUs wait for an interrupt, and no interrupt source is attached to raise one (the last: vcpu {vcpu.Index}, {where})");
    }

    public void Dispose()
    {
        lock (_setupLock)
        {
            foreach (Waiter w in _waiters) w.Dispose();
            _waiters = [];
            _stop.Dispose();
        }
    }
}
