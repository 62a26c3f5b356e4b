namespace Sharpvisor.Jit.Runtime;

/// <summary>
/// What the engine needs from the machine around it: the VMM implements it.
/// Both calls come on the vCPU's own thread, in line from translated code, with
/// <see cref="Vcpu.State"/> exact (registers written back, EFLAGS computable,
/// EIP at the instruction after the <c>int $0x1f</c> or <c>hlt</c>).
/// </summary>
public interface IVcpuHost
{
    /// <summary>
    /// <c>int $0x1f</c>: EAX = call number, EBX/ECX/EDX/ESI = arguments; the
    /// host writes the result to EAX. Returns null to carry on with the next
    /// instruction, or the reason to stop the vCPU.
    /// </summary>
    VcpuExit? Hypercall(Vcpu vcpu);

    /// <summary>
    /// <c>hlt</c>: wait until an interrupt is pending (without consuming it).
    /// Returns null to carry on, or the reason to stop (a deadlock when nothing
    /// can ever wake the vCPU).
    /// </summary>
    VcpuExit? Halt(Vcpu vcpu);

    /// <summary>
    /// Whether a device's register window holds <paramref name="address"/>
    /// (outside RAM). The engines ask only when an access misses RAM, so RAM
    /// accesses never pay for devices.
    /// </summary>
    bool ClaimsMmio(uint address) => false;

    /// <summary>
    /// A plain load (<paramref name="write"/> false: the device's value goes
    /// to <paramref name="value"/>) or store of <paramref name="size"/> bytes
    /// (1, 2 or 4) at <paramref name="address"/>, which <see cref="ClaimsMmio"/>
    /// claimed, on the vCPU's thread with the guest's state exact (EIP at the
    /// instruction). Returns null when done, or one line naming the device,
    /// the offset and the size for a guest fault.
    /// </summary>
    string? Mmio(Vcpu vcpu, uint address, int size, bool write, ref uint value) => $"no device at 0x{address:x8}";
}
