namespace Sharpvisor.Devices.Virtio.Queues;

/// <summary>
/// The split virtqueue's layout in guest RAM (spec 2.7): the facts every
/// access to a ring is computed from, in one place.
/// </summary>
public static class SplitRing
{
    /// <summary>The largest queue size a device here offers (QueueNumMax).</summary>
    public const int MaxSize = 256;

    // struct virtq_desc { le64 addr; le32 len; le16 flags; le16 next; }
    public const int DescriptorSize = 16;
    public const int DescriptorAddressOffset = 0;
    public const int DescriptorLengthOffset = 8;
    public const int DescriptorFlagsOffset = 12;
    public const int DescriptorNextOffset = 14;

    // Descriptor flags (spec 2.7.5).
    public const ushort DescNext = 1;
    public const ushort DescWrite = 2;
    public const ushort DescIndirect = 4;

    // struct virtq_avail { le16 flags; le16 idx; le16 ring[N]; le16 used_event; }
    public const int AvailFlagsOffset = 0;
    public const int AvailIdxOffset = 2;
    public const int AvailRingOffset = 4;
    public const int AvailEntrySize = 2;
    public const ushort AvailNoInterrupt = 1;

    // struct virtq_used { le16 flags; le16 idx; struct { le32 id; le32 len; } ring[N]; le16 avail_event; }
    public const int UsedFlagsOffset = 0;
    public const int UsedIdxOffset = 2;
    public const int UsedRingOffset = 4;
    public const int UsedEntrySize = 8;

    // Alignments the driver must give each part (spec 2.7.2's table).
    public const int DescriptorTableAlignment = 16;
    public const int AvailAlignment = 2;
    public const int UsedAlignment = 4;

    public static ulong DescriptorTableBytes(int size) => (ulong)DescriptorSize * (ulong)size;

    /// <summary>flags, idx, the ring and used_event.</summary>
    public static ulong AvailBytes(int size) => 6 + (ulong)AvailEntrySize * (ulong)size;

    /// <summary>flags, idx, the ring and avail_event.</summary>
    public static ulong UsedBytes(int size) => 6 + (ulong)UsedEntrySize * (ulong)size;

    /// <summary>Queue sizes are powers of two from 1 to <see cref="MaxSize"/> (spec 2.7: "Queue Size ... a power of 2").</summary>
    public static bool IsValidSize(uint size) => size is >= 1 and <= MaxSize && (size & (size - 1)) == 0;
}
