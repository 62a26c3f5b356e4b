namespace Sharpvisor.Devices.Virtio.Queues;

/// <summary>One buffer of a validated chain: a range of guest RAM, and whether the device writes it.</summary>
public readonly record struct BufferSegment(ulong Address, uint Length, bool Writable);
