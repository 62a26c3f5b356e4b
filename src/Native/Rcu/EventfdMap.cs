using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Sharpvisor.Native;

/// <summary>When an <see cref="EventfdMap"/> update frees the array it replaced.</summary>
public enum EventfdMapReclaim
{
    /// <summary>The update waits for the grace period, then frees (the seed's way).</summary>
    Synchronous,
    /// <summary>The update returns at once; the QSBR reclaimer frees after the grace period.</summary>
    Deferred,
}

// Journey: eventfd-map
/// <summary>
/// Maps notification values to eventfds, for the vCPU threads to signal
/// without taking a lock. This is the seed's design, unchanged: the map is one
/// raw array in native memory, <c>{count, entries[{value, fd}]}</c>. An update
/// never touches the array readers may be scanning; it builds a copy with one
/// entry more (or less), publishes the new pointer with a single volatile
/// store, waits until no vCPU can still hold the old pointer (a QSBR grace
/// period), and only then frees it. Readers pay one volatile load and a scan.
/// </summary>
/// <remarks>
/// Each entry owns its own duplicate of the registrant's descriptor, so the
/// registrant may close its copy at once. A removed entry's descriptor is
/// closed only after the grace period: until then a reader may still be about
/// to write to it, and a descriptor number closed early could be reused by an
/// unrelated file that the guest would then write into.
/// <para>
/// With counter slots (one per vCPU), every attachment also gets a block of
/// delivery counters, one cache line per slot, that lives outside the array
/// and moves with its entry from copy to copy. A reader adds one to its own
/// slot with a plain increment: no other thread writes that word, so no
/// interlocked instruction is needed and no count is lost, and the block
/// cannot be freed under the increment because it is retired like the
/// descriptor, after the grace period that follows the entry's removal. Its
/// count is then folded into the value's total. The counts are exact once the
/// readers are quiet, which is when a VM reports them.
/// </para>
/// </remarks>
public sealed unsafe class EventfdMap : IDisposable
{
    /// <summary>Most values a map holds (the scan is linear: the seed's map is small).</summary>
    public const int MaxEntries = 4096;

    internal const uint LiveMagic = 0x50414d45;   // "EMAP"
    internal const uint PoisonMagic = 0xdeadbeef;
    internal const string CheckingSwitch = "Sharpvisor.EventfdMap.Checking";

    /// <summary>
    /// Checking mode (an AppContext switch, so the JIT folds the test away when
    /// it is off): retired arrays are poisoned and kept instead of freed, and
    /// readers count every read that found poison, so a reader that ever used
    /// an array after its grace period is seen, not merely lucky.
    /// </summary>
    internal static readonly bool Checking = AppContext.TryGetSwitch(CheckingSwitch, out bool on) && on;

    private static long s_poisonedReads;
    /// <summary>Checking mode: runs on the reader between loading the array and scanning it.</summary>
    internal static Action<uint>? s_afterLoadHook;

    [StructLayout(LayoutKind.Sequential)]
    internal struct Header
    {
        public uint Magic;
        public int Count;
        // Entry[Count] follows.
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct Entry
    {
        public uint Value;
        public int Fd;
    }

    // After Entry[Count] comes long*[Count]: each entry's counter block, or
    // null without counter slots. A parallel array rather than a wider entry,
    // so that the scan stays over 8-byte entries.

    /// <summary>A slot's counter sits alone in a cache line: neighbouring vCPUs' increments do not contend.</summary>
    private const int CounterStride = 64 / sizeof(long);

    /// <summary>Published when the map is empty; never freed, so no update ever retires it.</summary>
    private static readonly nint s_empty = AllocateArray(0);

    private nint _current = s_empty;  // Header*; written only under _writeLock, with Volatile.Write
    private readonly Qsbr _qsbr;
    private readonly Lock _writeLock = new();
    private readonly Dictionary<uint, SafeFdHandle> _owned = [];  // value -> the descriptor its entry holds
    private readonly List<nint> _quarantine = [];                 // checking mode: poisoned, kept
    private bool _disposed;

