using Iced.Intel;
using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Runtime;

namespace Sharpvisor.Jit.Frontend;

/// <summary>
/// Lowers one decoded x86 instruction into micro-ops. Split by family
/// (<c>Lowering.*.cs</c>); this file holds the operand plumbing.
/// </summary>
/// <remarks>
/// Ordering rule for precise faults: every op that can fault (a load, a store,
/// a check, a divide) comes before the first write to a guest register, so a
/// faulting instruction leaves the registers as they were before it.
/// </remarks>
internal sealed partial class Lowering
{
    private readonly BlockBuilder _b;

    public Lowering(BlockBuilder builder) => _b = builder;

    private ref readonly Instruction I => ref _b.Insn;

    // Journey: decode-lower
    /// <summary>
    /// Lowers the current instruction into a few micro-ops (load, ALU op,
    /// store, branch...). x86 instructions are many and irregular; micro-ops
    /// are few and regular, so the semantics of x86 are written once, here,
    /// and both backends only have to implement micro-ops. Every op that can
    /// fault comes before the first register write, which makes faults
    /// precise for free. Returns false if the instruction is not supported
    /// (a <see cref="Uop.Fault"/> op has then been emitted instead).
    /// </summary>
    public bool Lower()
    {
        bool ok = !Addresses16Bit() && (IsLocked() ? Locked() : I.Mnemonic switch
        {
            Mnemonic.Mov => Mov(),
            Mnemonic.Movzx => MovExtend(signed: false),
            Mnemonic.Movsx => MovExtend(signed: true),
            Mnemonic.Lea => Lea(),
            Mnemonic.Add => Alu(Uop.Add),
            Mnemonic.Adc => Alu(Uop.Adc),
            Mnemonic.Sub => Alu(Uop.Sub),
            Mnemonic.Sbb => Alu(Uop.Sbb),
            Mnemonic.And => Alu(Uop.And),
            Mnemonic.Or => Alu(Uop.Or),
            Mnemonic.Xor => Alu(Uop.Xor),
            Mnemonic.Cmp => Alu(Uop.Sub, writeBack: false),
            Mnemonic.Test => Alu(Uop.And, writeBack: false),
            Mnemonic.Inc => Unary(Uop.Inc),
            Mnemonic.Dec => Unary(Uop.Dec),
            Mnemonic.Not => Unary(Uop.Not),
            Mnemonic.Neg => Neg(),
            Mnemonic.Shl or Mnemonic.Sal => Shift(Uop.Shl),
            Mnemonic.Shr => Shift(Uop.Shr),
            Mnemonic.Sar => Shift(Uop.Sar),
            Mnemonic.Rol => Shift(Uop.Rol),
            Mnemonic.Ror => Shift(Uop.Ror),
            Mnemonic.Rcl => Shift(Uop.Rcl),
            Mnemonic.Rcr => Shift(Uop.Rcr),
            Mnemonic.Shld => DoubleShift(Uop.Shld),
            Mnemonic.Shrd => DoubleShift(Uop.Shrd),
            Mnemonic.Mul => MulOne(signed: false),
            Mnemonic.Imul => Imul(),
            Mnemonic.Div => Div(signed: false),
            Mnemonic.Idiv => Div(signed: true),
            Mnemonic.Cdq => SignSplit(4),
            Mnemonic.Cwd => SignSplit(2),
            Mnemonic.Cwde => Widen(2),
            Mnemonic.Cbw => Widen(1),
            Mnemonic.Xchg => Xchg(),
            Mnemonic.Cmpxchg => Cmpxchg(),
            Mnemonic.Xadd => Xadd(),
            Mnemonic.Bswap => Bswap(),
            Mnemonic.Bt => BitTest(0),
            Mnemonic.Bts => BitTest(1),
            Mnemonic.Btr => BitTest(2),
            Mnemonic.Btc => BitTest(3),
            Mnemonic.Bsf => BitScan(Uop.Bsf),
            Mnemonic.Bsr => BitScan(Uop.Bsr),
            Mnemonic.Lzcnt => BitScan(Uop.Lzcnt),
            Mnemonic.Tzcnt => BitScan(Uop.Tzcnt),
            Mnemonic.Popcnt => BitScan(Uop.Popcnt),
            Mnemonic.Jmp => Jmp(),
            Mnemonic.Jecxz => JmpCx(CxBranch.Jecxz, Code.Jecxz_rel8_32),
            Mnemonic.Loop => JmpCx(CxBranch.Loop, Code.Loop_rel8_32_ECX),
            Mnemonic.Loope => JmpCx(CxBranch.Loope, Code.Loope_rel8_32_ECX),
            Mnemonic.Loopne => JmpCx(CxBranch.Loopne, Code.Loopne_rel8_32_ECX),
            Mnemonic.Call => Call(),
            Mnemonic.Ret => Ret(),
            Mnemonic.Push => Push(),
            Mnemonic.Pop => Pop(),
            Mnemonic.Pushad => Pushad(),
            Mnemonic.Popad => Popad(),
            Mnemonic.Pushfd => Pushfd(),
            Mnemonic.Popfd => Popfd(),
            Mnemonic.Leave => Leave(),
            Mnemonic.Enter => Enter(),
            Mnemonic.Nop or Mnemonic.Pause or Mnemonic.Endbr32 => true,
            Mnemonic.Cpuid => System(Uop.Cpuid),
            Mnemonic.Rdtsc => System(Uop.Rdtsc),
            Mnemonic.Hlt => System(Uop.Hlt),
            Mnemonic.Int => Int(),
            Mnemonic.Clc => FlagOp(0),
            Mnemonic.Stc => FlagOp(1),
            Mnemonic.Cmc => FlagOp(2),
            Mnemonic.Cld => FlagOp(3),
            Mnemonic.Std => FlagOp(4),
            Mnemonic.Sahf => Sahf(),
            Mnemonic.Lahf => Lahf(),
            Mnemonic.Movsb or Mnemonic.Movsw or Mnemonic.Movsd => StringOp(StringKind.Movs),
            Mnemonic.Stosb or Mnemonic.Stosw or Mnemonic.Stosd => StringOp(StringKind.Stos),
            Mnemonic.Lodsb or Mnemonic.Lodsw or Mnemonic.Lodsd => StringOp(StringKind.Lods),
            Mnemonic.Cmpsb or Mnemonic.Cmpsw or Mnemonic.Cmpsd => StringOp(StringKind.Cmps),
            Mnemonic.Scasb or Mnemonic.Scasw or Mnemonic.Scasd => StringOp(StringKind.Scas),
            _ => Conditional(),
        });
        if (!ok)
            Unsupported();
        return ok;
    }

