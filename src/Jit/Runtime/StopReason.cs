namespace Sharpvisor.Jit.Runtime;

/// <summary>Why a vCPU stopped running guest code.</summary>
public enum StopReason
{
    /// <summary>The guest asked to stop (LHCALL_SHUTDOWN); <see cref="VcpuExit.GuestStatus"/> holds its status.</summary>
    Shutdown,
    /// <summary>Bad memory access, #DE, unsupported instruction, unknown hypercall, port I/O.</summary>
    Fault,
    /// <summary>Every vCPU waits and nothing can wake them.</summary>
    Deadlock,
    /// <summary>The launcher's time limit elapsed.</summary>
    Timeout,
    /// <summary>SIGINT or SIGTERM.</summary>
    Signal,
    /// <summary>A host-side failure (a bug of ours, or a resource the host ran out of).</summary>
    Error,
}
