using System.Runtime.CompilerServices;

namespace Sharpvisor.Jit.Runtime;

/// <summary>Which backend runs translated blocks.</summary>
public enum EngineKind
{
    /// <summary>Cold code threaded, hot regions compiled to IL (DynamicMethod). Needs dynamic code.</summary>
    Il,
    /// <summary>Pre-decoded micro-op arrays run by a dispatch loop. Always available; the default in native AOT.</summary>
    Threaded,
}

public static class Engines
{
    /// <summary>True where <see cref="EngineKind.Il"/> can run (false inside the native-AOT binary).</summary>
    public static bool IsIlAvailable => RuntimeFeature.IsDynamicCodeCompiled;

    public static EngineKind Default => IsIlAvailable ? EngineKind.Il : EngineKind.Threaded;

    /// <summary>The TSC rate the guest sees (cpuid 0x40000001 EBX, in kHz): 1 GHz, so rdtsc counts nanoseconds.</summary>
    public const uint TscKhz = 1_000_000;

    /// <summary>Guest ABI version reported in cpuid 0x40000001 EAX.</summary>
    public const uint AbiVersion = 1;
}