    /// <summary>
    /// True if the instruction addresses memory with 16-bit address size (a
    /// 0x67 prefix): [bx+si] and the like, a 16-bit displacement alone, or
    /// string operands in SI/DI. The ABI has no 16-bit addressing, and the
    /// lowering would otherwise run it as a 32-bit access through EBX.
    /// (jcxz and loop* with 0x67, which count in CX, have their own Code and
    /// are refused where they are lowered.)
    /// </summary>
    private bool Addresses16Bit()
    {
        for (int i = 0; i < I.OpCount; i++)
        {
            switch (I.GetOpKind(i))
            {
                case OpKind.Memory:
                    if (I.MemoryBase.IsGPR16() || I.MemoryIndex.IsGPR16()
                        || (I.MemoryBase == Register.None && I.MemoryIndex == Register.None && I.MemoryDisplSize == 2))
                        return true;
                    break;
                case OpKind.MemorySegSI or OpKind.MemorySegDI or OpKind.MemoryESDI:
                    return true;
            }
        }
        return false;
    }

    /// <summary>Jcc, SETcc and CMOVcc share Iced's condition code.</summary>
    private bool Conditional()
    {
        if (I.ConditionCode == ConditionCode.None)
            return false;
        if (I.IsJccShort || I.IsJccNear)
            return Jcc();
        if (IsSetcc(I.Code))
            return SetCc();
        if (IsCmovcc(I.Code))
            return CMov();
        return false;
    }

    private static bool IsSetcc(Code c) => c >= Code.Seto_rm8 && c <= Code.Setg_rm8;

    private static bool IsCmovcc(Code c) => c >= Code.Cmovo_r16_rm16 && c <= Code.Cmovg_r64_rm64;

    /// <summary>x86 condition number (0 = o ... 15 = g) of the current instruction.</summary>
    private int Cc => (int)I.ConditionCode - 1;

    /// <summary>A fault of the instruction at an address, with its bytes (the translator supplies it).</summary>
    public Func<FaultKind, uint, GuestFault> NewFault { get; set; } = (kind, eip) => new(kind, eip, null, null, []);

    private void Unsupported() => Fault(NewFault(FaultKind.UnsupportedInstruction, _b.Eip));

    /// <summary>Emits a stop with <paramref name="fault"/>, raised if the guest runs this far.</summary>
    public void Fault(GuestFault fault)
    {
        int index = _b.AddFault(fault);
        ref var op = ref _b.Emit(Uop.Fault);
        op.Imm = (uint)index;
    }

    // ---- operands ----

    private static byte RegSlot(Register r) => (byte)(r.GetFullRegister32() - Register.EAX);

    private static bool IsHigh8(Register r) => r is Register.AH or Register.CH or Register.DH or Register.BH;

    private int OpSize(int i) => I.GetOpKind(i) switch
    {
        OpKind.Register => I.GetOpRegister(i).GetSize(),
        OpKind.Memory => I.MemorySize.GetSize(),
        _ => i == 0 ? 4 : OpSize(0),
    };

    private bool IsReg(int i) => I.GetOpKind(i) == OpKind.Register;

