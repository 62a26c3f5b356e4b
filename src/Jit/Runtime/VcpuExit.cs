namespace Sharpvisor.Jit.Runtime;

/// <summary>
/// How and why a vCPU stopped: data, never an exception (lguest's kill_guest).
/// For a fault, the vCPU's registers are as they were before the faulting
/// instruction, and EIP points at it.
/// </summary>
/// <param name="Reason">The kind of stop.</param>
/// <param name="Message">One line for a human: what happened, where (address, guest EIP).</param>
/// <param name="GuestStatus">The LHCALL_SHUTDOWN status (0-255), for <see cref="StopReason.Shutdown"/> only.</param>
/// <param name="Signal">The signal number for <see cref="StopReason.Signal"/>.</param>
public sealed record VcpuExit(StopReason Reason, string Message, int? GuestStatus = null, int Signal = 0)
{
    public static VcpuExit Shutdown(int status) => new(StopReason.Shutdown, $"guest shut down with status {status}", status);

    public static VcpuExit Fault(string message) => new(StopReason.Fault, message);
}
