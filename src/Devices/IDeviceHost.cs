using Sharpvisor.Native;

namespace Sharpvisor.Devices;

/// <summary>
/// What the virtual machine gives every device. All members are thread-safe:
/// a device calls them from its queue threads and from vCPU threads.
/// </summary>
public interface IDeviceHost
{
    /// <summary>Guest RAM, live for the device's whole life (the VM disposes devices first).</summary>
    GuestMemory Ram { get; }

    /// <summary>Makes this device's interrupt line pending. Called after the used ring's idx is stored.</summary>
    void RaiseInterrupt();

    /// <summary>
    /// The device wrote [address, address + length) of guest RAM: the VM drops
    /// the translated code there. Called before the used entry that covers the
    /// write is published, so a guest that sees the entry runs the new bytes.
    /// </summary>
    void CodeWritten(ulong address, ulong length);

    /// <summary>
    /// Writes <paramref name="bytes"/> to the VM's console output (stdout),
    /// whole, between the guest's other console writes (SV_CONSOLE_WRITE's
    /// included), and flushes them. False with <paramref name="error"/> if
    /// the output failed (a closed pipe); the bytes are then lost.
    /// </summary>
    bool WriteConsole(ReadOnlySpan<byte> bytes, out string? error);

    /// <summary>One line for stderr, complete (it names the device); the VM adds nothing.</summary>
    void Report(string line);
}
