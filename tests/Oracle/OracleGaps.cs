using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace Sharpvisor.Tests.Oracle;

/// <summary>
/// Instructions the KVM at hand does not run the way a CPU does, found by
/// probes with known answers rather than assumed. The reason they exist: where
/// KVM runs a 32-bit guest through its instruction emulator (as PVM, the
/// software-nested KVM, does for a guest without paging), the oracle is that
/// emulator, and it decodes <c>F3 0F BD</c> (lzcnt) as bsr and <c>F3 0F BC</c>
/// (tzcnt) as bsf. On hardware-virtualized KVM every probe passes and nothing
/// is skipped. Where a probe fails, or KVM's emulator lacks an instruction
/// outright (popcnt, enter with a nesting level), the engine tests compare
/// against Unicorn instead (<see cref="UnicornCpu"/>), and against the form's
/// model where Unicorn lacks it too.
/// </summary>
internal static class OracleGaps
{
    private static readonly Lazy<string?> s_lzcnt = new(() => Probe(
        a => { a.mov(ebx, 1); a.lzcnt(eax, ebx); },
        r => r.Gpr[0] == 31 ? null : $"lzcnt of 1 gave {r.Gpr[0]} instead of 31 (bsr gives 0): this KVM runs lzcnt as bsr"));

    private static readonly Lazy<string?> s_tzcnt = new(() => Probe(
        a => { a.xor(ebx, ebx); a.mov(eax, 5); a.tzcnt(eax, ebx); },
        r => r.Gpr[0] == 32 ? null : $"tzcnt of 0 gave {r.Gpr[0]} instead of 32 (bsf leaves the destination): this KVM runs tzcnt as bsf"));

    /// <summary>Null when KVM's lzcnt is lzcnt; otherwise what it does instead.</summary>
    public static string? Lzcnt => s_lzcnt.Value;

    /// <summary>Null when KVM's tzcnt is tzcnt; otherwise what it does instead.</summary>
    public static string? Tzcnt => s_tzcnt.Value;

    private static string? Probe(Action<Assembler> body, Func<X86Regs, string?> judge)
    {
        if (KvmCpu.Unusable != null) return null; // the tests skip for that reason instead
        using var cpu = new KvmCpu(0x4000);
        var a = new Assembler(32);
        body(a);
        a.hlt();
        SnippetProgram.Assemble(a, 0x1000).CopyTo(cpu.Memory[0x1000..]);
        var regs = new X86Regs { Eip = 0x1000 };
        regs.Gpr[4] = 0x3000;
        try
        {
            return judge(cpu.Run(regs));
        }
        catch (KvmExitException e)
        {
            return e.Message;
        }
    }
}
