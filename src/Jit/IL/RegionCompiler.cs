using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Runtime;

namespace Sharpvisor.Jit.IL;

/// <summary>Compiles hot regions of blocks into one DynamicMethod each (placeholder until the IL backend lands).</summary>
internal static class RegionCompiler
{
    public static CompiledRegion? TryCompile(Vcpu vcpu, Block head) => null;
}
