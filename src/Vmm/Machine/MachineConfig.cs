using Sharpvisor.Jit.Runtime;

namespace Sharpvisor.Vmm;

/// <summary>What a VM is made of: RAM size, the translator backend and the number of vCPUs.</summary>
public sealed record MachineConfig(ulong MemorySize, EngineKind Engine, int Vcpus = 1)
{
    /// <summary>Guest RAM when --mem is not given.</summary>
    public const ulong DefaultMemorySize = 64ul << 20;

    /// <summary>The most RAM a guest can have: the top GiB of the 32-bit space stays free for devices later.</summary>
    public const ulong MaxMemorySize = 3ul << 30;

    /// <summary>
    /// The most vCPUs a VM can have: each is a host thread, and 64 keeps a
    /// vCPU's stack (64 KiB apart, per the ABI) and its poll set (64
    /// descriptors) comfortable.
    /// </summary>
    public const int MaxVcpus = 64;
}
