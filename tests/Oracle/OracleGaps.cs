using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;
using static Sharpvisor.Jit.Cpu.Eflags;

namespace Sharpvisor.Tests.Oracle;

/// <summary>
/// One of Unicorn's known errors: on this form, these flags and registers are
/// not compared when Unicorn gave the expected results, and this is why.
/// </summary>
/// <param name="Registers">Bit n is GPR n in x86 order (EAX = bit 0), as in <see cref="Undefined"/>.</param>
internal sealed record UnicornGap(string Form, uint Flags, byte Registers, string Why);

/// <summary>
/// Where an oracle is known to be wrong, found by comparison with known
/// answers or with the other oracle rather than assumed.
/// <para>
/// KVM's, probed at run time since they depend on the KVM at hand: where KVM
/// runs a 32-bit guest through its instruction emulator (as PVM, the
/// software-nested KVM, does for a guest without paging), the oracle is that
/// emulator, and it decodes <c>F3 0F BD</c> (lzcnt) as bsr and <c>F3 0F BC</c>
/// (tzcnt) as bsf. On hardware-virtualized KVM every probe passes and nothing
/// is skipped. Where a probe fails, or KVM's emulator lacks an instruction
/// outright (popcnt, enter with a nesting level), the engine tests compare
/// against Unicorn instead (<see cref="UnicornCpu"/>), and against the form's
/// model where Unicorn lacks it too.
/// </para>
/// <para>
/// Unicorn's, a table (<see cref="Unicorn"/>), since the library is one
/// version everywhere (Debian's libunicorn2, 2.0.1): what it gets wrong on
/// the forms it runs, masked wherever it is the oracle (the reference on a
/// machine without KVM, or the stand-in above). UnicornMatchesKvmTests keeps
/// the table honest on a machine with KVM: every form must agree between the
/// two oracles outside the table's masks, and every masked flag and register
/// must differ in at least one vector, so a row is neither missing nor wider
/// than the error. An instruction Unicorn lacks altogether (popcnt: it
/// raises #UD) needs no row: it is reported as invalid, never as a result,
/// and the form's model stands in.
/// </para>
/// </summary>
internal static class OracleGaps
{
    /// <summary>Unicorn's errors on the forms of <see cref="InstructionForms"/>, each seen against KVM on every vector it names.</summary>
    public static readonly IReadOnlyList<UnicornGap> Unicorn =
    [
        new("lock neg m32", SF | PF, 0,
            "Unicorn 2.0.1 (QEMU 5's translator) computes SF and PF of lock neg from the operand before the negation "
            + "(e.g. [mem]=ef40895b gives SF=1 PF=0, the flags of ef40895b; KVM gives SF=0 PF=1, those of 10bf76a5), "
            + "while neg without lock is right. The stored result, ZF (x and -x are zero together), CF, OF and AF agree with KVM."),
    ];

    private static readonly Dictionary<string, UnicornGap> s_unicornByForm = Unicorn.ToDictionary(g => g.Form);

    /// <summary>Unicorn's known error on the form, or null where it has none.</summary>
    public static UnicornGap? UnicornGapFor(string form) => s_unicornByForm.GetValueOrDefault(form);

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
