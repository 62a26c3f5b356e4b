using Iced.Intel;
using Sharpvisor.Jit.Cpu;
using static Iced.Intel.AssemblerRegisters;
using static Sharpvisor.Tests.Oracle.UnicornInterop;

namespace Sharpvisor.Tests.Oracle;

/// <summary>
/// Checks Unicorn as an oracle against answers known here, before it is
/// trusted as the reference or a stand-in for KVM: that lzcnt is lzcnt and tzcnt is
/// tzcnt (not bsr and bsf), that the count instructions set the flags the
/// SDM gives, and that a fault is reported rather than taken for a result.
/// OracleSelfCheckTests checks the snippet harness on it (popfd in, pushfd
/// out, the record layout), UnicornMatchesKvmTests every form against KVM.
/// </summary>
public class UnicornSelfCheckTests
{
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
        OracleCollection.SkipUnlessUnicorn();
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
        OracleCollection.SkipUnlessUnicorn();
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
        OracleCollection.SkipUnlessUnicorn();
        X86Regs r = RunBody(a => { a.mov(ebx, source); a.mov(eax, 5); a.tzcnt(eax, ebx); });
        Assert.Equal(count, r.Gpr[0]);
        Assert.Equal(cfZf, r.Eflags & (Eflags.CF | Eflags.ZF));
    }

    [Fact]
    public void CpuModel_ReadsBackAsHaswell()
    {
        OracleCollection.SkipUnlessUnicorn();
        using var cpu = new UnicornCpu(0x1000);
        Assert.Equal(UC_CPU_X86_HASWELL, cpu.CpuModel);
        Assert.Equal("2.0", UnicornCpu.Version);
    }

    /// <summary>A fault is an error with the EIP, not a result: ud2 must not look like a finished program.</summary>
    [Fact]
    public void Run_ReportsAnInvalidInstruction()
    {
        OracleCollection.SkipUnlessUnicorn();
        var e = Assert.Throws<UnicornException>(() => RunBody(a => a.ud2()));
        Assert.Equal(UC_ERR_INSN_INVALID, e.Err);
        Assert.Contains("00001000", e.Message);
    }
}
