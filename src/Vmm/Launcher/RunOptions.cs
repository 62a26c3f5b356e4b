using Sharpvisor.Jit.Runtime;

namespace Sharpvisor.Vmm.Launcher;

/// <summary>What <c>sharpvisor run</c> was asked to do, after parsing.</summary>
public sealed record RunOptions(
    string ImagePath,
    EngineKind Engine,
    ulong MemorySize,
    uint? FlatAddress,
    bool Regs,
    TimeSpan? Timeout,
    IReadOnlyList<NotifySpec>? Notify = null,
    IReadOnlyList<IrqSpec>? Irqs = null,
    int Vcpus = 1,
    bool Stats = false,
    string? ControlPath = null,
    IReadOnlyList<Devices.DeviceSpec>? Devices = null);
