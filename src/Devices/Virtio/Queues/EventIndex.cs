namespace Sharpvisor.Devices.Virtio.Queues;

/// <summary>The event index rule (spec 2.7.10, VIRTIO_F_EVENT_IDX).</summary>
public static class EventIndex
{
    /// <summary>
    /// True when moving an index from <paramref name="old"/> to
    /// <paramref name="current"/> passed <paramref name="eventIndex"/>: the
    /// other side asked to be told once the index went beyond eventIndex, and
    /// now it has. All arithmetic wraps at 16 bits, as the indices do.
    /// </summary>
    public static bool Crossed(ushort eventIndex, ushort current, ushort old) =>
        (ushort)(current - eventIndex - 1) < (ushort)(current - old);
}
