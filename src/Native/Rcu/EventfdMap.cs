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

    /// <summary>Published when the map is empty; never freed, so no update ever retires it.</summary>
    private static readonly nint s_empty = AllocateArray(0);

    private nint _current = s_empty;  // Header*; written only under _writeLock, with Volatile.Write
    private readonly Qsbr _qsbr;
    private readonly Lock _writeLock = new();
    private readonly Dictionary<uint, SafeFdHandle> _owned = [];  // value -> the descriptor its entry holds
    private readonly List<nint> _quarantine = [];                 // checking mode: poisoned, kept
    private bool _disposed;

    /// <summary>Test hook: retire arrays without a grace period, to show the checks catch it.</summary>
    internal bool UnsafeSkipGracePeriodForTests;

    public EventfdMap(Qsbr qsbr, EventfdMapReclaim reclaim = EventfdMapReclaim.Synchronous)
    {
        _qsbr = qsbr;
        Reclaim = reclaim;
    }

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
    private static Entry* Entries(Header* map) => (Entry*)(map + 1);

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
    private static bool TrySignalChecked(Header* map, uint value)
    {
        if (Volatile.Read(ref map->Magic) != LiveMagic) { Interlocked.Increment(ref s_poisonedReads); return false; }
        s_afterLoadHook?.Invoke(value);
        int fd = Find(map, value);
        // Poisoned while we scanned: we were using an array after its grace period.
        if (Volatile.Read(ref map->Magic) != LiveMagic) { Interlocked.Increment(ref s_poisonedReads); return false; }
        return fd >= 0 && WriteOne(fd);
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
            try
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (_owned.ContainsKey(value)) ThrowHelper.ThrowErrno(op, Errno.EEXIST, $"value 0x{value:x} is already attached");
                var cur = (Header*)_current;
                if (cur->Count >= MaxEntries) ThrowHelper.ThrowErrno(op, Errno.ENOSPC, $"the map holds at most {MaxEntries} values");

                // Copy into a one-larger array and append.
                var next = (Header*)AllocateArray(cur->Count + 1);
                new Span<Entry>(Entries(cur), cur->Count).CopyTo(new Span<Entry>(Entries(next), cur->Count));
                Entries(next)[cur->Count] = new Entry { Value = value, Fd = dup.Fd };
                _owned.Add(value, dup);

                old = _current;
                Volatile.Write(ref _current, (nint)next); // publish
            }
            catch
            {
                dup.Dispose();
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
        lock (_writeLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_owned.Remove(value, out dup)) return false;
            var cur = (Header*)_current;
            int n = cur->Count;
            var next = n == 1 ? (Header*)s_empty : (Header*)AllocateArray(n - 1);
            Entry* src = Entries(cur), dst = Entries(next);
            for (int i = 0, j = 0; i < n; i++)
                if (src[i].Value != value) dst[j++] = src[i];
            old = _current;
            Volatile.Write(ref _current, (nint)next);
            if (Reclaim == EventfdMapReclaim.Synchronous) RetireLocked(old, dup);
        }
        if (Reclaim == EventfdMapReclaim.Deferred) Retire(old, dup);
        return true;
    }

    /// <summary>Synchronous reclaim; runs under the write lock so updates keep their order.</summary>
    private void RetireLocked(nint old, SafeFdHandle? closeAfter)
    {
        if (!UnsafeSkipGracePeriodForTests) _qsbr.Synchronize();
        Free(old);
        closeAfter?.Dispose();
    }

    private void Retire(nint old, SafeFdHandle? closeAfter)
    {
        if (UnsafeSkipGracePeriodForTests) { Free(old); closeAfter?.Dispose(); return; }
        if (closeAfter == null && !Checking)
        {
            if (old != s_empty) _qsbr.Defer((void*)old);
        }
        else
        {
            _qsbr.Defer(() => { Free(old); closeAfter?.Dispose(); });
        }
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
        for (int i = 0; i < map->Count; i++) Entries(map)[i] = new Entry { Value = 0, Fd = -1 };
        lock (_quarantine) _quarantine.Add(array);
    }

    /// <summary>A live array of <paramref name="count"/> entries (entries uninitialised), from NativeMemory.Alloc.</summary>
    internal static nint AllocateArray(int count)
    {
        var map = (Header*)NativeMemory.Alloc((nuint)(sizeof(Header) + count * sizeof(Entry)));
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
        lock (_quarantine)
        {
            foreach (nint p in _quarantine) NativeMemory.Free((void*)p);
            _quarantine.Clear();
        }
    }
}
