using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Runtime;

namespace Sharpvisor.Jit.IL;

// Journey: tiering
/// <summary>
/// Tiering: when a block gets hot, gathers the blocks reachable from it by
/// direct branches (and the return points of the calls among them) into a
/// region and compiles the region into one DynamicMethod, so a hot loop runs
/// as one method with guest registers in IL locals.
/// </summary>
/// <remarks>
/// Why two tiers: compiling a region costs 100-400 µs, as much as
/// translating a few thousand instructions, and most code runs only a few
/// times. So every block starts in the cheap threaded tier, and only a
/// block that has run <c>HotThreshold</c> (64) times pays for the JIT. A
/// region that fails to compile keeps running threaded: slower, never
/// wrong.
/// </remarks>
internal static class RegionCompiler
{
    /// <summary>Most blocks in one region: compile time grows with it (~110 µs for a small method here).</summary>
    public const int MaxBlocks = 24;

    [UnconditionalSuppressMessage("AOT", "IL3050", Justification = "Only called when Engines.IsIlAvailable (checked by the ExecutionEngine constructor).")]
    public static CompiledRegion? TryCompile(Vcpu vcpu, Block head)
    {
        if (!Engines.IsIlAvailable)
            return null;
        long t0 = Stopwatch.GetTimestamp();
        var blocks = Gather(vcpu, head);
        CompiledRegion? region;
        try
        {
            region = new RegionEmitter(vcpu, blocks).Compile();
        }
        catch (Exception e) when (e is InvalidProgramException or NotSupportedException or InvalidOperationException)
        {
            // A region we failed to compile keeps running threaded: slower, never wrong.
            Interlocked.Increment(ref vcpu.Engine._regionFailures);
            vcpu.Engine.LastRegionFailure = $"{head}: {e.GetType().Name}: {e.Message}";
            return null;
        }
        Interlocked.Add(ref vcpu.Engine._regionTicks, Stopwatch.GetTimestamp() - t0);
        Interlocked.Increment(ref vcpu.Engine._regions);
        // Published under the engine's lock, so that an invalidation either
        // sees the region (and drops it) or happened before (and we drop it).
        return vcpu.Engine.AttachRegion(head, region) ? region : null;
    }

    private static List<Block> Gather(Vcpu vcpu, Block head)
    {
        var list = new List<Block> { head };
        var seen = new HashSet<uint> { head.Start };
        var next = new List<uint>(4);
        for (int i = 0; i < list.Count && list.Count < MaxBlocks; i++)
        {
            var b = list[i];
            ref readonly MicroOp last = ref b.Ops[^1];
            ref readonly UopInfo facts = ref UopTable.Of(last.Kind);
            bool indirect = facts.Has(UopTraits.Branch) && !facts.Has(UopTraits.TargetInImm | UopTraits.TargetInDisp);
            next.Clear();
            if (facts.Has(UopTraits.TargetInImm)) next.Add(last.Imm);
            if (facts.Has(UopTraits.TargetInDisp)) next.Add(last.Disp);
            if (facts.Has(UopTraits.Conditional)) next.Add(last.Next);
            // A call's return point: the callee's ret can branch back to it inside the region.
            if (facts.Has(UopTraits.Branch) && !facts.Has(UopTraits.Conditional) && IsCall(b)) next.Add(last.Next);
            // Where an indirect exit went while cold (a jump table's cases):
            // inside the region it becomes a compare and a branch.
            if (indirect) next.AddRange(b.IndirectTargets);
            for (int k = 0; k < next.Count && list.Count < MaxBlocks; k++)
            {
                uint target = next[k];
                if (!seen.Add(target)) continue;
                var t = vcpu.BlockAt(target);
                if (t == null || t.Invalid) continue;
                // Code that never ran is most likely a cold path: leave it out.
                if (t.Executions == 0 && t.Start != last.Next) continue;
                list.Add(t);
            }
        }
        return list;
    }

    private static bool IsCall(Block b) => (b.Ops[^1].Flags & UopFlags.Call) != 0;
}
