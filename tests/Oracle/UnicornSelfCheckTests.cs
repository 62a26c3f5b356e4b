using Iced.Intel;
using Sharpvisor.Jit.Cpu;
using static Iced.Intel.AssemblerRegisters;
using static Sharpvisor.Tests.Oracle.UnicornInterop;

namespace Sharpvisor.Tests.Oracle;

/// <summary>
/// Checks Unicorn as an oracle against answers known here, before it is
/// trusted with the forms KVM cannot run: that lzcnt is lzcnt and tzcnt is
/// tzcnt (not bsr and bsf), that the count instructions set the flags the
/// SDM gives, that a fault is reported rather than taken for a result, and that the snippet harness (popfd in, pushfd out, the record
/// layout) survives the trip through Unicorn.
/// </summary>
public class UnicornSelfCheckTests
{
    internal static void SkipUnlessUsable()
    {
        if (UnicornCpu.Unusable is { } reason) Assert.Skip(reason);
    }

    /// <summary>Runs <paramref name="body"/> then hlt from EFLAGS with every arithmetic flag set, so that clearing shows.</summary>
    private static X86Regs RunBody(Action<Assembler> body, int cpuModel = UC_CPU_X86_HASWELL)
    {
        using var cpu = new UnicornCpu(0x4000, cpuModel);
        var a = new Assembler(32);
        body(a);
        a.hlt();
        byte[] code = SnippetProgram.Assemble(a, 0x1000);
        cpu.Write(0x1000, code);
        var regs = new X86Regs { Eip = 0x1000, Eflags = Eflags.Reserved1 | Eflags.Arith };
        regs.Gpr[4] = 0x3000;
        return cpu.Run(regs, until: 0x1000 + (uint)code.Length - 1);
    }

    /// <summary>
    /// Unicorn 2.0.1 (Debian's) gives every x86 model one fixed feature set,
    /// without POPCNT, so popcnt raises #UD there whatever the pin. It must
    /// never give a wrong answer: #UD makes the popcnt forms fall back to
    /// their model, a wrong count would be trusted.
    /// </summary>
    [Theory]
    [InlineData(0xF0F0_0001u, 9u, Eflags.Reserved1)]
    [InlineData(0xFFFF_FFFFu, 32u, Eflags.Reserved1)]
    [InlineData(0u, 0u, Eflags.Reserved1 | Eflags.ZF)]
    public void PopcntEaxEbx_OnUnicorn_GivesTheCountAndClearsAllButZf_OrIsInvalid(uint source, uint count, uint eflags)
    {
        SkipUnlessUsable();
        X86Regs r;
        try { r = RunBody(a => { a.mov(ebx, source); a.popcnt(eax, ebx); }); }
        catch (UnicornException e) when (e.Err == UC_ERR_INSN_INVALID) { return; }
        Assert.Equal(count, r.Gpr[0]);
        Assert.Equal(eflags, r.Eflags);
    }

    /// <summary>The proof Unicorn runs lzcnt, not bsr (as nested KVM does): bsr of 1 is 0, lzcnt of 1 is 31.</summary>
    [Theory]
    [InlineData(1u, 31u, 0u)]
    [InlineData(0x8000_0000u, 0u, Eflags.ZF)]
    [InlineData(0u, 32u, Eflags.CF)]
    public void LzcntEaxEbx_OnUnicorn_CountsLeadingZeros(uint source, uint count, uint cfZf)
    {
        SkipUnlessUsable();
        X86Regs r = RunBody(a => { a.mov(ebx, source); a.lzcnt(eax, ebx); });
        Assert.Equal(count, r.Gpr[0]);
        Assert.Equal(cfZf, r.Eflags & (Eflags.CF | Eflags.ZF));
    }

    /// <summary>bsf of 0 leaves the destination (5 here); tzcnt of 0 gives the operand size.</summary>
    [Theory]
    [InlineData(0x100u, 8u, 0u)]
    [InlineData(1u, 0u, Eflags.ZF)]
    [InlineData(0u, 32u, Eflags.CF)]
    public void TzcntEaxEbx_OnUnicorn_CountsTrailingZeros(uint source, uint count, uint cfZf)
    {
        SkipUnlessUsable();
        X86Regs r = RunBody(a => { a.mov(ebx, source); a.mov(eax, 5); a.tzcnt(eax, ebx); });
        Assert.Equal(count, r.Gpr[0]);
        Assert.Equal(cfZf, r.Eflags & (Eflags.CF | Eflags.ZF));
    }

    [Fact]
    public void CpuModel_ReadsBackAsHaswell()
    {
        SkipUnlessUsable();
        using var cpu = new UnicornCpu(0x1000);
        Assert.Equal(UC_CPU_X86_HASWELL, cpu.CpuModel);
        Assert.Equal("2.0", UnicornCpu.Version);
    }

    /// <summary>The harness on Unicorn: popfd loads each vector's flags, pushfd reads them back, every input lands in its slot.</summary>
    [Fact]
    public void Nop_OnUnicorn_LeavesEveryInputInItsPlaceInTheRecord()
    {
        SkipUnlessUsable();
        var form = new Form
        {
            Name = "self-check: nop with memory (Unicorn)",
            Emit = (a, _) => a.nop(),
            Windows = [Window.Data16, Window.Stack],
            VaryDf = true,
        };
        var program = SnippetProgram.Build(form);
        VectorResult[] results = SnippetRunner.OnUnicorn(program);
        for (int i = 0; i < program.Vectors.Length; i++)
        {
            Vector v = program.Vectors[i];
            Assert.Equal(v.Regs, results[i].Regs);
            Assert.Equal(v.Flags, results[i].Eflags);
            Assert.Equal(v.Mem, results[i].Mem);
        }
    }

    /// <summary>A fault is an error with the EIP, not a result: ud2 must not look like a finished program.</summary>
    [Fact]
    public void Run_ReportsAnInvalidInstruction()
    {
        SkipUnlessUsable();
        var e = Assert.Throws<UnicornException>(() => RunBody(a => a.ud2()));
        Assert.Equal(UC_ERR_INSN_INVALID, e.Err);
        Assert.Contains("00001000", e.Message);
    }
}

/// <summary>
/// Unicorn against the primary oracle on the forms next to the ones it stands
/// in for (enter without nesting, leave, bsf/bsr, the popfd/pushfd the
/// harness is built on): where both run a form, they must agree, or Unicorn's
/// word on the neighbours KVM cannot run means little.
/// </summary>
[Collection(KvmCollection.Name)]
public class UnicornMatchesKvmTests
{
    public static TheoryData<string> Neighbours => new(
        "enter 16, 0", "enter 0, 0", "leave", "bsf r32, r32", "bsr r32, r32", "bsf r16, r16", "bsr r32, m32",
        "popfd", "pushfd", "push r32", "pop r32");

    [Theory, MemberData(nameof(Neighbours))]
    public void Unicorn_MatchesKvm(string form)
    {
        KvmCollection.SkipUnlessUsable();
        UnicornSelfCheckTests.SkipUnlessUsable();
        var program = SnippetProgram.Build(InstructionForms.Get(form));
        string? diff = ResultComparison.Compare(program, "KVM", SnippetRunner.OnKvm(program), "Unicorn", SnippetRunner.OnUnicorn(program), maskUndefinedFlags: true);
        if (diff != null) Assert.Fail(diff);
    }
}
