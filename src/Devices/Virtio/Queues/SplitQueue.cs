using Sharpvisor.Native;

namespace Sharpvisor.Devices.Virtio.Queues;

/// <summary>
/// The device's side of one split virtqueue (spec 2.7): where it has got to in
/// the available ring, what it has put in the used ring, and the notification
/// rules. Used by one queue thread at a time (under its gate).
/// </summary>
/// <remarks>
/// The layout was checked against RAM when the queue became ready; every ring
/// access still goes through GuestMemory's checked accessors, and a failure
/// is reported as <see cref="ChainFault.RingOutsideRam"/> rather than trusted.
/// Ordering: the available idx is read with acquire semantics before any
/// entry it covers, and the used idx is stored with release semantics after
/// the entries it publishes (GuestMemory's accesses are volatile).
/// </remarks>
public sealed class SplitQueue
{
    private readonly GuestMemory _ram;

    public SplitQueue(GuestMemory ram, QueueLayout layout, bool eventIdx, bool indirect)
    {
        _ram = ram;
        Layout = layout;
        EventIdx = eventIdx;
        Indirect = indirect;
    }

    public QueueLayout Layout { get; }

    public int Size => Layout.Size;

    /// <summary>VIRTIO_F_EVENT_IDX was negotiated: used_event and avail_event rule notifications.</summary>
    public bool EventIdx { get; }

    /// <summary>VIRTIO_F_INDIRECT_DESC was negotiated.</summary>
    public bool Indirect { get; }

    /// <summary>The next available ring slot the device will take (free-running, wraps at 2^16).</summary>
    public ushort LastAvail { get; private set; }

    /// <summary>The used idx the device has published (free-running).</summary>
    public ushort UsedIdx { get; private set; }

    /// <summary>The driver's available idx (acquire).</summary>
    public bool TryReadAvailIdx(out ushort idx) => _ram.TryRead16(Layout.Avail + SplitRing.AvailIdxOffset, out idx);

    /// <summary>The head index in the slot <see cref="LastAvail"/> names.</summary>
    public bool TryReadNextHead(out ushort head) =>
        _ram.TryRead16(Layout.Avail + SplitRing.AvailRingOffset + (ulong)(LastAvail % Size) * SplitRing.AvailEntrySize, out head);

    /// <summary>Marks the slot taken.</summary>
    public void Advance() => LastAvail++;

    // Journey: virtqueue-used
    /// <summary>
    /// Writes a used entry, then stores the used idx after it (release): a
    /// driver that reads the new idx sees the entry, and only then may the
    /// device raise its interrupt.
    /// </summary>
    public bool TryPublish(ushort head, uint written)
    {
        ulong entry = Layout.Used + SplitRing.UsedRingOffset + (ulong)(UsedIdx % Size) * SplitRing.UsedEntrySize;
        if (!_ram.TryWrite32(entry, head) || !_ram.TryWrite32(entry + 4, written)) return false;
        ushort next = (ushort)(UsedIdx + 1);
        if (!_ram.TryWrite16(Layout.Used + SplitRing.UsedIdxOffset, next)) return false;
        UsedIdx = next;
        return true;
    }

    /// <summary>
    /// Whether the driver wants an interrupt for the used entries published
    /// since the used idx was <paramref name="old"/> (spec 2.7.7.2, 2.7.10):
    /// with EVENT_IDX when the used idx crossed used_event, without it unless
    /// VIRTQ_AVAIL_F_NO_INTERRUPT is set. Fences first, so the driver's
    /// latest flags or used_event are seen after the device's used idx store.
    /// </summary>
    public bool WantsInterrupt(ushort old)
    {
        if (old == UsedIdx) return false;
        Interlocked.MemoryBarrier();
        if (EventIdx)
        {
            if (!_ram.TryRead16(Layout.Avail + SplitRing.AvailRingOffset + (ulong)Size * SplitRing.AvailEntrySize, out ushort usedEvent))
                return true;
            return EventIndex.Crossed(usedEvent, UsedIdx, old);
        }
        return !_ram.TryRead16(Layout.Avail + SplitRing.AvailFlagsOffset, out ushort flags) || (flags & SplitRing.AvailNoInterrupt) == 0;
    }

    /// <summary>
    /// With EVENT_IDX, asks to be notified once the driver makes slot
    /// <see cref="LastAvail"/> available (avail_event), then fences, so the
    /// caller's next read of the available idx cannot miss an entry the driver
    /// added without notifying.
    /// </summary>
    public bool TryArmNotification()
    {
        if (!EventIdx) return true;
        bool ok = _ram.TryWrite16(Layout.Used + SplitRing.UsedRingOffset + (ulong)Size * SplitRing.UsedEntrySize, LastAvail);
        Interlocked.MemoryBarrier();
        return ok;
    }
}
