using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Sharpvisor.Native;

// Delivery counts: one block of counters per entry, a line per reader slot,
// written by the notify path alone and folded into per-value totals when the
// entry's grace period ends (see the class remarks in EventfdMap.cs).
public sealed unsafe partial class EventfdMap
{
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
            FreeCounters(counters);
        }
    }

    private long Sum(long* counters)
    {
        long sum = 0;
        // SAFETY: a block in _liveCounters (or being retired from it, under
        // _countsLock) is not freed yet, and has CounterSlots lines (invariant 3).
        for (int slot = 0; slot < _read.CounterSlots; slot++) sum += Volatile.Read(ref counters[slot * CounterStride]);
        return sum;
    }

    /// <summary>A zeroed block of delivery counters, one line per slot.</summary>
    private long* AllocateCounters()
    {
        nuint bytes = (nuint)(_read.CounterSlots * CounterStride * sizeof(long));
        // SAFETY: AlignedAlloc throws rather than return null; CounterSlots
        // lines of CounterStride longs, the shape CountDelivery and Sum index.
        var counters = (long*)NativeMemory.AlignedAlloc(bytes, 64);
        NativeMemory.Clear(counters, bytes);
        return counters;
    }

    /// <summary>Frees a counter block no reader can reach (after its entry's grace period, or never published).</summary>
    private static void FreeCounters(long* counters) =>
        // SAFETY: from AllocateCounters; the caller holds the only reference
        // (retired from _liveCounters under _countsLock, or never published).
        NativeMemory.AlignedFree(counters);

    /// <summary>
    /// The notify path's one write: one more delivery in <paramref name="slot"/>'s
    /// line of <paramref name="counters"/> (null: the map counts nothing).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void CountDelivery(long* counters, int slot)
    {
        // The slot is the caller's number, not ours: this compare is the one
        // check the invariants cannot replace, and it is what keeps a wrong
        // slot from writing past the block.
        if (counters == null || (uint)slot >= (uint)_read.CounterSlots) return;
        // SAFETY: the block belongs to an entry of the array the caller loaded
        // while online, so it is live until the caller's next quiescent state
        // (blocks are freed after the grace period following their entry's
        // removal); slot < CounterSlots lines. No other thread writes this
        // word: a slot belongs to one vCPU (the constructor's contract). Were
        // two threads to share a slot, they could lose counts, never memory.
        counters[slot * CounterStride]++;
    }
}
