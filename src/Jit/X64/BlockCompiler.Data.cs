using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Threaded;
using Sharpvisor.Jit.Runtime;
using static Sharpvisor.Jit.X64.Assembler;

namespace Sharpvisor.Jit.X64;

/// <summary>Moves, extensions, merges into part of a register, lea, bswap.</summary>
internal sealed unsafe partial class BlockCompiler
{
    private bool EmitMov(in MicroOp op)
    {
        if (op.BIsImm)
        {
            if (InReg(op.D)) _a.Mov32(Host(op.D), op.Imm);
            else _a.StoreImm(4, Slot(op.D), op.Imm);
        }
        else
        {
            Reg v = InReg(op.D) ? Host(op.D) : Reg.Rax;
            Get(v, op.B);
            Put(op.D, v);
        }
        return true;
    }

    private bool EmitExt(in MicroOp op)
    {
        bool signed = (op.Flags & UopFlags.Signed) != 0;
        Reg dst = InReg(op.D) ? Host(op.D) : Reg.Rax;
        if ((op.Flags & UopFlags.High8) != 0)
        {
            Get(Reg.Rax, op.A);
            _a.ShiftRI(Shift.Shr, Reg.Rax, 8);
            _a.Extend(dst, Reg.Rax, 1, signed);
        }
        else
        {
            _a.Extend(dst, Use(op.A, Reg.Rax), op.Size, signed);
        }
        Put(op.D, dst);
        return true;
    }

    private bool EmitMerge(in MicroOp op)
    {
        Get(Reg.Rax, op.D);
        Get(Reg.Rdx, op.A);
        if ((op.Flags & UopFlags.High8) != 0)
        {
            _a.Extend(Reg.Rdx, Reg.Rdx, 1, false);
            _a.ShiftRI(Shift.Shl, Reg.Rdx, 8);
            _a.AluRI(Alu.And, 4, Reg.Rax, 0xFFFF00FFu);
        }
        else
        {
            _a.Extend(Reg.Rdx, Reg.Rdx, op.Size, false);
            _a.AluRI(Alu.And, 4, Reg.Rax, op.Size == 1 ? 0xFFFFFF00u : 0xFFFF0000u);
        }
        _a.AluRR(Alu.Or, 4, Reg.Rax, Reg.Rdx);
        Put(op.D, Reg.Rax);
        return true;
    }

    private bool EmitLea(in MicroOp op)
    {
        Address(in op);
        Put(op.D, Reg.Rcx);
        return true;
    }

    private bool EmitBswap(in MicroOp op)
    {
        Get(Reg.Rax, op.A);
        _a.Bswap(Reg.Rax);
        Put(op.D, Reg.Rax);
        return true;
    }
}
