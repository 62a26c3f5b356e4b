using Iced.Intel;
using Sharpvisor.Jit.IR;

namespace Sharpvisor.Jit.Frontend;

/// <summary>Moves, arithmetic, logic, shifts, multiply and divide.</summary>
internal sealed partial class Lowering
{
    private bool Mov()
    {
        if (IsReg(0) && I.GetOpRegister(0).IsSegmentRegister() || IsReg(1) && I.GetOpRegister(1).IsSegmentRegister())
            return false;
        if (I.GetOpKind(0) == OpKind.Register && I.GetOpRegister(0).GetSize() == 4 && IsImm(1))
        {
            ref var op = ref _b.Emit(Uop.Mov);
            op.D = RegSlot(I.GetOpRegister(0));
            op.Flags = UopFlags.BImm;
            op.Imm = Immediate(1);
            return true;
        }
        if (IsMem(0) && IsImm(1))
        {
            Store(OpSize(0), Const(Immediate(1)));
            return true;
        }
        byte v = Read(1);
        Write(0, v);
        return true;
    }

    private bool MovExtend(bool signed)
    {
        byte v = Read(1, signed);
        Register dst = I.GetOpRegister(0);
        if (dst.GetSize() == 2)
            WriteReg(dst, v);
        else
            Mov(RegSlot(dst), v);
        return true;
    }

    private bool Lea()
    {
        Register dst = I.GetOpRegister(0);
        byte t = dst.GetSize() == 4 ? RegSlot(dst) : _b.Temp();
        ref var op = ref _b.Emit(Uop.Lea);
        op.D = t;
        SetMem(ref op);
        if (dst.GetSize() != 4)
            WriteReg(dst, t);
        return true;
    }

    /// <summary>Two-operand ALU: dst = dst op src (cmp/test only set flags).</summary>
    private bool Alu(Uop kind, bool writeBack = true)
    {
        int size = OpSize(0);
        byte a = Read(0);
        byte b = IsImm(1) ? MicroOp.Zero : Read(1);
        byte d = writeBack ? ResultSlot(0) : _b.Temp();
        ref var op = ref _b.Emit(kind, size);
        op.D = d;
        op.A = a;
        SetB(ref op, b, 1);
        op.Flags |= UopFlags.SetFlags;
        if (writeBack)
            WriteResult(d);
        return true;
    }

    private bool Unary(Uop kind)
    {
        int size = OpSize(0);
        byte a = Read(0);
        byte d = ResultSlot(0);
        ref var op = ref _b.Emit(kind, size);
        op.D = d;
        op.A = a;
        if (kind != Uop.Not) op.Flags |= UopFlags.SetFlags;
        WriteResult(d);
        return true;
    }

    private bool Neg()
    {
        int size = OpSize(0);
        byte a = Read(0);
        byte d = ResultSlot(0);
        ref var op = ref _b.Emit(Uop.Sub, size);
        op.D = d;
        op.A = MicroOp.Zero;
        op.B = a;
        op.Flags |= UopFlags.SetFlags;
        WriteResult(d);
        return true;
    }

    /// <summary>Shifts and rotates by 1, imm8 or CL.</summary>
    private bool Shift(Uop kind)
    {
        int size = OpSize(0);
        // sar works on the sign-extended value so that one 32-bit shift serves every size.
        byte a = Read(0, signed: kind == Uop.Sar);
        byte d = ResultSlot(0);
        byte count = I.OpCount > 1 && IsReg(1) ? ReadReg(Register.CL) : MicroOp.Zero;
        ref var op = ref _b.Emit(kind, size);
        op.D = d;
        op.A = a;
        if (I.OpCount > 1 && IsImm(1))
        {
            op.Flags |= UopFlags.BImm;
            op.Imm = Immediate(1) & 31;
        }
        else if (I.OpCount == 1)
        {
            op.Flags |= UopFlags.BImm;
            op.Imm = 1;
        }
        else
        {
            op.B = count;
        }
        op.Flags |= UopFlags.SetFlags;
        WriteResult(d);
        return true;
    }

