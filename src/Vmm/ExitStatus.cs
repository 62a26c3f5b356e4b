using Sharpvisor.Jit.Runtime;

namespace Sharpvisor.Vmm;

/// <summary>
/// Every status <c>sharpvisor</c> exits with, in one place (Firecracker's
/// rule); README and <c>--help</c> print the same table. 0-255 is also what a
/// guest passes to LHCALL_SHUTDOWN, so a guest's own status comes through
/// unchanged and a caller tells it from ours only by the stderr line we add.
/// The 64-70 values follow BSD sysexits.h, so shell users know them.
/// </summary>
public enum ExitStatus
{
    /// <summary>The guest shut down with status 0 (any 0-255 from the guest passes through).</summary>
    Ok = 0,
    /// <summary>A bad option or argument (sysexits EX_USAGE), including <c>--engine il</c> in the native-AOT build.</summary>
    Usage = 64,
    /// <summary>The image is not a loadable ELF32 i386 executable or flat binary (EX_DATAERR).</summary>
    BadImage = 65,
    /// <summary>The image file does not exist or cannot be read (EX_NOINPUT).</summary>
    NoInput = 66,
    /// <summary>A --notify or --irq TARGET is unavailable (EX_UNAVAILABLE): fd:N not open, or not an eventfd; unix:PATH not a socket, or nobody listening; exec:CMD's program not found or not executable.</summary>
    Unavailable = 69,
    /// <summary>A host-side failure: a bug of ours or a resource the host ran out of (EX_SOFTWARE).</summary>
    Internal = 70,
    /// <summary>Bad guest memory access, #DE, unsupported instruction, port I/O, unknown hypercall.</summary>
    GuestFault = 80,
    /// <summary>Every vCPU waits for an interrupt (no timeout) and no interrupt source is attached.</summary>
    Deadlock = 81,
    /// <summary><c>--timeout</c> elapsed; the vCPU was stopped.</summary>
    Timeout = 82,
    /// <summary>SIGINT (128 + 2) stopped the vCPU cleanly.</summary>
    Interrupted = 130,
    /// <summary>SIGTERM (128 + 15) stopped the vCPU cleanly.</summary>
    Terminated = 143,
}

public static class ExitStatuses
{
    /// <summary>The process status for a vCPU stop.</summary>
    public static int For(VcpuExit exit) => exit.Reason switch
    {
        StopReason.Shutdown => (exit.GuestStatus ?? 0) & 0xff,
        StopReason.Fault => (int)ExitStatus.GuestFault,
        StopReason.Deadlock => (int)ExitStatus.Deadlock,
        StopReason.Timeout => (int)ExitStatus.Timeout,
        // The shell's convention for "killed by signal N", though we exit
        // normally: a script cannot tell our clean stop from a default kill,
        // which is what it expects from a program it interrupted.
        StopReason.Signal => 128 + (exit.Signal > 0 ? exit.Signal : 2),
        _ => (int)ExitStatus.Internal,
    };

    /// <summary>The table for <c>--help</c> (README carries the same one).</summary>
    public const string HelpTable = """
        Exit status:
          0-255  the guest's LHCALL_SHUTDOWN status
          64     usage: a bad option or argument (also --engine il in the native-AOT build)
          65     bad image: not a loadable ELF32 i386 executable or flat binary
          66     the image file is missing or unreadable
          69     a --notify/--irq target is unavailable (fd:N not open or not an eventfd,
                 no listener at unix:PATH, exec:CMD's program not found or not executable),
                 or the --control socket cannot be created
          70     internal error (one line on stderr, never a stack trace)
          80     guest fault: bad memory access, #DE, unsupported instruction, unknown hypercall
          81     deadlock: every vCPU waits for an interrupt nothing can raise (never with --control)
          82     --timeout elapsed
          130    SIGINT, 143 SIGTERM: the vCPUs were stopped cleanly
        """;
}