    private bool IsMem(int i) => I.GetOpKind(i) == OpKind.Memory;

    private bool IsImm(int i) => I.GetOpKind(i) is OpKind.Immediate8 or OpKind.Immediate16 or OpKind.Immediate32
        or OpKind.Immediate8to16 or OpKind.Immediate8to32 or OpKind.Immediate8_2nd;

    /// <summary>Copies the instruction's memory operand (flat segments: the segment is ignored).</summary>
    private void SetMem(ref MicroOp op)
    {
        op.Base = I.MemoryBase == Register.None ? MicroOp.Zero : RegSlot(I.MemoryBase);
        op.Index = I.MemoryIndex == Register.None ? MicroOp.Zero : RegSlot(I.MemoryIndex);
        op.Scale = (byte)(I.MemoryIndexScale switch { 1 => 0, 2 => 1, 4 => 2, _ => 3 });
        op.Disp = I.MemoryDisplacement32;
    }

    private byte Load(int size, bool signed = false)
    {
        byte t = _b.Temp();
        ref var op = ref _b.Emit(Uop.Load, size);
        op.D = t;
        if (signed) op.Flags |= UopFlags.Signed;
        SetMem(ref op);
        return t;
    }

    private void Store(int size, byte value)
    {
        ref var op = ref _b.Emit(Uop.Store, size);
        op.A = value;
        SetMem(ref op);
    }

    private byte Const(uint value)
    {
        byte t = _b.Temp();
        ref var op = ref _b.Emit(Uop.Mov);
        op.D = t;
        op.Flags = UopFlags.BImm;
        op.Imm = value;
        return t;
    }

    private void Mov(byte dst, byte src)
    {
        if (dst == src) return;
        ref var op = ref _b.Emit(Uop.Mov);
        op.D = dst;
        op.B = src;
    }

    /// <summary>Reads a register piece zero-extended (sign-extended on request) into a slot.</summary>
    private byte ReadReg(Register r, bool signed = false)
    {
        int size = r.GetSize();
        byte slot = RegSlot(r);
        if (size == 4)
            return slot;
        byte t = _b.Temp();
        ref var op = ref _b.Emit(Uop.Ext, size);
        op.D = t;
        op.A = slot;
        if (IsHigh8(r)) op.Flags |= UopFlags.High8;
        if (signed) op.Flags |= UopFlags.Signed;
        return t;
    }

    /// <summary>Operand <paramref name="i"/> as a slot, zero-extended from its size (or sign-extended).</summary>
    private byte Read(int i, bool signed = false)
    {
        switch (I.GetOpKind(i))
        {
            case OpKind.Register:
                return ReadReg(I.GetOpRegister(i), signed);
            case OpKind.Memory:
                return Load(I.MemorySize.GetSize(), signed);
            default:
                return Const(Immediate(i));
        }
    }

    private uint Immediate(int i) => I.GetOpKind(i) switch
    {
        OpKind.Immediate8 => I.Immediate8,
        OpKind.Immediate8_2nd => I.Immediate8_2nd,
        OpKind.Immediate16 => I.Immediate16,
        _ => (uint)I.GetImmediate(i),
    };

    /// <summary>Points op.B at operand <paramref name="i"/>: an immediate in place, else a slot.</summary>
    private void SetB(ref MicroOp op, byte slotOrImmOperand, int i)
    {
        if (IsImm(i))
        {
            op.Flags |= UopFlags.BImm;
            op.Imm = Immediate(i);
        }
        else
        {
            op.B = slotOrImmOperand;
        }
    }

    /// <summary>Writes <paramref name="value"/> to a register piece (merging 8/16-bit writes).</summary>
    private void WriteReg(Register r, byte value)
    {
        int size = r.GetSize();
        byte slot = RegSlot(r);
        if (size == 4)
        {
            Mov(slot, value);
            return;
        }
        ref var op = ref _b.Emit(Uop.Merge, size);
        op.D = slot;
        op.A = value;
        if (IsHigh8(r)) op.Flags |= UopFlags.High8;
    }

    /// <summary>Writes operand <paramref name="i"/> (register or memory).</summary>
    private void Write(int i, byte value)
    {
        if (IsReg(i))
            WriteReg(I.GetOpRegister(i), value);
        else
            Store(I.MemorySize.GetSize(), value);
    }

    /// <summary>Stores a result computed into <see cref="ResultSlot"/>'s slot: nothing to do for a 32-bit register.</summary>
    private void WriteResult(byte d)
    {
        if (!(IsReg(0) && I.GetOpRegister(0).GetSize() == 4))
            Write(0, d);
    }

    /// <summary>Where an ALU result goes: straight into a 32-bit register, else a temporary.</summary>
    private byte ResultSlot(int i) =>
        IsReg(i) && I.GetOpRegister(i).GetSize() == 4 ? RegSlot(I.GetOpRegister(i)) : _b.Temp();
}
