namespace Sharpvisor.Jit.Runtime;

/// <summary>
/// How and why a vCPU stopped: data, never an exception (lguest's kill_guest).
/// For a fault, the vCPU's registers are as they were before the faulting
/// instruction, and EIP points at it.
/// </summary>
/// <param name="Reason">The kind of stop.</param>
/// <param name="Message">One line for a human: what happened, where (address, guest EIP); a fault's comes from its record.</param>
/// <param name="GuestStatus">The LHCALL_SHUTDOWN status (0-255), for <see cref="StopReason.Shutdown"/> only.</param>
/// <param name="Signal">The signal number for <see cref="StopReason.Signal"/>.</param>
public sealed record VcpuExit(StopReason Reason, string Message, int? GuestStatus = null, int Signal = 0)
{
    /// <summary>The guest fault as data, for a stop made by <see cref="Of"/>; null for any other stop.</summary>
    public GuestFault? Fault { get; init; }

    public static VcpuExit Shutdown(int status) => new(StopReason.Shutdown, $"guest shut down with status {status}", status);

    /// <summary>The stop a guest fault makes; its message is the record's.</summary>
    public static VcpuExit Of(GuestFault fault) => new(StopReason.Fault, fault.Describe()) { Fault = fault };
}