    // Delivery counts. _countsLock guards the two tables and the freeing of
    // counter blocks (a retirement on the reclaimer thread folds and frees).
    private readonly int _counterSlots;
    private readonly Lock _countsLock = new();
    private readonly Dictionary<nint, uint> _liveCounters = [];   // block -> value, until retired
    private readonly Dictionary<uint, long> _retiredCounts = [];  // value -> deliveries of retired blocks
    private readonly List<uint> _attachOrder = [];                // every value ever attached, first attach first
    private readonly HashSet<uint> _everAttached = [];

    /// <summary>Test hook: retire arrays without a grace period, to show the checks catch it.</summary>
    internal bool UnsafeSkipGracePeriodForTests;

    /// <param name="qsbr">The domain the readers are registered in.</param>
    /// <param name="reclaim">When an update frees the array it replaced.</param>
    /// <param name="counterSlots">
    /// Readers that count deliveries with <see cref="TrySignal(uint, int)"/>,
    /// each with its own slot (a VM passes its vCPU count); 0 counts nothing.
    /// </param>
    public EventfdMap(Qsbr qsbr, EventfdMapReclaim reclaim = EventfdMapReclaim.Synchronous, int counterSlots = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(counterSlots);
        _qsbr = qsbr;
        Reclaim = reclaim;
        _counterSlots = counterSlots;
    }

    /// <summary>How many readers can count deliveries, each in its own slot.</summary>
    public int CounterSlots => _counterSlots;

    public EventfdMapReclaim Reclaim { get; }

    /// <summary>Reads that found a poisoned array (checking mode only; must stay 0).</summary>
    internal static long PoisonedReads => Volatile.Read(ref s_poisonedReads);

    /// <summary>Entries in the current array.</summary>
    public int Count => ((Header*)Volatile.Read(ref _current))->Count;

    /// <summary>The attached values, in attach order.</summary>
    public uint[] Values
    {
        get
        {
            lock (_writeLock)
            {
                var map = (Header*)_current;
                var values = new uint[map->Count];
                for (int i = 0; i < values.Length; i++) values[i] = Entries(map)[i].Value;
                return values;
            }
        }
    }

    // Journey: notify-signal
    /// <summary>
    /// The read side, on a vCPU thread: finds <paramref name="value"/> and adds
    /// one to its eventfd. Returns whether the value went to an eventfd. No
    /// lock, no allocation, no interlocked instruction, and no exception: a
    /// failed write (which a live entry cannot produce) reports false.
    /// The caller must be an online QSBR thread, or hold off grace periods otherwise.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TrySignal(uint value)
    {
        var map = (Header*)Volatile.Read(ref _current);
        if (Checking) return TrySignalChecked(map, value);
        int fd = Find(map, value);
        return fd >= 0 && WriteOne(fd);
    }

    /// <summary>
    /// <see cref="TrySignal(uint)"/>, and on a delivery one more in
    /// <paramref name="slot"/>'s counter for the value. Still no lock, no
    /// allocation, no interlocked instruction: the slot belongs to the calling
    /// thread alone (a vCPU's index), so a plain increment is exact.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TrySignal(uint value, int slot)
    {
        var map = (Header*)Volatile.Read(ref _current);
        if (Checking) return TrySignalChecked(map, value, slot);
        int i = IndexOf(map, value);
        if (i < 0 || !WriteOne(Entries(map)[i].Fd)) return false;
        long* counters = Counters(map)[i];
        if (counters != null && (uint)slot < (uint)_counterSlots) counters[slot * CounterStride]++;
        return true;
    }

    /// <summary>
    /// Deliveries counted per value, for every value ever attached (first
    /// attach first), over all its attachments and slots. Exact when no reader
    /// is signalling (after the vCPUs stopped); a snapshot otherwise.
    /// </summary>
    public IReadOnlyList<KeyValuePair<uint, long>> DeliveredCounts()
    {
        lock (_countsLock)
        {
            var totals = new Dictionary<uint, long>(_retiredCounts);
            foreach ((nint block, uint value) in _liveCounters)
                totals[value] = totals.GetValueOrDefault(value) + Sum((long*)block);
            return [.. _attachOrder.Select(v => new KeyValuePair<uint, long>(v, totals.GetValueOrDefault(v)))];
        }
    }

