using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Jit.Threaded;

namespace Sharpvisor.Jit.IL;

/// <summary>
/// The IL engine: cold blocks run threaded, one at a time (so that every
/// block entry passes through the dispatcher and counts towards tiering),
/// hot ones as compiled regions (<see cref="RegionCompiler"/>).
/// </summary>
internal sealed unsafe class IlBackend : IThreadedBackend
{
    public IlBackend(ExecutionEngine engine) => Store = new ThreadedCodeStore(engine, x64: null);

    public ThreadedCodeStore Store { get; }

    public VcpuExit Run(Vcpu vcpu) => vcpu.Dispatch<RegionRunner>();

    public void Retire(Block block) => Store.RetireLocked(block);

    public int FrameOffset => 0;

    public int FrameSize => 0;

    public void InitFrame(Vcpu vcpu, void* frame) { }

    public X64TierStats X64Stats => default;

    public string? X64TierProblem => null;

    public void Dispose() => Store.Dispose();

    private struct RegionRunner : IBlockRunner
    {
        /// <summary>Runs one block: its compiled region if there is one, else its threaded code.</summary>
        public static BlockExit Execute(Vcpu vcpu, CpuState* s, Block? prev, BlockExit how, ref Block block)
        {
            // A jump table or a return that left a cold block: the region
            // compiler will want to know where such jumps go.
            if (how == BlockExit.Continue && prev != null && !vcpu.PrevRanRegion && prev.Ops[^1].Kind == Uop.JmpInd)
                prev.NoteIndirectTarget(s->Eip);
            vcpu._stats.Blocks++;
            vcpu.PrevRanRegion = false;
            if (block.Region is { } region)
            {
                vcpu._stats.RegionEntries++;
                vcpu.PrevRanRegion = true;
                return region.Entry(s, vcpu);
            }
            if (++block.Executions >= vcpu.Engine.HotThreshold && !block.RegionTried)
            {
                block.RegionTried = true;
                if (RegionCompiler.TryCompile(vcpu, block) is { } compiled)
                {
                    vcpu._stats.RegionEntries++;
                    vcpu.PrevRanRegion = true;
                    return compiled.Entry(s, vcpu);
                }
            }
            // The cold tier: threaded code, one block at a time.
            return ThreadedCode.Run(vcpu, s, ref block, chain: false);
        }

        // Regions branch between their blocks themselves; threaded code does not chain here.
        public static void Linked(Vcpu vcpu, Block from, BlockExit how, Block to) { }
    }
}
