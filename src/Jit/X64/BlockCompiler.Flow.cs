using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Threaded;
using Sharpvisor.Jit.Runtime;
using static Sharpvisor.Jit.X64.Assembler;

namespace Sharpvisor.Jit.X64;

/// <summary>Branches: jmp, jcc, the fused compare-and-branch, and jumps through a register.</summary>
internal sealed unsafe partial class BlockCompiler
{
    private bool EmitJmp(in MicroOp op)
    {
        Leave(BlockExit.Taken, op.Imm);
        return true;
    }

    private bool EmitJcc(in MicroOp op, int index)
    {
        if (!Condition(index))
            return false;
        Branch(op.Cc, op.Imm, op.Next);
        return true;
    }

    private bool EmitAluJcc(in MicroOp op)
    {
        // D = A op B with the record written, then the branch on the
        // same operands at the op's size: cmp for sub, test for and.
        bool sub = op.Scale == (byte)Uop.Sub;
        Get(Reg.Rax, op.A);
        if (op.BIsImm) _a.Mov32(Reg.Rdx, op.Imm);
        else Get(Reg.Rdx, op.B);
        _a.Mov(4, Reg.Rcx, Reg.Rax);
        _a.AluRR(sub ? Alu.Sub : Alu.And, 4, Reg.Rcx, Reg.Rdx);
        // A cmp or test writes a temporary that nothing reads: a
        // block's last op, and temporaries do not outlive their instruction.
        if (op.D < MicroOp.FirstTemp)
            Put(op.D, Reg.Rcx);
        Record(sub ? LazyOp.Sub : LazyOp.Logic, op.Size, Reg.Rax, Reg.Rdx, 0, Reg.Rcx);
        if (sub) _a.AluRR(Alu.Cmp, op.Size, Reg.Rax, Reg.Rdx);
        else _a.Test(op.Size, Reg.Rcx, Reg.Rcx);
        Branch(op.Cc, op.Disp, op.Next);
        return true;
    }

    private bool EmitJmpInd(in MicroOp op, int index)
    {
        Indirect(in op, index);
        return true;
    }

    /// <summary>The block's two-way end, on host flags already set: condition <paramref name="cc"/> goes to <paramref name="taken"/>.</summary>
    private void Branch(int cc, uint taken, uint fallthrough)
    {
        Label yes = _a.NewLabel();
        _a.Jcc(cc, yes);
        Leave(BlockExit.Fallthrough, fallthrough);
        _a.Bind(yes);
        Leave(BlockExit.Taken, taken);
    }

    /// <summary>
    /// A jump through a register (a ret, a call through a pointer, a jump
    /// table): the indirect-jump cache's block for the target, if it is that
    /// block, still valid, and the budget and kick allow; otherwise the
    /// threaded engine's handler takes over at this op (its jump cache, or
    /// the dispatcher).
    /// </summary>
    private void Indirect(in MicroOp op, int index)
    {
        Label bail = Bail(index);
        Get(Reg.Rax, op.A);
        // Vcpu.JumpSlot: (target ^ target >> 12) & (IndirectCacheSize - 1), in bounds of the cache by the mask.
        _a.Mov(4, Reg.Rcx, Reg.Rax);
        _a.ShiftRI(Shift.Shr, Reg.Rcx, 12);
        _a.AluRR(Alu.Xor, 4, Reg.Rcx, Reg.Rax);
        _a.AluRI(Alu.And, 4, Reg.Rcx, X64Tier.IndirectCacheSize - 1);
        _a.Mov64(Reg.Rdx, (long)_indirectCache);
        _a.Load(8, Reg.Rdx, new Mem(Reg.Rdx, 0, Reg.Rcx, 3));
        _a.Test(8, Reg.Rdx, Reg.Rdx);
        _a.Jcc(Cond.E, bail);
        _a.AluRM(Alu.Cmp, 4, Reg.Rax, new Mem(Reg.Rdx, X64Block.StartOffset));
        _a.Jcc(Cond.NE, bail);
        _a.AluMI(Alu.Cmp, 4, new Mem(Reg.Rdx, X64Block.InvalidOffset), 0);
        _a.Jcc(Cond.NE, bail);
        SpendBudget(bail);
        _a.Load(8, Reg.Rax, new Mem(Reg.Rdx, X64Block.HeaderOffset));
        _a.Store(8, FrameField(X64Frame.HeaderOffset), Reg.Rax);
        _a.Load(8, Reg.Rax, new Mem(Reg.Rdx, X64Block.CodeOffset));
        _a.JmpReg(Reg.Rax);
    }
}