    private bool DoubleShift(Uop kind)
    {
        int size = OpSize(0);
        byte a = Read(0);
        byte src = Read(1);
        byte d = ResultSlot(0);
        byte count = IsReg(2) ? ReadReg(Register.CL) : MicroOp.Zero;
        ref var op = ref _b.Emit(kind, size);
        op.D = d;
        op.A = a;
        op.B = src;
        if (IsImm(2))
        {
            op.Flags |= UopFlags.CountImm;
            op.Imm = Immediate(2) & 31;
        }
        else
        {
            op.Base = count;
        }
        op.Flags |= UopFlags.SetFlags;
        WriteResult(d);
        return true;
    }

    /// <summary>One-operand mul/imul: accumulator times operand into the accumulator pair.</summary>
    private bool MulOne(bool signed)
    {
        int size = OpSize(0);
        byte src = Read(0, signed);
        byte acc = size switch
        {
            1 => ReadReg(Register.AL, signed),
            2 => ReadReg(Register.AX, signed),
            _ => 0,
        };
        byte lo = size == 4 ? (byte)0 : _b.Temp();
        byte hi = size == 4 ? (byte)2 : _b.Temp();
        ref var op = ref _b.Emit(Uop.MulWide, size);
        op.D = lo;
        op.Base = hi;
        op.A = acc;
        op.B = src;
        op.Flags |= UopFlags.SetFlags | (signed ? UopFlags.Signed : 0);
        if (size == 1)
        {
            WriteReg(Register.AL, lo);
            WriteReg(Register.AH, hi);
        }
        else if (size == 2)
        {
            WriteReg(Register.AX, lo);
            WriteReg(Register.DX, hi);
        }
        return true;
    }

    private bool Imul()
    {
        if (I.OpCount == 1)
            return MulOne(signed: true);
        Register dst = I.GetOpRegister(0);
        int size = dst.GetSize();
        byte a, b;
        if (I.OpCount == 2)
        {
            b = Read(1, signed: true);
            a = ReadReg(dst, signed: true);
        }
        else
        {
            a = Read(1, signed: true);
            b = Const(size == 2 ? (uint)(int)(short)Immediate(2) : Immediate(2));
        }
        byte d = size == 4 ? RegSlot(dst) : _b.Temp();
        ref var op = ref _b.Emit(Uop.Mul, size);
        op.D = d;
        op.A = a;
        op.B = b;
        op.Flags |= UopFlags.SetFlags | UopFlags.Signed;
        if (size != 4)
            WriteReg(dst, d);
        return true;
    }

    private bool Div(bool signed)
    {
        int size = OpSize(0);
        byte src = Read(0);
        ref var op = ref _b.Emit(Uop.Div, size);
        op.A = src;
        if (signed) op.Flags |= UopFlags.Signed;
        return true;
    }

    /// <summary>cdq/cwd: fill EDX (DX) with the sign of EAX (AX).</summary>
    private bool SignSplit(int size)
    {
        byte src = size == 4 ? (byte)0 : ReadReg(Register.AX, signed: true);
        byte d = size == 4 ? (byte)2 : _b.Temp();
        ref var op = ref _b.Emit(Uop.Sar);
        op.D = d;
        op.A = src;
        op.Flags = UopFlags.BImm;
        op.Imm = 31;
        if (size == 2)
            WriteReg(Register.DX, d);
        return true;
    }

    /// <summary>cbw/cwde: sign-extend AL into AX, or AX into EAX.</summary>
    private bool Widen(int fromSize)
    {
        byte v = ReadReg(fromSize == 1 ? Register.AL : Register.AX, signed: true);
        if (fromSize == 1)
            WriteReg(Register.AX, v);
        else
            Mov(0, v);
        return true;
    }

    /// <summary>A <c>lock</c> prefix, or <c>xchg</c> with memory (which x86 always locks).</summary>
    private bool IsLocked() => I.HasLockPrefix || (I.Mnemonic == Mnemonic.Xchg && (IsMem(0) || IsMem(1)));

