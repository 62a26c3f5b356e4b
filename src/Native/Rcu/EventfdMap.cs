using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Numerics;

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
/// without taking a lock. This is the seed's design, kept per bucket: a value
/// hashes to one of 64 buckets, and each bucket is one raw array in native
/// memory, <c>{count, values[], fds[]}</c>. An update never touches an array
/// readers may be scanning; it builds a copy of the value's bucket with one
/// entry more (or less), publishes the new pointer with a single volatile
/// store, waits until no vCPU can still hold the old pointer (a QSBR grace
/// period), and only then frees it. Readers pay two loads (the table, the
/// bucket's pointer) and a short scan.
/// </summary>
/// <remarks>
/// Why buckets, when the seed had one array: a published pointer is a cache
/// line every vCPU must fetch again after each update, and with one array
/// that was every update to any value. Each bucket's pointer has a line of
/// its own, so attaching and detaching other devices' values leaves a
/// notifying vCPU's lines alone. Measured with bench notify's attach/detach
/// row: churning other values of the vCPU's own map cost its rate 7-20%
/// where churning a separate map cost 5-7%; with buckets the two are alike.
/// The scan got shorter too: 16 consecutive values take 16 buckets.
/// <para>
/// Each entry owns its own duplicate of the registrant's descriptor, so the
/// registrant may close its copy at once. A removed entry's descriptor is
/// closed only after the grace period: until then a reader may still be about
/// to write to it, and a descriptor number closed early could be reused by an
/// unrelated file that the guest would then write into.
/// </para>
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
/// <para>
/// Safety. All native memory here is written in one small set of methods (the
/// publisher, under "The publisher" below): <see cref="NewTable"/>,
/// <see cref="AllocateArray"/>, <see cref="SetEntry(Header*, int, uint, int, long*)"/>,
/// <see cref="Publish"/>, <see cref="PublishEmptyTable"/>, <see cref="Poison"/>
/// and, on the read side, <see cref="CountDelivery"/>. The argument rests on
/// three invariants:
/// </para>
/// <list type="number">
/// <item>Ownership: an array is written only before it is published (by the
/// updater that allocated it, under <c>_writeLock</c>), and after the grace
/// period that follows its replacement (by whoever retires it). Between the
/// two it is immutable, so readers never race with a writer of it.</item>
/// <item>Lifetime: the table a reader loads is this map's (freed only by
/// Dispose, after it published the never-freed empty table and waited a grace
/// period) or the empty table; a bucket's array is freed only after the grace
/// period that follows its replacement. A reader that is an online QSBR thread
/// (TrySignal's contract) therefore holds valid pointers until its next
/// quiescent state.</item>
/// <item>Shape: an array of Count entries has Lanes(Count) values and fds and
/// Count counter pointers, and a counter block has <see cref="CounterSlots"/>
/// lines; Count is written once, before publication, and CounterSlots once, in
/// the constructor. Every index a reader uses is below one of those by the
/// code that computes it, which is why the notify path checks nothing but the
/// caller's slot number.</item>
/// </list>
/// </remarks>
public sealed unsafe partial class EventfdMap : IDisposable, IRcuReclaimable
{
    /// <summary>Most values a map holds (each bucket's scan is linear: maps are small).</summary>
    public const int MaxEntries = 4096;

