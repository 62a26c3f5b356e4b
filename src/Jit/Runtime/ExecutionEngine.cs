using Sharpvisor.Native;

namespace Sharpvisor.Jit.Runtime;

/// <summary>
/// One VM's translator state, shared by its vCPUs: guest memory, the chosen
/// backend, the block cache and the per-page "holds code" table.
/// </summary>
public sealed unsafe partial class ExecutionEngine : IDisposable
{
    public ExecutionEngine(GuestMemory memory, EngineKind kind, Qsbr? qsbr = null)
    {
        if (kind == EngineKind.Il && !Engines.IsIlAvailable)
            throw new PlatformNotSupportedException("the IL engine needs dynamic code, which this build (native AOT) does not have; use --engine threaded");
        Memory = memory;
        Kind = kind;
        Qsbr = qsbr;
    }

    public GuestMemory Memory { get; }
    public EngineKind Kind { get; }
    public Qsbr? Qsbr { get; }

    public void Dispose() { }
}