    /// <summary>
    /// A locked read-modify-write becomes one <see cref="Uop.Atomic"/>, which
    /// both backends run as a compare-and-swap loop on guest RAM: with several
    /// vCPUs, a load and a store would lose updates (two <c>lock xadd</c>
    /// counters) or even a plain store made between them (a spinlock released
    /// while another vCPU's <c>cmpxchg</c> fails). A lock prefix on anything
    /// else is not run at all (x86 has a few more forms; gcc does not emit them).
    /// </summary>
    private bool Locked()
    {
        AtomicOp kind;
        switch (I.Mnemonic)
        {
            case Mnemonic.Xchg: kind = AtomicOp.Xchg; break;
            case Mnemonic.Xadd: kind = AtomicOp.Xadd; break;
            case Mnemonic.Cmpxchg: kind = AtomicOp.Cmpxchg; break;
            case Mnemonic.Add: kind = AtomicOp.Add; break;
            case Mnemonic.Adc: kind = AtomicOp.Adc; break;
            case Mnemonic.Sub: kind = AtomicOp.Sub; break;
            case Mnemonic.Sbb: kind = AtomicOp.Sbb; break;
            case Mnemonic.And: kind = AtomicOp.And; break;
            case Mnemonic.Or: kind = AtomicOp.Or; break;
            case Mnemonic.Xor: kind = AtomicOp.Xor; break;
            case Mnemonic.Inc: kind = AtomicOp.Inc; break;
            case Mnemonic.Dec: kind = AtomicOp.Dec; break;
            case Mnemonic.Not: kind = AtomicOp.Not; break;
            case Mnemonic.Neg: kind = AtomicOp.Neg; break;
            case Mnemonic.Bts: kind = AtomicOp.Bts; break;
            case Mnemonic.Btr: kind = AtomicOp.Btr; break;
            case Mnemonic.Btc: kind = AtomicOp.Btc; break;
            default: return false;
        }
        if (kind is AtomicOp.Bts or AtomicOp.Btr or AtomicOp.Btc && !IsImm(1))
            return false; // bt* m, r addresses a bit string beyond the operand: not in v1
        int mem = IsMem(0) ? 0 : kind == AtomicOp.Xchg && IsMem(1) ? 1 : -1;
        if (mem < 0)
            return false; // lock with a register destination is #UD
        int size = OpSize(mem);
        int other = 1 - mem;
        bool binary = kind is not (AtomicOp.Inc or AtomicOp.Dec or AtomicOp.Not or AtomicOp.Neg);
        byte src = binary && !IsImm(other) ? Read(other) : MicroOp.Zero;
        Register acc = size switch { 1 => Register.AL, 2 => Register.AX, _ => Register.EAX };
        byte expected = kind == AtomicOp.Cmpxchg ? ReadReg(acc) : MicroOp.Zero;
        byte old = _b.Temp();
        ref var op = ref _b.Emit(Uop.Atomic, size);
        op.D = old;
        op.A = expected;
        op.Cc = (byte)kind;
        if (binary) SetB(ref op, src, other);
        if (kind is not (AtomicOp.Xchg or AtomicOp.Not)) op.Flags |= UopFlags.SetFlags;
        SetMem(ref op);
        switch (kind)
        {
            case AtomicOp.Xchg:
            case AtomicOp.Xadd:
                Write(other, old);
                break;
            case AtomicOp.Cmpxchg:
                // Unequal: the accumulator gets what memory held (the flags say which).
                WriteReg(acc, Select(expected, old, 5)); // ne
                break;
        }
        return true;
    }

    private bool Xchg()
    {
        // Memory operand (if any) first: its load is the only op that can fault.
        int mem = IsMem(0) ? 0 : IsMem(1) ? 1 : -1;
        if (mem >= 0)
        {
            int reg = 1 - mem;
            byte old = Read(mem);
            byte r = Read(reg);
            Write(mem, r);
            Write(reg, old);
            return true;
        }
        byte x = Read(0);
        byte y = Read(1);
        if (x < MicroOp.FirstTemp)
        {
            byte t = _b.Temp();
            Mov(t, x);
            x = t;
        }
        Write(0, y);
        Write(1, x);
        return true;
    }

