using Sharpvisor.Jit.Runtime;

namespace Sharpvisor.Vmm;

/// <summary>What a VM is made of: RAM size and the translator backend.</summary>
public sealed record MachineConfig(ulong MemorySize, EngineKind Engine)
{
    /// <summary>Guest RAM when --mem is not given.</summary>
    public const ulong DefaultMemorySize = 64ul << 20;

    /// <summary>The most RAM a guest can have: the top GiB of the 32-bit space stays free for devices later.</summary>
    public const ulong MaxMemorySize = 3ul << 30;
}
