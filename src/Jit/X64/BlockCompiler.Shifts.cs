using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Threaded;
using Sharpvisor.Jit.Runtime;
using static Sharpvisor.Jit.X64.Assembler;

namespace Sharpvisor.Jit.X64;

/// <summary>Shifts, rotates and double shifts.</summary>
internal sealed unsafe partial class BlockCompiler
{
    private bool EmitShift(in MicroOp op)
    {
        bool flags = op.SetsFlags;
        return Shifted(in op, flags);
    }

    private bool EmitRotate(in MicroOp op)
    {
        bool flags = op.SetsFlags;
        // Flags read later (rare: gcc's rotates are followed by ops
        // that set them all) are the threaded engine's; without, the
        // host's rotate at the op's size, zero-extended as the
        // handler's result is.
        if (flags)
            return false;
        Shift kind = op.Kind == Uop.Rol ? Shift.Rol : Shift.Ror;
        if (op.BIsImm)
        {
            Get(Reg.Rax, op.A);
            int n = (int)(op.Imm & 31);
            if (n != 0) _a.ShiftRI(kind, Reg.Rax, n, op.Size);
        }
        else
        {
            Get(Reg.Rcx, op.B);
            Get(Reg.Rax, op.A);
            _a.ShiftRCl(kind, Reg.Rax, op.Size);
        }
        if (op.Size != 4) _a.Extend(Reg.Rax, Reg.Rax, op.Size, false);
        Put(op.D, Reg.Rax);
        return true;
    }

    private bool EmitDoubleShift(in MicroOp op)
    {
        bool flags = op.SetsFlags;
        // 32 bits without flags; 16-bit counts past 16 and the flags are the threaded engine's.
        if (flags || op.Size != 4 || op.BIsImm)
            return false;
        bool left = op.Kind == Uop.Shld;
        if ((op.Flags & UopFlags.CountImm) != 0)
        {
            Get(Reg.Rdx, op.B);
            Get(Reg.Rax, op.A);
            int n = (int)(op.Imm & 31);
            if (n != 0) _a.DoubleShiftRI(left, Reg.Rax, Reg.Rdx, n);
        }
        else
        {
            Get(Reg.Rcx, op.Base);
            Get(Reg.Rdx, op.B);
            Get(Reg.Rax, op.A);
            _a.DoubleShiftRCl(left, Reg.Rax, Reg.Rdx);
        }
        Put(op.D, Reg.Rax);
        return true;
    }

    /// <summary>Shifts by B &amp; 31, on all 32 bits; a zero count records nothing (the handler's rule).</summary>
    private bool Shifted(in MicroOp op, bool flags)
    {
        Shift kind = op.Kind switch { Uop.Shl => Shift.Shl, Uop.Shr => Shift.Shr, _ => Shift.Sar };
        LazyOp lazy = op.Kind switch { Uop.Shl => LazyOp.Shl, Uop.Shr => LazyOp.Shr, _ => LazyOp.Sar };
        if (op.BIsImm)
        {
            int n = (int)(op.Imm & 31);
            Get(Reg.Rax, op.A);
            if (n == 0)
            {
                Put(op.D, Reg.Rax);
                return true;
            }
            if (flags) _a.Mov(4, Reg.Rdx, Reg.Rax);
            _a.ShiftRI(kind, Reg.Rax, n);
            if (flags)
            {
                Record(lazy, op.Size, Reg.Rdx, null, (uint)n, Reg.Rax);
                _setter = null; // not a compare: conditions after it go by the record at run time
            }
            Put(op.D, Reg.Rax);
            return true;
        }
        Get(Reg.Rcx, op.B);
        _a.AluRI(Alu.And, 4, Reg.Rcx, 31);
        Get(Reg.Rax, op.A);
        _a.Mov(4, Reg.Rdx, Reg.Rax);
        _a.ShiftRCl(kind, Reg.Rax);
        Put(op.D, Reg.Rax);
        if (flags)
        {
            Label done = _a.NewLabel();
            _a.Test(4, Reg.Rcx, Reg.Rcx);
            _a.Jcc(Cond.E, done);
            Record(lazy, op.Size, Reg.Rdx, Reg.Rcx, 0, Reg.Rax);
            _a.Bind(done);
            _setter = null;
        }
        return true;
    }
}