    private bool Cmpxchg()
    {
        int size = OpSize(0);
        Register acc = size switch { 1 => Register.AL, 2 => Register.AX, _ => Register.EAX };
        byte dst = Read(0);
        if (dst < MicroOp.FirstTemp)
        {
            byte t = _b.Temp();
            Mov(t, dst);
            dst = t;
        }
        byte src = Read(1);
        byte a = ReadReg(acc);
        ref var cmp = ref _b.Emit(Uop.Sub, size);
        cmp.D = _b.Temp();
        cmp.A = a;
        cmp.B = dst;
        cmp.Flags = UopFlags.SetFlags;
        // x86 always writes the destination: the source if equal, else its own value.
        Write(0, Select(dst, src, 4)); // e
        WriteReg(acc, Select(a, dst, 5)); // ne
        return true;
    }

    /// <summary>A new temporary holding <paramref name="ifTrue"/> if condition <paramref name="cc"/> holds, else <paramref name="otherwise"/>.</summary>
    private byte Select(byte otherwise, byte ifTrue, int cc)
    {
        byte t = _b.Temp();
        Mov(t, otherwise);
        ref var sel = ref _b.Emit(Uop.CMov);
        sel.D = t;
        sel.A = ifTrue;
        sel.Cc = (byte)cc;
        return t;
    }

    private bool Xadd()
    {
        int size = OpSize(0);
        byte dst = Read(0);
        if (dst < MicroOp.FirstTemp)
        {
            byte t = _b.Temp();
            Mov(t, dst);
            dst = t;
        }
        byte src = Read(1);
        byte sum = _b.Temp();
        ref var op = ref _b.Emit(Uop.Add, size);
        op.D = sum;
        op.A = dst;
        op.B = src;
        op.Flags = UopFlags.SetFlags;
        if (IsMem(0))
        {
            Write(0, sum);
            Write(1, dst);
        }
        else
        {
            Write(1, dst);
            Write(0, sum);
        }
        return true;
    }

    private bool Bswap()
    {
        Register r = I.GetOpRegister(0);
        if (r.GetSize() != 4)
            return false;
        ref var op = ref _b.Emit(Uop.Bswap);
        op.D = RegSlot(r);
        op.A = RegSlot(r);
        return true;
    }

    private bool BitTest(int which)
    {
        int size = OpSize(0);
        if (IsMem(0) && !IsImm(1))
            return false; // bt m, r addresses a bit string beyond the operand: not in v1
        byte a = Read(0);
        byte bit = IsImm(1) ? MicroOp.Zero : Read(1);
        byte d = which == 0 ? _b.Temp() : ResultSlot(0);
        ref var op = ref _b.Emit(Uop.Bt, size);
        op.Cc = (byte)which;
        op.D = d;
        op.A = a;
        SetB(ref op, bit, 1);
        op.Flags |= UopFlags.SetFlags;
        if (which != 0)
            WriteResult(d);
        return true;
    }

    private bool BitScan(Uop kind)
    {
        int size = OpSize(0);
        byte src = Read(1);
        Register dst = I.GetOpRegister(0);
        // bsf/bsr leave the destination unchanged for a zero source (what CPUs do), so the op reads it.
        byte d = size == 4 ? RegSlot(dst) : _b.Temp();
        if (size != 4)
            Mov(d, ReadReg(dst));
        ref var op = ref _b.Emit(kind, size);
        op.D = d;
        op.A = src;
        op.Flags |= UopFlags.SetFlags;
        if (size != 4)
            WriteReg(dst, d);
        return true;
    }

    private bool SetCc()
    {
        byte t = _b.Temp();
        ref var op = ref _b.Emit(Uop.SetCc, 1);
        op.D = t;
        op.Cc = (byte)Cc;
        Write(0, t);
        return true;
    }

    private bool CMov()
    {
        Register dst = I.GetOpRegister(0);
        byte src = Read(1); // a memory source is read (and may fault) whatever the condition
        if (dst.GetSize() == 4)
        {
            ref var op = ref _b.Emit(Uop.CMov);
            op.D = RegSlot(dst);
            op.A = src;
            op.Cc = (byte)Cc;
            return true;
        }
        byte t = _b.Temp();
        Mov(t, ReadReg(dst));
        ref var sel = ref _b.Emit(Uop.CMov);
        sel.D = t;
        sel.A = src;
        sel.Cc = (byte)Cc;
        WriteReg(dst, t);
        return true;
    }
}
