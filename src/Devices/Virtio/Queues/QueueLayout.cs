using Sharpvisor.Native;

namespace Sharpvisor.Devices.Virtio.Queues;

/// <summary>
/// Where one queue's three parts lie, as the driver set them before writing
/// QueueReady. Immutable: the transport builds one when the queue becomes
/// ready and the queue's thread reads it, so the two never share mutable state.
/// </summary>
public sealed record QueueLayout(int Size, ulong DescriptorTable, ulong Avail, ulong Used)
{
    /// <summary>Null if the layout is usable in <paramref name="ram"/>, else why not (one clause, for a report line).</summary>
    public string? Check(GuestMemory ram)
    {
        if (!SplitRing.IsValidSize((uint)Size))
            return $"queue size {Size} is not a power of two from 1 to {SplitRing.MaxSize}";
        return CheckPart("descriptor table", DescriptorTable, SplitRing.DescriptorTableBytes(Size), SplitRing.DescriptorTableAlignment, ram)
            ?? CheckPart("available ring", Avail, SplitRing.AvailBytes(Size), SplitRing.AvailAlignment, ram)
            ?? CheckPart("used ring", Used, SplitRing.UsedBytes(Size), SplitRing.UsedAlignment, ram);
    }

    private static string? CheckPart(string what, ulong address, ulong length, int alignment, GuestMemory ram)
    {
        if (address % (ulong)alignment != 0)
            return $"{what} at 0x{address:x} is not {alignment}-byte aligned";
        if (!ram.Contains(address, length))
            return $"{what} at 0x{address:x} ({length} bytes) lies outside RAM (0x{ram.Size:x} bytes)";
        return null;
    }
}
