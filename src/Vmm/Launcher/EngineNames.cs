using Sharpvisor.Jit.Runtime;

namespace Sharpvisor.Vmm.Launcher;

/// <summary>The <c>--engine</c> values and the engines they name: the one table both directions read.</summary>
public static class EngineNames
{
    private static readonly (string Name, EngineKind Kind)[] Table =
        [("il", EngineKind.Il), ("x64", EngineKind.X64), ("threaded", EngineKind.Threaded)];

    /// <summary>Every <c>--engine</c> value, in the order --help lists them.</summary>
    public static string[] All => [.. Table.Select(e => e.Name)];

    /// <summary>The <c>--engine</c> value of a kind.</summary>
    public static string Name(EngineKind kind) => Table.First(e => e.Kind == kind).Name;

    /// <summary>The kind an <c>--engine</c> value names (one the parser accepted).</summary>
    public static EngineKind Of(string name) => Table.First(e => e.Name == name).Kind;
}
