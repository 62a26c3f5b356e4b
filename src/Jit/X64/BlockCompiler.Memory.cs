using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Threaded;
using Sharpvisor.Jit.Runtime;
using static Sharpvisor.Jit.X64.Assembler;

namespace Sharpvisor.Jit.X64;

/// <summary>Loads, stores and the fused load-and-op: the effective address, the bounds check, the store-over-code check.</summary>
internal sealed unsafe partial class BlockCompiler
{
    private bool EmitLoad(in MicroOp op, int index)
    {
        Address(in op);
        CheckBounds(op.Size, index);
        Reg dst = InReg(op.D) ? Host(op.D) : Reg.Rax;
        if (op.Size == 4) _a.Load(4, dst, Guest(Reg.Rcx));
        else _a.ExtendLoad(dst, Guest(Reg.Rcx), op.Size, (op.Flags & UopFlags.Signed) != 0);
        Put(op.D, dst);
        return true;
    }

    private bool EmitStore(in MicroOp op, int index)
    {
        Address(in op);
        CheckBounds(op.Size, index);
        CheckCodePages(op.Size, index);
        if (op.BIsImm) _a.StoreImm(op.Size, Guest(Reg.Rcx), op.Imm);
        else _a.Store(op.Size, Guest(Reg.Rcx), Use(op.A, Reg.Rax));
        return true;
    }

    private bool EmitLoadAlu(in MicroOp op, int index)
    {
        bool flags = op.SetsFlags;
        if ((Uop)op.Cc is not (Uop.Add or Uop.Sub or Uop.And or Uop.Or or Uop.Xor))
            return false;
        Address(in op);
        CheckBounds(op.Size, index);
        if (op.Size == 4) _a.Load(4, Reg.Rdx, Guest(Reg.Rcx));
        else _a.ExtendLoad(Reg.Rdx, Guest(Reg.Rcx), op.Size, false);
        Get(Reg.Rax, op.A);
        Binary((Uop)op.Cc, op.Size, flags, Reg.Rdx, 0, op.D);
        return true;
    }

    /// <summary>
    /// ecx = the op's effective address, wrapped at 32 bits as the guest's
    /// is (lea with the 0x67 prefix); rax and rcx may hold temporaries on the way.
    /// </summary>
    private void Address(in MicroOp op)
    {
        Reg b = op.Base == MicroOp.Zero ? Reg.None : Use(op.Base, Reg.Rcx);
        Reg x = op.Index == MicroOp.Zero ? Reg.None : Use(op.Index, Reg.Rax);
        if (b == Reg.None && x == Reg.None)
            _a.Mov32(Reg.Rcx, op.Disp);
        else if (b == Reg.None && op.Scale == 0)
            _a.Lea(4, Reg.Rcx, new Mem(x, (int)op.Disp, Addr32: true));
        else
            _a.Lea(4, Reg.Rcx, new Mem(b, (int)op.Disp, x, op.Scale, Addr32: true));
    }

    /// <summary>Hands over at op <paramref name="index"/> unless [ecx, ecx + size) is RAM.</summary>
    private void CheckBounds(int size, int index)
    {
        // SAFETY (of the code emitted): this compare is the only bound on the
        // guest access that follows it, so every Guest(Reg.Rcx) operand comes
        // after one. Unsigned: ecx <= size of RAM - size, so the access lies in
        // RAM (rsi is MemoryBase, loaded by the entry stub, live while the
        // vCPU runs). An address beyond hands over to the threaded handler,
        // which reports the guest's fault.
        _a.AluRI(Alu.Cmp, 4, Reg.Rcx, (uint)(_memSize - (ulong)size));
        _a.Jcc(Cond.A, Bail(index));
    }

    /// <summary>
    /// Hands over at op <paramref name="index"/> if the store at ecx
    /// overwrites translated code (<see cref="Runtime.ExecutionEngine.StoreHitsCode"/>,
    /// in line): the page bytes of its first and last byte, and only if one
    /// is set, the code bits of the bytes it writes. Keeps ecx; rax, rdx and
    /// rdi are scratch.
    /// </summary>
    private void CheckCodePages(int size, int index)
    {
        Label plain = _a.NewLabel();
        _a.Mov64(Reg.Rdi, (long)_codePages);
        _a.Mov(4, Reg.Rdx, Reg.Rcx);
        _a.ShiftRI(Shift.Shr, Reg.Rdx, 12);
        _a.ExtendLoad(Reg.Rax, new Mem(Reg.Rdi, 0, Reg.Rdx), 1, false);
        if (size > 1)
        {
            _a.Lea(4, Reg.Rdx, new Mem(Reg.Rcx, size - 1));
            _a.ShiftRI(Shift.Shr, Reg.Rdx, 12);
            _a.AluRM(Alu.Or, 1, Reg.Rax, new Mem(Reg.Rdi, 0, Reg.Rdx));
        }
        _a.Test(1, Reg.Rax, Reg.Rax);
        _a.Jcc(Cond.E, plain);
        // A page of code: the bits of [ecx, ecx + size), out of the word at ecx >> 3.
        _a.Mov64(Reg.Rdi, (long)_codeBits);
        _a.Mov(4, Reg.Rdx, Reg.Rcx);
        _a.ShiftRI(Shift.Shr, Reg.Rdx, 3);
        _a.ExtendLoad(Reg.Rdx, new Mem(Reg.Rdi, 0, Reg.Rdx), 2, false);
        _a.Mov(4, Reg.Rax, Reg.Rcx);
        _a.AluRI(Alu.And, 4, Reg.Rcx, 7);
        _a.ShiftRCl(Shift.Shr, Reg.Rdx);
        _a.Mov(4, Reg.Rcx, Reg.Rax);
        _a.AluRI(Alu.And, 4, Reg.Rdx, (1u << size) - 1);
        _a.Jcc(Cond.NE, Bail(index));
        _a.Bind(plain);
    }

    private static Mem Guest(Reg ea) => new(Reg.Rsi, 0, ea);
}
