using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Sharpvisor.Native;

// The publisher: the arrays' layout and the only code that writes arrays
// and tables, each write with the invariant (EventfdMap.cs's remarks) that
// makes it safe.
public sealed unsafe partial class EventfdMap
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint* ValueLanes(Header* map) => (uint*)(map + 1);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int* FdLanes(Header* map) => (int*)(ValueLanes(map) + Lanes(map->Count));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long** Counters(Header* map) => (long**)(FdLanes(map) + Lanes(map->Count));

    /// <summary>Sets entry <paramref name="i"/> of an unpublished array from <see cref="AllocateArray"/> (the lookup bench's plain copy).</summary>
    internal static void SetEntry(Header* map, int i, uint value, int fd) => SetEntry(map, i, value, fd, null);

    /// <summary>
    /// A new, unpublished array of <paramref name="count"/> entries, zeroed (so
    /// the padding lanes hold value 0), from NativeMemory.AlignedAlloc: whole
    /// cache lines of its own. A small array from plain malloc shares its line
    /// with neighbouring chunks, and the updater allocating and the reclaimer
    /// freeing those (older arrays, counter blocks) would write into the line
    /// every vCPU reads on every notify.
    /// </summary>
    internal static nint AllocateArray(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, MaxEntries);
        nuint bytes = (nuint)(sizeof(Header) + Lanes(count) * (sizeof(uint) + sizeof(int)) + count * sizeof(nint));
        bytes = (bytes + 63) & ~(nuint)63;
        // SAFETY: AlignedAlloc throws rather than return null; the block is
        // bytes long, which is the shape invariant 3 reads (count is at most
        // MaxEntries, so the size cannot overflow). Nobody else has it yet.
        var map = (Header*)NativeMemory.AlignedAlloc(bytes, 64);
        NativeMemory.Clear(map, bytes);
        map->Magic = LiveMagic;
        map->Count = count;
        return (nint)map;
    }

    /// <summary>
    /// Writes entry <paramref name="i"/> of an array that is not yet published
    /// (invariant 1: the caller allocated it and no reader can reach it).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">i is not an entry of the array (a host bug).</exception>
    private static void SetEntry(Header* map, int i, uint value, int fd, long* counters)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)i, (uint)map->Count, nameof(i));
        // SAFETY: i < Count, and the array has Count entries (invariant 3);
        // unpublished, so no reader sees the entry half written (invariant 1).
        ValueLanes(map)[i] = value;
        FdLanes(map)[i] = fd;
        Counters(map)[i] = counters;
    }

    /// <summary>Copies entry <paramref name="i"/> of a live array to entry <paramref name="j"/> of an unpublished one.</summary>
    private static void CopyEntry(Header* from, int i, Header* to, int j)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)i, (uint)from->Count, nameof(i));
        // SAFETY: i < from's Count; from is the published array, live under
        // _writeLock (only its holder retires arrays). SetEntry checks j.
        SetEntry(to, j, ValueLanes(from)[i], FdLanes(from)[i], Counters(from)[i]);
    }

    private static uint EntryValue(Header* map, int i)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)i, (uint)map->Count, nameof(i));
        // SAFETY: i < Count of a live array (the caller's).
        return ValueLanes(map)[i];
    }

    private static long* EntryCounters(Header* map, int i)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)i, (uint)map->Count, nameof(i));
        // SAFETY: i < Count of a live array (the caller's).
        return Counters(map)[i];
    }

    /// <summary>
    /// Publishes <paramref name="next"/> as the array of <paramref name="value"/>'s
    /// bucket, in place of <paramref name="cur"/>, and returns cur for
    /// retiring: the one store that readers see. Under <c>_writeLock</c>.
    /// </summary>
    private nint Publish(uint value, Header* cur, Header* next)
    {
        // Cheap on the update path, and the argument depends on them: one
        // writer at a time, and it replaces the array it copied.
        if (!_writeLock.IsHeldByCurrentThread) throw new InvalidOperationException("EventfdMap.Publish outside the write lock");
        ref nint slot = ref Slot(value);
        if (slot != (nint)cur) throw new InvalidOperationException("EventfdMap.Publish: the bucket changed under its writer");
        // SAFETY: slot is in the live table (see Slot); we hold _writeLock, the
        // only lock under which a slot is written, so no store races ours. The
        // release store orders every write of next (made before, by us) before
        // the pointer: a reader that loads it sees the finished array.
        Volatile.Write(ref slot, (nint)next);
        return (nint)cur;
    }

    /// <summary>A new table, every bucket the empty array; unpublished.</summary>
    private static nint* NewTable()
    {
        // SAFETY: AlignedAlloc throws rather than return null; the table is
        // Buckets lines of BucketStride pointers, and b * BucketStride indexes
        // the first of line b. Nobody else has it until it is published.
        var table = (nint*)NativeMemory.AlignedAlloc(Buckets * 64, 64);
        NativeMemory.Clear(table, Buckets * 64);
        for (int b = 0; b < Buckets; b++) table[b * BucketStride] = s_empty;
        return table;
    }

    /// <summary>Publishes the empty table in place of ours (Dispose), and returns ours for freeing after a grace period.</summary>
    private nint* PublishEmptyTable()
    {
        if (!_writeLock.IsHeldByCurrentThread) throw new InvalidOperationException("EventfdMap.PublishEmptyTable outside the write lock");
        var table = (nint*)_read.Table;
        // SAFETY: a managed field of ours; the release store publishes a table
        // that is never freed, so a late reader finds an empty map.
        Volatile.Write(ref _read.Table, (nint)s_emptyTable);
        return table;
    }

    /// <summary>
    /// Checking mode: marks a retired array as dead. Runs after its grace period
    /// (so, by invariant 2, a correct reader no longer holds it; a reader that
    /// does is the bug that checking mode exists to catch, and it only reads).
    /// </summary>
    private static void Poison(Header* map)
    {
        // SAFETY: the array is still allocated (quarantined, never freed until
        // Dispose) and i < Count indexes its entries (invariant 3). Only the
        // retiring thread writes it.
        Volatile.Write(ref map->Magic, PoisonMagic);
        for (int i = 0; i < map->Count; i++) Counters(map)[i] = null;
        for (int i = 0; i < map->Count; i++) { ValueLanes(map)[i] = 0; FdLanes(map)[i] = -1; }
    }
}
