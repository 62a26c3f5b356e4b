namespace Sharpvisor.Vmm.Devices;

/// <summary>
/// Where devices sit in the guest's physical address space and which
/// interrupt lines and notify values they hold (docs/guest-abi.md, "Devices"):
/// the facts, in one place, that the bus, the parser and the messages use.
/// </summary>
public static class DeviceWindows
{
    /// <summary>Device 0's register window; above the largest RAM (3 GiB), so RAM never overlaps a window.</summary>
    public const uint Base = 0xD000_0000;

    /// <summary>Each window's size: one page, the transport's register window.</summary>
    public const uint Size = Sharpvisor.Devices.Virtio.Mmio.MmioTransport.WindowSize;

    /// <summary>Most devices a VM has; their lines are 16 to 31, the upper half of the interrupt lines.</summary>
    public const int Max = 16;

    /// <summary>Device 0's interrupt line.</summary>
    public const int FirstLine = 16;

    /// <summary>Device <paramref name="index"/>'s window.</summary>
    public static uint Window(int index) => Base + Size * (uint)index;

    /// <summary>Device <paramref name="index"/>'s interrupt line.</summary>
    public static int Line(int index) => FirstLine + index;

    /// <summary>
    /// The notify value of device <paramref name="index"/>'s queue
    /// <paramref name="queue"/>: its window's address plus the queue's index,
    /// so a value in <c>--stats</c> says which device and queue it is.
    /// </summary>
    public static uint Doorbell(int index, int queue) => Window(index) + (uint)queue;

    /// <summary>True when <paramref name="address"/> lies in the range the windows of <see cref="Max"/> devices take.</summary>
    public static bool InRange(uint address) => address - Base < Size * Max;
}
