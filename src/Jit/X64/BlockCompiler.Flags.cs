using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Threaded;
using Sharpvisor.Jit.Runtime;
using static Sharpvisor.Jit.X64.Assembler;

namespace Sharpvisor.Jit.X64;

/// <summary>What reads the flags: setcc, cmov, popf, and the condition tests they and the branches share.</summary>
internal sealed unsafe partial class BlockCompiler
{
    private bool EmitSetCc(in MicroOp op, int index)
    {
        if (!Condition(index))
            return false;
        _a.SetCc(op.Cc, Reg.Rax);
        _a.Extend(Reg.Rax, Reg.Rax, 1, false);
        Put(op.D, Reg.Rax);
        return true;
    }

    private bool EmitCMov(in MicroOp op, int index)
    {
        if (!Condition(index))
            return false;
        Reg d = InReg(op.D) ? Host(op.D) : Reg.Rax;
        Get(d, op.D);
        _a.CMov(op.Cc, d, Use(op.A, Reg.Rdx));
        Put(op.D, d);
        return true;
    }

    private bool EmitPopf(in MicroOp op)
    {
        // EFLAGS from the guest's value; the record then says "materialized".
        Get(Reg.Rax, op.A);
        _a.AluRI(Alu.And, 4, Reg.Rax, Eflags.PopfWritable);
        _a.AluRI(Alu.Or, 4, Reg.Rax, Eflags.Reserved1);
        _a.Store(4, State(OffFlags), Reg.Rax);
        _a.StoreImm(4, State(OffCcOp), (uint)LazyOp.None);
        _setter = null;
        return true;
    }

    /// <summary>
    /// Sets the host flags to the guest's for a condition: redoes the
    /// recorded compare, test or add at its size. For a record from before
    /// the block, checks at run time that it is a 32-bit compare or logic op,
    /// else hands over at op <paramref name="index"/>. False when the record
    /// is known to be of another kind (the threaded engine then evaluates it).
    /// </summary>
    private bool Condition(int index)
    {
        if (_setter is { } s)
            return Redo(s.Kind, s.Size);
        Label go = _a.NewLabel(), notSub = _a.NewLabel();
        _a.Load(4, Reg.Rax, State(OffCcOp));
        _a.AluRI(Alu.Cmp, 4, Reg.Rax, LazyFlags.Pack(LazyOp.Sub, 4));
        _a.Jcc(Cond.NE, notSub);
        _a.Load(4, Reg.Rax, State(OffCcA));
        _a.AluRM(Alu.Cmp, 4, Reg.Rax, State(OffCcB));
        _a.Jmp(go);
        _a.Bind(notSub);
        _a.AluRI(Alu.Cmp, 4, Reg.Rax, LazyFlags.Pack(LazyOp.Logic, 4));
        _a.Jcc(Cond.NE, Bail(index));
        _a.Load(4, Reg.Rax, State(OffCcRes));
        _a.Test(4, Reg.Rax, Reg.Rax);
        _a.Bind(go);
        return true;
    }

    /// <summary>
    /// Sets the host's six arithmetic flags to the guest's by redoing the
    /// recorded op of kind <paramref name="kind"/> at <paramref name="size"/>
    /// on the host (the record holds its operands; adc, sbb, inc and dec get
    /// their carry-in back from the record first). AF after a logic op is
    /// not the guest's, and no condition reads it. False for a record that
    /// is not redone this way.
    /// </summary>
    private bool Redo(Uop kind, int size)
    {
        switch (kind)
        {
            case Uop.Sub:
                _a.Load(4, Reg.Rax, State(OffCcA));
                _a.AluRM(Alu.Cmp, size, Reg.Rax, State(OffCcB));
                return true;
            case Uop.Add:
                _a.Load(4, Reg.Rax, State(OffCcA));
                _a.AluRM(Alu.Add, size, Reg.Rax, State(OffCcB));
                return true;
            case Uop.And or Uop.Or or Uop.Xor:
                _a.Load(4, Reg.Rax, State(OffCcRes));
                _a.Test(size, Reg.Rax, Reg.Rax);
                return true;
            case Uop.Adc or Uop.Sbb:
                _a.BtMI(State(OffCcCarry), 0);
                _a.Load(4, Reg.Rax, State(OffCcA));
                _a.AluRM(kind == Uop.Adc ? Alu.Adc : Alu.Sbb, size, Reg.Rax, State(OffCcB));
                return true;
            case Uop.Inc or Uop.Dec:
                _a.BtMI(State(OffCcCarry), 0);
                _a.Load(4, Reg.Rax, State(OffCcA));
                _a.IncDec(size, kind == Uop.Inc, Reg.Rax);
                return true;
            default:
                return false;
        }
    }

    /// <summary>
    /// Sets the host's CF to the guest's (for adc, sbb, inc and dec): from a record made in this block by redoing it; from a record
    /// made before it, at run time, for materialized flags, a 32-bit
    /// compare or add, a logic op, inc or dec, else hands over at op
    /// <paramref name="index"/>. Clobbers rax. False when the record is
    /// known to be of another kind.
    /// </summary>
    private bool CarryToHost(int index)
    {
        if (_setter is { } s)
            return Redo(s.Kind, s.Size);
        Label done = _a.NewLabel(), notSub = _a.NewLabel(), notAdd = _a.NewLabel(), notLogic = _a.NewLabel(), notNone = _a.NewLabel();
        _a.Load(4, Reg.Rax, State(OffCcOp));
        _a.AluRI(Alu.Cmp, 4, Reg.Rax, LazyFlags.Pack(LazyOp.Sub, 4));
        _a.Jcc(Cond.NE, notSub);
        _a.Load(4, Reg.Rax, State(OffCcA));
        _a.AluRM(Alu.Cmp, 4, Reg.Rax, State(OffCcB));
        _a.Jmp(done);
        _a.Bind(notSub);
        _a.AluRI(Alu.Cmp, 4, Reg.Rax, LazyFlags.Pack(LazyOp.Add, 4));
        _a.Jcc(Cond.NE, notAdd);
        _a.Load(4, Reg.Rax, State(OffCcA));
        _a.AluRM(Alu.Add, 4, Reg.Rax, State(OffCcB));
        _a.Jmp(done);
        _a.Bind(notAdd);
        // The kinds whose CF does not depend on the size: the op's byte alone.
        _a.AluRI(Alu.Cmp, 1, Reg.Rax, (uint)LazyOp.Logic);
        _a.Jcc(Cond.NE, notLogic);
        _a.Test(4, Reg.Rax, Reg.Rax); // CF = 0
        _a.Jmp(done);
        _a.Bind(notLogic);
        _a.AluRI(Alu.Cmp, 1, Reg.Rax, (uint)LazyOp.None);
        _a.Jcc(Cond.NE, notNone);
        _a.BtMI(State(OffFlags), 0);
        _a.Jmp(done);
        _a.Bind(notNone);
        _a.AluRI(Alu.Cmp, 1, Reg.Rax, (uint)LazyOp.Inc);
        Label carry = _a.NewLabel();
        _a.Jcc(Cond.E, carry);
        _a.AluRI(Alu.Cmp, 1, Reg.Rax, (uint)LazyOp.Dec);
        _a.Jcc(Cond.NE, Bail(index));
        _a.Bind(carry);
        _a.BtMI(State(OffCcCarry), 0);
        _a.Bind(done);
        return true;
    }
}
