using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.IR;

namespace Sharpvisor.Jit.Runtime;

/// <summary>
/// What the engine and its vCPUs ask of the backend that runs translated
/// blocks (threaded code, with IL regions or x64 machine code as its hot
/// tier). The engine holds one; the dispatcher never asks which it is.
/// </summary>
internal unsafe interface IBackend : IDisposable
{
    /// <summary>
    /// Runs <paramref name="vcpu"/>'s dispatch loop with this backend's
    /// per-block calls: <c>vcpu.Dispatch&lt;TRunner&gt;()</c>. One interface
    /// call per <see cref="Vcpu.Run"/>, none per block.
    /// </summary>
    VcpuExit Run(Vcpu vcpu);

    /// <summary>The engine invalidated <paramref name="block"/> (under its lock): drop its code and the links into it.</summary>
    void Retire(Block block);

    /// <summary>Where the backend's per-vCPU frame starts, counted from the vCPU's <see cref="CpuState"/> (0: no frame).</summary>
    int FrameOffset { get; }

    /// <summary>Bytes of that frame.</summary>
    int FrameSize { get; }

    /// <summary>Fills a new vCPU's frame (<see cref="Vcpu.BackendFrame"/>).</summary>
    void InitFrame(Vcpu vcpu, void* frame);

    /// <summary>The x64 tier's figures (zeros without one).</summary>
    X64TierStats X64Stats { get; }

    /// <summary>Why the x64 engine runs without machine code, or null.</summary>
    string? X64TierProblem { get; }
}

/// <summary>
/// A backend's per-block calls, as static members of a struct: the
/// dispatcher (<see cref="Vcpu.Dispatch{TRunner}"/>) is instantiated for
/// each runner, so these calls are direct and inlined, not virtual.
/// </summary>
internal unsafe interface IBlockRunner
{
    /// <summary>
    /// Runs <paramref name="block"/>, entered by exit <paramref name="how"/>
    /// of <paramref name="prev"/> (null on the first block); may leave
    /// <paramref name="block"/> at a later block it chained into.
    /// </summary>
    static abstract BlockExit Execute(Vcpu vcpu, CpuState* s, Block? prev, BlockExit how, ref Block block);

    /// <summary>The dispatcher just linked exit <paramref name="how"/> of <paramref name="from"/> to <paramref name="to"/>.</summary>
    static abstract void Linked(Vcpu vcpu, Block from, BlockExit how, Block to);
}
