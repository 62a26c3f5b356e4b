using Sharpvisor.Jit.Runtime;

namespace Sharpvisor.Jit;

/// <summary>
/// The one place that knows which backend each <see cref="EngineKind"/> is,
/// so that the runtime (the engine and the dispatcher) depends only on
/// <see cref="IBackend"/>, and no backend folder on another's choice.
/// </summary>
internal static class Backends
{
    public static IBackend Create(ExecutionEngine engine, EngineKind kind, int x64CodeBytes) => kind switch
    {
        EngineKind.Il => new IL.IlBackend(engine),
        EngineKind.X64 => new Threaded.ThreadedBackend(engine, x64: true, x64CodeBytes),
        _ => new Threaded.ThreadedBackend(engine, x64: false, x64CodeBytes),
    };
}
