using System.Numerics;
using Sharpvisor.Jit.Cpu;
using static Iced.Intel.AssemblerRegisters;

namespace Sharpvisor.Tests.Oracle;

/// <summary>
/// Checks the harness itself on each oracle that runs here, whichever is this
/// run's reference, against answers computed here with no engine involved:
/// that registers land in the record in x86 order, that EFLAGS is captured
/// after the instruction (popfd in, pushfd out), that windows are saved in
/// order. If these fail, every differential result is suspect.
/// </summary>
[Collection(OracleCollection.Name)]
public class OracleSelfCheckTests
{
    public static TheoryData<OracleKind> Oracles => new(OracleKind.Kvm, OracleKind.Unicorn);

    [Theory, MemberData(nameof(Oracles))]
    public void AddEaxEbx_OnEachOracle_GivesTheSumAndFlagsComputedHere(OracleKind oracle)
    {
        OracleCollection.SkipUnless(oracle);
        var form = new Form { Name = "self-check: add eax, ebx", Emit = (a, _) => a.add(eax, ebx), VectorCount = 40 };
        var program = SnippetProgram.Build(form);
        VectorResult[] ran = SnippetRunner.On(oracle, program);

        var failures = new List<string>();
        for (int i = 0; i < program.Vectors.Length; i++)
        {
            Vector v = program.Vectors[i];
            uint a = v[Gpr.Eax], b = v[Gpr.Ebx], sum = unchecked(a + b);
            uint flags = 0;
            if ((ulong)a + b > uint.MaxValue) flags |= Eflags.CF;
            if (sum == 0) flags |= Eflags.ZF;
            if ((int)sum < 0) flags |= Eflags.SF;
            if ((~(a ^ b) & (a ^ sum) & 0x8000_0000) != 0) flags |= Eflags.OF;
            if (((a ^ b ^ sum) & 0x10) != 0) flags |= Eflags.AF;
            if ((BitOperations.PopCount(sum & 0xFF) & 1) == 0) flags |= Eflags.PF;

            uint[] regs = (uint[])v.Regs.Clone();
            regs[0] = sum;
            uint eflags = (v.Flags & ~Eflags.Arith) | flags;
            if (!regs.SequenceEqual(ran[i].Regs) || ran[i].Eflags != eflags)
                failures.Add($"vector {i}: {program.DescribeInputs(i)}\n  expected {Regs(regs)} EFLAGS={eflags:x8}\n  {oracle} gave {Regs(ran[i].Regs)} EFLAGS={ran[i].Eflags:x8}");
        }
        Assert.True(failures.Count == 0, string.Join('\n', failures));
    }

    [Theory, MemberData(nameof(Oracles))]
    public void Nop_OnEachOracle_LeavesEveryInputInItsPlaceInTheRecord(OracleKind oracle)
    {
        OracleCollection.SkipUnless(oracle);
        var form = new Form
        {
            Name = "self-check: nop with memory",
            Emit = (a, _) => a.nop(),
            Windows = [Window.Data16, Window.Stack],
            VaryDf = true,
        };
        var program = SnippetProgram.Build(form);
        VectorResult[] ran = SnippetRunner.On(oracle, program);

        for (int i = 0; i < program.Vectors.Length; i++)
        {
            Vector v = program.Vectors[i];
            Assert.Equal(v.Regs, ran[i].Regs);
            Assert.Equal(v.Flags, ran[i].Eflags);
            Assert.Equal(v.Mem, ran[i].Mem);
        }
        // The inputs themselves cover what the harness promises: both DF
        // values and both CF values on input, and ESP at the stack top.
        Assert.Contains(program.Vectors, v => (v.Flags & Eflags.DF) != 0);
        Assert.Contains(program.Vectors, v => (v.Flags & Eflags.CF) != 0);
        Assert.Contains(program.Vectors, v => (v.Flags & Eflags.CF) == 0);
        Assert.All(program.Vectors, v => Assert.Equal(GuestLayout.StackTop, v[Gpr.Esp]));
    }

    public static TheoryData<string> ModelledForms => new(InstructionForms.All.Where(f => f.Model != null).Select(f => f.Name));

    /// <summary>
    /// The model must agree with a real oracle, the reference where it runs
    /// the form and Unicorn where the KVM here cannot: that is what lets the
    /// model stand in where neither can (Unicorn 2.0 lacks popcnt, for one).
    /// </summary>
    [Theory, MemberData(nameof(ModelledForms)), Trait(Reference.Trait, Reference.TraitValue)]
    public void Model_MatchesReference(string name)
    {
        Form form = InstructionForms.Get(name);
        var program = SnippetProgram.Build(form);
        OracleRun expected = Reference.Run(program, StandIns.Unicorn);
        VectorResult[] model = program.Vectors.Select(form.Model!).ToArray();
        string? diff = ResultComparison.Compare(program, expected.Oracle, expected.Results, "model", model, maskUndefinedFlags: true, expected.Masked);
        if (diff != null) Assert.Fail(diff);
    }

    [Theory]
    [InlineData("lzcnt r32, r32", 1u, 31u, Eflags.Reserved1)]
    [InlineData("lzcnt r32, r32", 0u, 32u, Eflags.Reserved1 | Eflags.CF)]
    [InlineData("lzcnt r16, r16", 0xFFFF_0001u, 15u, Eflags.Reserved1)]
    [InlineData("lzcnt r16, r16", 0x8000u, 0u, Eflags.Reserved1 | Eflags.ZF)]
    [InlineData("tzcnt r16, r16", 0x1_0000u, 16u, Eflags.Reserved1 | Eflags.CF)]
    [InlineData("tzcnt r32, r32", 0x100u, 8u, Eflags.Reserved1)]
    [InlineData("popcnt r32, r32", 0xF0F0_0001u, 9u, Eflags.Reserved1)]
    [InlineData("popcnt r16, r16", 0xFFFF_0000u, 0u, Eflags.Reserved1 | Eflags.ZF)]
    public void CountModels_GiveTheManualsAnswers(string name, uint source, uint count, uint eflags)
    {
        var v = new Vector();
        v[Gpr.Edi] = source; // the 32-bit forms read EDI
        v[Gpr.Esi] = source; // the 16-bit forms read SI
        v[Gpr.Ecx] = 0xAAAA_AAAA;
        v.Flags = Eflags.Reserved1 | Eflags.Arith;
        VectorResult r = InstructionForms.Get(name).Model!(v);
        uint expected = name.Contains("r16") ? 0xAAAA_0000 | count : count;
        Assert.Equal(expected, r.Regs[(int)Gpr.Ecx]);
        Assert.Equal(eflags, r.Eflags);
    }

    private static string Regs(uint[] r) => string.Join(' ', r.Select((x, g) => $"{X86Regs.Names[g]}={x:x8}"));
}
