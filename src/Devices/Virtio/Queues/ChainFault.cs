namespace Sharpvisor.Devices.Virtio.Queues;

/// <summary>What is wrong with a descriptor chain or a ring; each one puts the device in DEVICE_NEEDS_RESET.</summary>
public enum ChainFault
{
    None,
    /// <summary>A ring (or the descriptor table) lies outside RAM.</summary>
    RingOutsideRam,
    /// <summary>The available ring's idx moved by more than the queue size since the device last looked.</summary>
    AvailIndexJump,
    /// <summary>The available ring names a head index at or past the queue size.</summary>
    HeadOutOfRange,
    /// <summary>A descriptor's next index is at or past the queue size.</summary>
    NextOutOfRange,
    /// <summary>Following next visited more descriptors than the table holds: the chain loops.</summary>
    Loop,
    /// <summary>The chain has more buffers than the queue size.</summary>
    TooLong,
    /// <summary>A buffer lies outside RAM.</summary>
    BufferOutsideRam,
    /// <summary>An indirect table lies outside RAM.</summary>
    IndirectOutsideRam,
    /// <summary>An indirect table's length is zero or not a multiple of 16.</summary>
    IndirectLength,
    /// <summary>An indirect descriptor inside an indirect table.</summary>
    NestedIndirect,
    /// <summary>A descriptor with both INDIRECT and NEXT.</summary>
    IndirectWithNext,
    /// <summary>INDIRECT without VIRTIO_F_INDIRECT_DESC negotiated.</summary>
    IndirectNotNegotiated,
    /// <summary>A next index inside an indirect table points past its end.</summary>
    IndirectNextOutOfRange,
    /// <summary>A device-readable buffer after a device-writable one.</summary>
    ReadableAfterWritable,
    /// <summary>The buffers' lengths sum past 2^32 - 1.</summary>
    LengthOverflow,
    /// <summary>The device found the buffers' directions or sizes wrong for its request (device-specific).</summary>
    Request,
}
