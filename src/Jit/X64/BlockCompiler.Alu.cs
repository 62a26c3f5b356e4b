using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Threaded;
using Sharpvisor.Jit.Runtime;
using static Sharpvisor.Jit.X64.Assembler;

namespace Sharpvisor.Jit.X64;

/// <summary>add/sub/and/or/xor, inc/dec, adc/sbb, not, the multiplies, and recording their flags.</summary>
internal sealed unsafe partial class BlockCompiler
{
    private bool EmitAlu(in MicroOp op)
    {
        bool flags = op.SetsFlags;
        if (!flags && op.D == op.A && InReg(op.D))
        {
            // In place, as the guest wrote it: add r11d, 1.
            if (op.BIsImm) _a.AluRI(AluOf(op.Kind), 4, Host(op.D), op.Imm);
            else _a.AluRR(AluOf(op.Kind), 4, Host(op.D), Use(op.B, Reg.Rdx));
            return true;
        }
        Reg? b = op.BIsImm ? null : Use(op.B, Reg.Rdx);
        Get(Reg.Rax, op.A);
        Binary(op.Kind, op.Size, flags, b, op.Imm, op.D);
        return true;
    }

    private bool EmitIncDec(in MicroOp op, int index)
    {
        bool flags = op.SetsFlags;
        if (flags)
        {
            // CF carries over: the record keeps the carry-in.
            if (!CarryToHost(index))
                return false;
            _a.SetCc(Cond.B, Reg.Rcx);
            Get(Reg.Rax, op.A);
            _a.Mov(4, Reg.Rdx, Reg.Rax);
            _a.AluRI(op.Kind == Uop.Inc ? Alu.Add : Alu.Sub, 4, Reg.Rax, 1);
            _a.Extend(Reg.Rcx, Reg.Rcx, 1, false);
            Record(op.Kind == Uop.Inc ? LazyOp.Inc : LazyOp.Dec, op.Size, Reg.Rdx, null, 1, Reg.Rax);
            _a.Store(4, State(OffCcCarry), Reg.Rcx);
            _setter = (op.Kind, op.Size);
            Put(op.D, Reg.Rax);
            return true;
        }
        Get(Reg.Rax, op.A);
        _a.AluRI(op.Kind == Uop.Inc ? Alu.Add : Alu.Sub, 4, Reg.Rax, 1);
        Put(op.D, Reg.Rax);
        return true;
    }

    private bool EmitAdcSbb(in MicroOp op, int index)
    {
        bool flags = op.SetsFlags;
        // The guest's CF into the host's, then the host's own adc/sbb on all 32 bits.
        if (!CarryToHost(index))
            return false;
        _a.SetCc(Cond.B, Reg.Rcx);
        Reg b = Reg.Rdx;
        if (op.BIsImm) _a.Mov32(Reg.Rdx, op.Imm);
        else b = Use(op.B, Reg.Rdx);
        Get(Reg.Rax, op.A);
        if (flags) _a.Mov(4, Reg.Rdi, Reg.Rax);
        _a.AluRR(op.Kind == Uop.Adc ? Alu.Adc : Alu.Sbb, 4, Reg.Rax, b);
        if (flags)
        {
            _a.Extend(Reg.Rcx, Reg.Rcx, 1, false);
            Record(op.Kind == Uop.Adc ? LazyOp.Adc : LazyOp.Sbb, op.Size, Reg.Rdi, b, 0, Reg.Rax);
            _a.Store(4, State(OffCcCarry), Reg.Rcx);
            _setter = (op.Kind, op.Size);
        }
        Put(op.D, Reg.Rax);
        return true;
    }

    private bool EmitNot(in MicroOp op)
    {
        Get(Reg.Rax, op.A);
        _a.Not(Reg.Rax);
        Put(op.D, Reg.Rax);
        return true;
    }