    /// <summary>The lookup alone (no signal): the descriptor for <paramref name="value"/>, or -1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal int Lookup(uint value) => Find((Header*)Volatile.Read(ref _current), value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int Find(Header* map, uint value)
    {
        Entry* e = Entries(map);
        for (int i = 0, n = map->Count; i < n; i++)
            if (e[i].Value == value) return e[i].Fd;
        return -1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int IndexOf(Header* map, uint value)
    {
        Entry* e = Entries(map);
        for (int i = 0, n = map->Count; i < n; i++)
            if (e[i].Value == value) return i;
        return -1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Entry* Entries(Header* map) => (Entry*)(map + 1);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long** Counters(Header* map) => (long**)(Entries(map) + map->Count);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool WriteOne(int fd)
    {
        ulong one = 1;
        return Interop.Write(fd, &one, sizeof(ulong)) == sizeof(ulong) || WriteOneSlow(fd);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static bool WriteOneSlow(int fd)
    {
        // EINTR: retry. EAGAIN: a non-blocking eventfd whose counter is full;
        // the notification is not delivered, which the caller sees as a miss.
        ulong one = 1;
        while (Interop.LastErrno == Errno.EINTR)
            if (Interop.Write(fd, &one, sizeof(ulong)) == sizeof(ulong)) return true;
        return false;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool TrySignalChecked(Header* map, uint value, int slot = -1)
    {
        if (Volatile.Read(ref map->Magic) != LiveMagic) { Interlocked.Increment(ref s_poisonedReads); return false; }
        s_afterLoadHook?.Invoke(value);
        int i = IndexOf(map, value);
        int fd = i < 0 ? -1 : Entries(map)[i].Fd;
        long* counters = i < 0 ? null : Counters(map)[i];
        // Poisoned while we scanned: we were using an array after its grace period.
        if (Volatile.Read(ref map->Magic) != LiveMagic) { Interlocked.Increment(ref s_poisonedReads); return false; }
        if (fd < 0 || !WriteOne(fd)) return false;
        if (counters != null && (uint)slot < (uint)_counterSlots) counters[slot * CounterStride]++;
        return true;
    }

    // Journey: eventfd-map-update
    /// <summary>
    /// Attaches <paramref name="value"/> to the eventfd <paramref name="eventFd"/>
    /// (the map keeps its own duplicate). On any error the map is unchanged and
    /// nothing is leaked.
    /// </summary>
    /// <remarks>
    /// The whole of RCU's update side in one method: copy the array into one
    /// entry larger, publish the copy with one volatile store (a reader sees
    /// either the old array or the new one, never half of each), then retire
    /// the old array. Retiring waits for a grace period before freeing:
    /// here (<c>Synchronous</c>, the seed's way, simple and ordered) or on the
    /// reclaimer thread (<c>Deferred</c>, for a caller that must not block).
    /// Writers take a lock among themselves; readers never see it.
    /// </remarks>
    /// <exception cref="ErrnoException">
    /// EINVAL for value 0 (it means "nothing pending") or a descriptor that is
    /// not an eventfd; EEXIST for a value already attached; EBADF for a closed
    /// descriptor; ENOSPC past <see cref="MaxEntries"/>.
    /// </exception>
    public void Add(uint value, SafeHandle eventFd)
    {
        const string op = "EventfdMap.Add";
        if (value == 0) ThrowHelper.ThrowErrno(op, Errno.EINVAL, "value 0 is reserved: it means nothing is pending");
        ArgumentNullException.ThrowIfNull(eventFd);

        SafeFdHandle dup = DuplicateEventFd(eventFd, op);
        nint old;
        lock (_writeLock)
        {
            long* counters = null;
            try
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (_owned.ContainsKey(value)) ThrowHelper.ThrowErrno(op, Errno.EEXIST, $"value 0x{value:x} is already attached");
                var cur = (Header*)_current;
                if (cur->Count >= MaxEntries) ThrowHelper.ThrowErrno(op, Errno.ENOSPC, $"the map holds at most {MaxEntries} values");

                // Copy into a one-larger array and append.
                int n = cur->Count;
                var next = (Header*)AllocateArray(n + 1);
                new Span<Entry>(Entries(cur), n).CopyTo(new Span<Entry>(Entries(next), n));
                new Span<nint>(Counters(cur), n).CopyTo(new Span<nint>(Counters(next), n));
                Entries(next)[n] = new Entry { Value = value, Fd = dup.Fd };
                if (_counterSlots > 0)
                {
                    nuint bytes = (nuint)(_counterSlots * CounterStride * sizeof(long));
                    counters = (long*)NativeMemory.AlignedAlloc(bytes, 64);
                    NativeMemory.Clear(counters, bytes);
                }
                Counters(next)[n] = counters;
                _owned.Add(value, dup);
                lock (_countsLock)
                {
                    if (counters != null) _liveCounters.Add((nint)counters, value);
                    if (_everAttached.Add(value)) _attachOrder.Add(value);
                }

                old = _current;
                Volatile.Write(ref _current, (nint)next); // publish
            }
            catch
            {
                dup.Dispose();
                if (counters != null && !_owned.ContainsKey(value)) NativeMemory.AlignedFree(counters);
                throw;
            }
            if (Reclaim == EventfdMapReclaim.Synchronous) RetireLocked(old, null);
        }
        if (Reclaim == EventfdMapReclaim.Deferred) Retire(old, null);
    }

    /// <summary>
    /// Detaches <paramref name="value"/>. Its descriptor is closed after the
    /// grace period. Returns false if it was not attached.
    /// </summary>
    public bool Remove(uint value)
    {
        nint old;
        SafeFdHandle? dup;
        long* counters = null;
        lock (_writeLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_owned.Remove(value, out dup)) return false;
            var cur = (Header*)_current;
            int n = cur->Count;
            var next = n == 1 ? (Header*)s_empty : (Header*)AllocateArray(n - 1);
            Entry* src = Entries(cur), dst = Entries(next);
            long** srcCounters = Counters(cur), dstCounters = Counters(next);
            for (int i = 0, j = 0; i < n; i++)
            {
                if (src[i].Value == value)
                {
                    counters = srcCounters[i];
                    continue;
                }
                dstCounters[j] = srcCounters[i];
                dst[j++] = src[i];
            }
            old = _current;
            Volatile.Write(ref _current, (nint)next);
            if (Reclaim == EventfdMapReclaim.Synchronous) RetireLocked(old, dup, counters);
        }
        if (Reclaim == EventfdMapReclaim.Deferred) Retire(old, dup, counters);
        return true;
    }

    /// <summary>Synchronous reclaim; runs under the write lock so updates keep their order.</summary>
    private void RetireLocked(nint old, SafeFdHandle? closeAfter, long* counters = null)
    {
        if (!UnsafeSkipGracePeriodForTests) _qsbr.Synchronize();
        Free(old);
        closeAfter?.Dispose();
        RetireCounters(counters);
    }

    private void Retire(nint old, SafeFdHandle? closeAfter, long* counters = null)
    {
        if (UnsafeSkipGracePeriodForTests) { Free(old); closeAfter?.Dispose(); RetireCounters(counters); return; }
        if (closeAfter == null && counters == null && !Checking)
        {
            if (old != s_empty) _qsbr.Defer((void*)old);
        }
        else
        {
            nint block = (nint)counters;
            _qsbr.Defer(() => { Free(old); closeAfter?.Dispose(); RetireCounters((long*)block); });
        }
    }

    /// <summary>
    /// After the grace period that followed its entry's removal, no reader can
    /// add to a counter block any more: its count joins the value's total and
    /// the block is freed.
    /// </summary>
    private void RetireCounters(long* counters)
    {
        if (counters == null) return;
        lock (_countsLock)
        {
            if (_liveCounters.Remove((nint)counters, out uint value))
                _retiredCounts[value] = _retiredCounts.GetValueOrDefault(value) + Sum(counters);
            NativeMemory.AlignedFree(counters);
        }
    }

    private long Sum(long* counters)
    {
        long sum = 0;
        for (int slot = 0; slot < _counterSlots; slot++) sum += Volatile.Read(ref counters[slot * CounterStride]);
        return sum;
    }

    private void Free(nint array)
    {
        if (array == s_empty) return;
        if (!Checking)
        {
            NativeMemory.Free((void*)array);
            return;
        }
        // Poison, and keep: freed memory could be reused and look valid again,
        // but a poisoned array stays poisoned for as long as anyone could read it.
        var map = (Header*)array;
        Volatile.Write(ref map->Magic, PoisonMagic);
        for (int i = 0; i < map->Count; i++) Counters(map)[i] = null;
        for (int i = 0; i < map->Count; i++) Entries(map)[i] = new Entry { Value = 0, Fd = -1 };
        lock (_quarantine) _quarantine.Add(array);
    }

    /// <summary>A live array of <paramref name="count"/> entries and counter pointers (uninitialised), from NativeMemory.Alloc.</summary>
    internal static nint AllocateArray(int count)
    {
        var map = (Header*)NativeMemory.Alloc((nuint)(sizeof(Header) + count * (sizeof(Entry) + sizeof(nint))));
        map->Magic = LiveMagic;
        map->Count = count;
        return (nint)map;
    }

    /// <summary>
    /// Duplicates <paramref name="fd"/> and checks with the kernel that it is an
    /// eventfd. The duplicate shares the open file description (and so the
    /// counter and its flags) and is close-on-exec.
    /// </summary>
    private static SafeFdHandle DuplicateEventFd(SafeHandle fd, string op)
    {
        if (fd.IsClosed || fd.IsInvalid) ThrowHelper.ThrowErrno(op, Errno.EBADF, "the descriptor is closed");
        bool addedRef = false;
        int dupFd;
        try
        {
            fd.DangerousAddRef(ref addedRef);
            dupFd = Interop.Fcntl(fd, Interop.F_DUPFD_CLOEXEC, 0);
            if (dupFd < 0)
            {
                Errno e = Interop.LastErrno;
                ThrowHelper.ThrowErrno(op, e, e == Errno.EBADF ? $"descriptor {(int)fd.DangerousGetHandle()} is not open" : null);
            }
        }
        catch (ObjectDisposedException)
        {
            ThrowHelper.ThrowErrno(op, Errno.EBADF, "the descriptor is closed");
            throw; // unreachable
        }
        finally
        {
            if (addedRef) fd.DangerousRelease();
        }

        var dup = new SafeFdHandle(dupFd, ownsHandle: true);
        try
        {
            FdInfo info = FdInfo.Read(dupFd, op);
            if (!info.IsEventFd)
                ThrowHelper.ThrowErrno(op, Errno.EINVAL, $"descriptor {(int)fd.DangerousGetHandle()} is {info.Kind}, not an eventfd");
        }
        catch
        {
            dup.Dispose();
            throw;
        }
        return dup;
    }

    /// <summary>
    /// Empties the map, waits out the last grace period (and every deferred
    /// one still queued), then frees all arrays and closes all descriptors.
    /// </summary>
    public void Dispose()
    {
        nint old;
        lock (_writeLock)
        {
            if (_disposed) return;
            _disposed = true;
            old = _current;
            Volatile.Write(ref _current, s_empty);
        }
        _qsbr.Synchronize();
        _qsbr.Barrier(); // deferred retirements of this map finish before we free the rest
        Free(old);
        lock (_writeLock)
        {
            foreach (SafeFdHandle h in _owned.Values) h.Dispose();
            _owned.Clear();
        }
        // No reader can reach the live blocks any more: fold them in, so that
        // DeliveredCounts still answers after the map is gone.
        lock (_countsLock)
        {
            foreach (nint block in _liveCounters.Keys.ToList()) RetireCounters((long*)block);
        }
        lock (_quarantine)
        {
            foreach (nint p in _quarantine) NativeMemory.Free((void*)p);
            _quarantine.Clear();
        }
    }
}
