using System.Numerics;
using Sharpvisor.Jit.Cpu;
using static Iced.Intel.AssemblerRegisters;

namespace Sharpvisor.Tests.Oracle;

/// <summary>
/// Checks the harness itself against answers computed here, with no engine
/// involved: that registers land in the record in x86 order, that EFLAGS is
/// captured after the instruction, that windows are saved in order. If these
/// fail, every differential result is suspect.
/// </summary>
[Collection(KvmCollection.Name)]
public class KvmSelfCheckTests
{
    [Fact]
    public void AddEaxEbx_OnKvm_GivesTheSumAndFlagsComputedHere()
    {
        KvmCollection.SkipUnlessUsable();
        var form = new Form { Name = "self-check: add eax, ebx", Emit = (a, _) => a.add(eax, ebx), VectorCount = 40 };
        var program = SnippetProgram.Build(form);
        VectorResult[] kvm = SnippetRunner.OnKvm(program);

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
            if (!regs.SequenceEqual(kvm[i].Regs) || kvm[i].Eflags != eflags)
                failures.Add($"vector {i}: {program.DescribeInputs(i)}\n  expected {Regs(regs)} EFLAGS={eflags:x8}\n  KVM gave  {Regs(kvm[i].Regs)} EFLAGS={kvm[i].Eflags:x8}");
        }
        Assert.True(failures.Count == 0, string.Join('\n', failures));
    }

    [Fact]
    public void Nop_OnKvm_LeavesEveryInputInItsPlaceInTheRecord()
    {
        KvmCollection.SkipUnlessUsable();
        var form = new Form
        {
            Name = "self-check: nop with memory",
            Emit = (a, _) => a.nop(),
            Windows = [Window.Data16, Window.Stack],
            VaryDf = true,
        };
        var program = SnippetProgram.Build(form);
        VectorResult[] kvm = SnippetRunner.OnKvm(program);

        for (int i = 0; i < program.Vectors.Length; i++)
        {
            Vector v = program.Vectors[i];
            Assert.Equal(v.Regs, kvm[i].Regs);
            Assert.Equal(v.Flags, kvm[i].Eflags);
            Assert.Equal(v.Mem, kvm[i].Mem);
        }
        // The inputs themselves cover what the harness promises: both DF
        // values and both CF values on input, and ESP at the stack top.
        Assert.Contains(program.Vectors, v => (v.Flags & Eflags.DF) != 0);
        Assert.Contains(program.Vectors, v => (v.Flags & Eflags.CF) != 0);
        Assert.Contains(program.Vectors, v => (v.Flags & Eflags.CF) == 0);
        Assert.All(program.Vectors, v => Assert.Equal(GuestLayout.StackTop, v[Gpr.Esp]));
    }

    private static string Regs(uint[] r) => string.Join(' ', r.Select((x, g) => $"{X86Regs.Names[g]}={x:x8}"));
}