    /// <summary>Retirements queued for the reclaimer before an update waits (Deferred).</summary>
    private const int MaxBacklog = 1024;

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
        // uint Values[Lanes(Count)], int Fds[Lanes(Count)], long* Counters[Count] follow.
    }

    // Three parallel arrays rather than an array of entries, so that the
    // lookup compares only values, four at a time (one SSE compare), and
    // touches the descriptor and counter block of the one it found. Values
    // and fds are padded to a whole vector with value 0, which is never
    // attached, so a padded lane never matches a real lookup. Each entry's
    // counter block (or null without counter slots) lives outside the array.

    /// <summary>Values compared per step of the lookup.</summary>
    private const int Lane = 4;

    /// <summary>Length of the values and fds arrays: <paramref name="count"/> padded to whole vectors.</summary>
    private static int Lanes(int count) => (count + Lane - 1) & ~(Lane - 1);

    /// <summary>A slot's counter sits alone in a cache line: neighbouring vCPUs' increments do not contend.</summary>
    private const int CounterStride = 64 / sizeof(long);

    /// <summary>Published when the map is empty; never freed, so no update ever retires it.</summary>
    private static readonly nint s_empty = AllocateArray(0);

    /// <summary>Buckets of the table: a power of two, log2 in <see cref="BucketBits"/>.</summary>
    internal const int Buckets = 1 << BucketBits;
    private const int BucketBits = 6;
    /// <summary>Each bucket's pointer alone in a cache line: an update to one bucket leaves the others' lines where they are.</summary>
    private const int BucketStride = 8; // pointers per 64-byte line (a 64-bit process)

    // Header* per bucket, at Table[b * BucketStride]; written only under
    // _writeLock, with Volatile.Write. Native memory of its own until
    // Dispose swaps in s_emptyTable (so a late reader still finds an empty
    // map, never freed memory) and frees it after a grace period.
    private ReadSide _read;

    /// <summary>
    /// What every notify reads from this object, in a cache line no other
    /// object shares: managed objects are allocated next to each other, and
    /// this map's were next to its write lock and its lists, which every
    /// update writes; the struct's 64 bytes either side keep them off the line.
    /// </summary>
    [StructLayout(LayoutKind.Explicit, Size = 192)]
    private struct ReadSide
    {
        [FieldOffset(64)] public nint Table;
        [FieldOffset(72)] public int CounterSlots;
    }

    /// <summary>Every bucket empty; what a disposed map reads. Never freed.</summary>
    private static readonly nint* s_emptyTable = NewTable();

    // Attached values in attach order, under _writeLock. Nothing in this
    // object is written by an update: its line (with the table) stays in every
    // vCPU's cache; an entry count here cost a miss per notify after each update.
    private readonly List<uint> _order = new(Presize);
    private readonly Qsbr _qsbr;
    private readonly Lock _writeLock = new();
    // value -> the descriptor its entry holds. Raw numbers, closed by the map
    // itself (HotDescriptors.Close): a SafeHandle per attach would be a
    // finalizable object per update, and the collections they bring stop
    // every vCPU for milliseconds (measured under attach/detach in a loop).
    private readonly Dictionary<uint, int> _owned = new(Presize);
    private readonly List<nint> _quarantine = [];                 // checking mode: poisoned, kept
    private bool _disposed;

    // Delivery counts. _countsLock guards the two tables and the freeing of
    // counter blocks (a retirement on the reclaimer thread folds and frees).
    private readonly Lock _countsLock = new();
    private readonly Dictionary<nint, uint> _liveCounters = new(Presize); // block -> value, until retired
    private readonly Dictionary<uint, long> _retiredCounts = [];  // value -> deliveries of retired blocks
    private readonly List<uint> _attachOrder = new(Presize);      // every value ever attached, first attach first
    private readonly HashSet<uint> _everAttached = new(Presize);

    /// <summary>
    /// Entries the update side's collections hold before they grow. Grown
    /// later, their arrays would be allocated beside whatever the attaching
    /// thread allocated last (a VM's vCPU objects, when values are attached
    /// after the machine is made), and every update writes them.
    /// </summary>
    private const int Presize = 64;

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
        _read.Table = (nint)NewTable();
        _read.CounterSlots = counterSlots;
    }

    /// <summary>
    /// The bucket of <paramref name="value"/>: Fibonacci hashing (the top bits
    /// of value times 2^32 / golden ratio), which spreads runs of consecutive
    /// values, the usual way devices number their queues, over all buckets.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int BucketOf(uint value) => (int)((value * 0x9E3779B1u) >> (32 - BucketBits));

    /// <summary>Where the array of <paramref name="value"/>'s bucket is published.</summary>
    // SAFETY: the table is live (invariant 2) and has Buckets * BucketStride
    // slots; BucketOf is the top BucketBits bits of a 32-bit product, so below
    // Buckets for every value, and no check is needed.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref nint Slot(uint value) => ref ((nint*)Volatile.Read(ref _read.Table))[BucketOf(value) * BucketStride];

    /// <summary>How many readers can count deliveries, each in its own slot.</summary>
    public int CounterSlots => _read.CounterSlots;

    public EventfdMapReclaim Reclaim { get; }

    /// <summary>Reads that found a poisoned array (checking mode only; must stay 0).</summary>
    internal static long PoisonedReads => Volatile.Read(ref s_poisonedReads);

    /// <summary>Values attached now.</summary>
    public int Count
    {
        get
        {
            lock (_writeLock) return _owned.Count;
        }
    }

    /// <summary>The attached values, in attach order.</summary>
    public uint[] Values
    {
        get
        {
            lock (_writeLock) return [.. _order];
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
        var map = (Header*)Volatile.Read(ref Slot(value));
        if (Checking) return TrySignalChecked(map, value);
        int fd = Find(map, value);
        return fd >= 0 && EventFd.WriteOne(fd);
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
        var map = (Header*)Volatile.Read(ref Slot(value));
        if (Checking) return TrySignalChecked(map, value, slot);
        // SAFETY: map is live while we are online (invariant 2) and immutable
        // (invariant 1); 0 <= i < Count indexes its fds and counters (invariant 3).
        int i = IndexOf(map, value);
        if (i < 0 || !EventFd.WriteOne(FdLanes(map)[i])) return false;
        CountDelivery(Counters(map)[i], slot);
        return true;
    }

    /// <summary>The lookup alone (no signal): the descriptor for <paramref name="value"/>, or -1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal int Lookup(uint value) => Find((Header*)Volatile.Read(ref Slot(value)), value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int Find(Header* map, uint value)
    {
        // SAFETY: map is a live array (the caller's, by invariant 2); i < Count.
        int i = IndexOf(map, value);
        return i < 0 ? -1 : FdLanes(map)[i];
    }

    /// <summary>
    /// The index of <paramref name="value"/>, or -1: four values per compare
    /// where the CPU has SSE2 (every x86-64), one at a time elsewhere.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int IndexOf(Header* map, uint value)
    {
        // SAFETY: map is a live array (the caller's, by invariant 2). The vector
        // loop reads values[i .. i + 3] for i < Count stepping by 4, so at most
        // Lanes(Count) values, which is what the array holds (invariant 3).
        uint* values = ValueLanes(map);
        int n = map->Count;
        if (Vector128.IsHardwareAccelerated)
        {
            Vector128<uint> key = Vector128.Create(value);
            for (int i = 0; i < n; i += Lane)
            {
                uint hits = Vector128.Equals(Vector128.Load(values + i), key).ExtractMostSignificantBits();
                if (hits != 0)
                {
                    // Only the last vector has padding, so the first hit decides;
                    // a hit in the padding is value 0, never attached.
                    int at = i + BitOperations.TrailingZeroCount(hits);
                    return at < n ? at : -1;
                }
            }
            return -1;
        }
        for (int i = 0; i < n; i++)
            if (values[i] == value) return i;
        return -1;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool TrySignalChecked(Header* map, uint value, int slot = -1)
    {
        if (Volatile.Read(ref map->Magic) != LiveMagic) { Interlocked.Increment(ref s_poisonedReads); return false; }
        s_afterLoadHook?.Invoke(value);
        int i = IndexOf(map, value);
        int fd = i < 0 ? -1 : FdLanes(map)[i];
        long* counters = i < 0 ? null : Counters(map)[i];
        // Poisoned while we scanned: we were using an array after its grace period.
        if (Volatile.Read(ref map->Magic) != LiveMagic) { Interlocked.Increment(ref s_poisonedReads); return false; }
        if (fd < 0 || !EventFd.WriteOne(fd)) return false;
        CountDelivery(counters, slot);
        return true;
    }

    // Journey: eventfd-map-update
    /// <summary>
    /// Attaches <paramref name="value"/> to the eventfd <paramref name="eventFd"/>
    /// (the map keeps its own duplicate). On any error the map is unchanged and
    /// nothing is leaked.
    /// </summary>
    /// <remarks>
    /// The whole of RCU's update side in one method: copy the value's bucket
    /// into an array one entry larger, publish the copy with one volatile store (a reader sees
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
    public void Add(uint value, SafeHandle eventFd) => Add(value, eventFd, checkKind: true);

    /// <summary>
    /// <see cref="Add(uint, SafeHandle)"/> for an <see cref="EventFd"/>, which
    /// is an eventfd by construction (made by eventfd(2), or checked when it
    /// was taken over): the map duplicates it without asking the kernel
    /// again. That check reads <c>/proc/self/fd</c> and <c>fdinfo</c>, and a
    /// thread walking this process's /proc while attaching and detaching in a
    /// loop cost a notifying vCPU a tenth of its rate (bench notify's
    /// attach/detach row); the duplicate alone costs a fraction of that.
    /// </summary>
    public void Add(uint value, EventFd eventFd)
    {
        ArgumentNullException.ThrowIfNull(eventFd);
        Add(value, eventFd.Handle, checkKind: false);
    }

    private void Add(uint value, SafeHandle eventFd, bool checkKind)
    {
        const string op = "EventfdMap.Add";
        if (value == 0) ThrowHelper.ThrowErrno(op, Errno.EINVAL, "value 0 is reserved: it means nothing is pending");
        ArgumentNullException.ThrowIfNull(eventFd);

        int dup = DuplicateEventFd(eventFd, op, checkKind);
        nint old;
        lock (_writeLock)
        {
            long* counters = null;
            Header* next = null;
            bool owned = false, published = false;
            try
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (_owned.ContainsKey(value)) ThrowHelper.ThrowErrno(op, Errno.EEXIST, $"value 0x{value:x} is already attached");
                if (_owned.Count >= MaxEntries) ThrowHelper.ThrowErrno(op, Errno.ENOSPC, $"the map holds at most {MaxEntries} values");

                // Copy the value's bucket into a one-larger array and append.
                // cur is the published array: we hold _writeLock, and only a
                // writer holding it retires arrays, so cur stays live under us.
                var cur = (Header*)Slot(value);
                int n = cur->Count;
                next = (Header*)AllocateArray(n + 1);
                for (int i = 0; i < n; i++) CopyEntry(cur, i, next, i);
                if (_read.CounterSlots > 0) counters = AllocateCounters();
                SetEntry(next, n, value, dup, counters);
                _owned.Add(value, dup);
                owned = true;
                lock (_countsLock)
                {
                    if (counters != null) _liveCounters.Add((nint)counters, value);
                    if (_everAttached.Add(value)) _attachOrder.Add(value);
                }

                old = Publish(value, cur, next);
                published = true;
                _order.Add(value);
            }
            catch
            {
                // Until the publish, nothing a reader sees has changed: undo
                // our bookkeeping and free what we made. dup leaves _owned
                // before it is closed, or Dispose would close the number
                // again, by then perhaps an unrelated file's. After the
                // publish, the entry is live and stays.
                if (!published)
                {
                    if (owned) _owned.Remove(value);
                    if (counters != null)
                    {
                        lock (_countsLock) _liveCounters.Remove((nint)counters);
                        FreeCounters(counters);
                    }
                    HotDescriptors.Close(dup);
                    // SAFETY: never published, so ours alone (invariant 1).
                    if (next != null) NativeMemory.AlignedFree(next);
                }
                throw;
            }
            if (Reclaim == EventfdMapReclaim.Synchronous) RetireLocked(old, -1);
        }
        if (Reclaim == EventfdMapReclaim.Deferred) Retire(old, -1);
    }

    /// <summary>
    /// Detaches <paramref name="value"/>. Its descriptor is closed after the
    /// grace period. Returns false if it was not attached.
    /// </summary>
    public bool Remove(uint value)
    {
        nint old;
        int dup;
        long* counters = null;
        lock (_writeLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_owned.Remove(value, out dup)) return false;
            // cur is live under _writeLock (see Add). _owned held the value, so
            // cur holds it once: n - 1 entries are copied into n - 1 places.
            var cur = (Header*)Slot(value);
            int n = cur->Count;
            var next = n == 1 ? (Header*)s_empty : (Header*)AllocateArray(n - 1);
            for (int i = 0, j = 0; i < n; i++)
            {
                if (EntryValue(cur, i) == value)
                {
                    counters = EntryCounters(cur, i);
                    continue;
                }
                CopyEntry(cur, i, next, j++);
            }
            old = Publish(value, cur, next);
            _order.Remove(value);
            if (Reclaim == EventfdMapReclaim.Synchronous) RetireLocked(old, dup, counters);
        }
        if (Reclaim == EventfdMapReclaim.Deferred) Retire(old, dup, counters);
        return true;
    }

    /// <summary>Synchronous reclaim; runs under the write lock so updates keep their order.</summary>
    private void RetireLocked(nint old, int closeAfter, long* counters = null)
    {
        if (!UnsafeSkipGracePeriodForTests) _qsbr.Synchronize();
        ((IRcuReclaimable)this).Reclaim(old, closeAfter, (nint)counters);
    }

    private void Retire(nint old, int closeAfter, long* counters = null)
    {
        if (UnsafeSkipGracePeriodForTests) { ((IRcuReclaimable)this).Reclaim(old, closeAfter, (nint)counters); return; }
        // Each retirement holds an array and maybe a descriptor until the
        // reclaimer's grace period: bounded, so that an updater in a loop
        // runs at the reclaimer's pace instead of out of descriptors.
        _qsbr.WaitForBacklog(MaxBacklog);
        // No closure: an update allocates nothing on the managed heap.
        _qsbr.Defer(this, old, closeAfter, (nint)counters);
    }

    /// <summary>After the grace period: frees the old array, closes the removed entry's descriptor, folds in its counts.</summary>
    void IRcuReclaimable.Reclaim(nint array, nint descriptor, nint counters)
    {
        Free(array);
        if (descriptor >= 0) HotDescriptors.Close((int)descriptor);
        RetireCounters((long*)counters);
    }

    private void Free(nint array)
    {
        if (array == s_empty) return;
        if (!Checking)
        {
            // SAFETY: array was published and has been replaced for a grace
            // period (or the map is disposed, after one), so no reader holds it
            // (invariant 2); each retirement names a distinct array, freed once.
            NativeMemory.AlignedFree((void*)array);
            return;
        }
        // Poison, and keep: freed memory could be reused and look valid again,
        // but a poisoned array stays poisoned for as long as anyone could read it.
        Poison((Header*)array);
        lock (_quarantine) _quarantine.Add(array);
    }

    /// <summary>
    /// Empties the map, waits out the last grace period (and every deferred
    /// one still queued), then frees all arrays and closes all descriptors.
    /// </summary>
    public void Dispose()
    {
        nint* table;
        lock (_writeLock)
        {
            if (_disposed) return;
            _disposed = true;
            table = PublishEmptyTable();
        }
        _qsbr.Synchronize();
        _qsbr.Barrier(); // deferred retirements of this map finish before we free the rest
        // SAFETY: the grace period since PublishEmptyTable means no reader
        // holds our table or its arrays (invariant 2); _disposed stops any
        // update, so we are their only user.
        for (int b = 0; b < Buckets; b++) Free(table[b * BucketStride]);
        NativeMemory.AlignedFree(table);
        lock (_writeLock)
        {
            foreach (int fd in _owned.Values) HotDescriptors.Close(fd);
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
            // SAFETY: quarantined arrays were retired a grace period ago or more.
            foreach (nint p in _quarantine) NativeMemory.AlignedFree((void*)p);
            _quarantine.Clear();
        }
    }
}
