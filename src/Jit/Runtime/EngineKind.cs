using System.Runtime.CompilerServices;

namespace Sharpvisor.Jit.Runtime;

/// <summary>Which backend runs translated blocks.</summary>
public enum EngineKind
{
    /// <summary>Cold code threaded, hot regions compiled to IL (DynamicMethod). Needs dynamic code.</summary>
    Il,
    /// <summary>Pre-decoded micro-op arrays run by a dispatch loop. Always available.</summary>
    Threaded,
    /// <summary>
    /// Cold code threaded, hot blocks compiled to x86-64 machine code by our
    /// own code generator (src/Jit/X64). Needs an x86-64 Linux host but no
    /// dynamic code: the default in native AOT.
    /// </summary>
    X64,
}

public static class Engines
{
    /// <summary>True where <see cref="EngineKind.Il"/> can run (false inside the native-AOT binary).</summary>
    public static bool IsIlAvailable => RuntimeFeature.IsDynamicCodeCompiled;

    /// <summary>True where <see cref="EngineKind.X64"/> can make machine code (an x86-64 Linux host).</summary>
    public static bool IsX64Available => X64.X64Tier.IsSupported;

    public static EngineKind Default => IsIlAvailable ? EngineKind.Il : IsX64Available ? EngineKind.X64 : EngineKind.Threaded;

    /// <summary>The TSC rate the guest sees (cpuid 0x40000001 EBX, in kHz): 1 GHz, so rdtsc counts nanoseconds.</summary>
    public const uint TscKhz = 1_000_000;

    /// <summary>Guest ABI version reported in cpuid 0x40000001 EAX.</summary>
    public const uint AbiVersion = 2;
}
