namespace Sharpvisor.Vmm.Hypercalls;

/// <summary>
/// Hypercall numbers (EAX at <c>int $0x1f</c>), guest ABI v1. Below 32 they
/// are lguest's numbers with lguest's meaning, so an lguest-minded guest reads
/// naturally; Sharpvisor's own calls start at 32.
/// </summary>
public static class HypercallNumber
{
    /// <summary>EBX &amp; 0xff = exit status; the VM stops.</summary>
    public const uint LhcallShutdown = 2;
    /// <summary>EBX = timeout in µs (0 = none); EAX = lowest pending interrupt, or 0 on timeout.</summary>
    public const uint LhcallHalt = 10;
    /// <summary>EBX = value (nonzero); EAX = 1 if it reached an eventfd, 0 on a miss.</summary>
    public const uint LhcallNotify = 17;
    /// <summary>EBX = address, ECX = length; EAX = bytes written to the console.</summary>
    public const uint SvConsoleWrite = 32;

    /// <summary>The most SV_CONSOLE_WRITE writes in one call; the guest loops on EAX for more.</summary>
    public const int ConsoleWriteMax = 64 * 1024;
}