    private bool EmitMul(in MicroOp op)
    {
        bool flags = op.SetsFlags;
        // The low half is the same signed or not; with flags, CF = OF =
        // "the signed product does not fit", which is what the host's
        // imul sets at 32 bits (16-bit products are the threaded engine's).
        if (flags && op.Size != 4)
            return false;
        Get(Reg.Rax, op.A);
        if (op.BIsImm) _a.Mov32(Reg.Rdx, op.Imm);
        else Get(Reg.Rdx, op.B);
        _a.Imul(Reg.Rax, Reg.Rdx);
        if (flags)
        {
            _a.SetCc(Cond.O, Reg.Rcx);
            _a.Extend(Reg.Rcx, Reg.Rcx, 1, false);
            Record(LazyOp.Mul, 4, Reg.Rcx, null, 0, Reg.Rax);
            _setter = null;
        }
        Put(op.D, Reg.Rax);
        return true;
    }

    private bool EmitMulWide(in MicroOp op)
    {
        bool flags = op.SetsFlags;
        // The host's one-operand mul/imul at the op's size: CF = OF
        // are the overflow the record keeps.
        bool signed = (op.Flags & UopFlags.Signed) != 0;
        if (op.BIsImm) _a.Mov32(Reg.Rcx, op.Imm);
        else Get(Reg.Rcx, op.B);
        Get(Reg.Rax, op.A);
        _a.MulWide(op.Size, signed, Reg.Rcx);
        if (flags) _a.SetCc(Cond.B, Reg.Rdi);
        if (op.Size == 2)
        {
            _a.Extend(Reg.Rdx, Reg.Rdx, 2, false);
            _a.Extend(Reg.Rax, Reg.Rax, 2, false);
        }
        else if (op.Size == 1)
        {
            _a.Mov(4, Reg.Rdx, Reg.Rax);
            _a.ShiftRI(Shift.Shr, Reg.Rdx, 8);
            _a.Extend(Reg.Rdx, Reg.Rdx, 1, false);
            _a.Extend(Reg.Rax, Reg.Rax, 1, false);
        }
        if (flags)
        {
            _a.Extend(Reg.Rdi, Reg.Rdi, 1, false);
            Record(LazyOp.Mul, op.Size, Reg.Rdi, null, 0, Reg.Rax);
            _setter = null;
        }
        Put(op.D, Reg.Rax);
        Put(op.Base, Reg.Rdx);
        return true;
    }

    private static Alu AluOf(Uop k) => k switch
    {
        Uop.Add => Alu.Add,
        Uop.Sub => Alu.Sub,
        Uop.And => Alu.And,
        Uop.Or => Alu.Or,
        _ => Alu.Xor,
    };

    private static LazyOp LazyOf(Uop k) => k switch
    {
        Uop.Add => LazyOp.Add,
        Uop.Sub => LazyOp.Sub,
        _ => LazyOp.Logic,
    };

    /// <summary>D = eax op (b or imm), all 32 bits as the threaded handler computes it, recording the flags at <paramref name="size"/> if asked.</summary>
    private void Binary(Uop kind, int size, bool flags, Reg? b, uint imm, int d)
    {
        if (flags)
        {
            Reg rb = b ?? Reg.Rdx;
            if (b == null) _a.Mov32(Reg.Rdx, imm);
            _a.Mov(4, Reg.Rcx, Reg.Rax);
            _a.AluRR(AluOf(kind), 4, Reg.Rcx, rb);
            Record(LazyOf(kind), size, Reg.Rax, rb, 0, Reg.Rcx);
            _setter = (kind, size);
            Put(d, Reg.Rcx);
            return;
        }
        if (b is { } r) _a.AluRR(AluOf(kind), 4, Reg.Rax, r);
        else _a.AluRI(AluOf(kind), 4, Reg.Rax, imm);
        Put(d, Reg.Rax);
    }

    private void Record(LazyOp op, int size, Reg a, Reg? b, uint bImm, Reg res)
    {
        _a.Store(4, State(OffCcA), a);
        if (b is { } rb) _a.Store(4, State(OffCcB), rb);
        else _a.StoreImm(4, State(OffCcB), bImm);
        _a.Store(4, State(OffCcRes), res);
        _a.StoreImm(4, State(OffCcOp), LazyFlags.Pack(op, size));
    }
}
