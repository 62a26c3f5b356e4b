using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Native;

namespace Sharpvisor.Jit.Semantics;

/// <summary>
/// Runs micro-ops with one dense switch: the semantics of every op, written
/// once. Threaded code (<see cref="Threaded.ThreadedCode"/>) hands it the uncommon ops,
/// and the IL backend the ops it does not emit in line.
/// </summary>
internal static unsafe partial class Interpreter
{
    /// <summary>Runs exactly op <paramref name="index"/>: how threaded code and IL regions run uncommon ops.</summary>
    public static BlockExit Step(Vcpu v, CpuState* s, Block block, int index) => Run(v, s, block, index, index + 1);

    /// <summary>
    /// Runs ops from <paramref name="start"/> until an exit (returns
    /// <see cref="BlockExit.Continue"/>, <see cref="BlockExit.Taken"/> or <see cref="BlockExit.Fallthrough"/>
    /// with <c>s->Eip</c> set, or <see cref="BlockExit.Stop"/> with the vCPU's exit set),
    /// or until the op at <paramref name="stopAt"/> (returns <see cref="BlockExit.Reached"/>).
    /// </summary>
    public static BlockExit Run(Vcpu v, CpuState* s, Block block, int start, int stopAt)
    {
        uint* r = s->Slots;
        byte* mem = v.MemoryBase;
        ulong memSize = v.MemorySize;
        byte* code = v.CodePages;
        ref MicroOp first = ref MemoryMarshal.GetArrayDataReference(block.Ops);
        for (int i = start; ; i++)
        {
            if (i == stopAt)
                return BlockExit.Reached;
            ref MicroOp op = ref Unsafe.Add(ref first, i);
            switch (op.Kind)
            {
                case Uop.Mov:
                {
                    uint b = B(ref op, r);
                    r[op.D] = b;
                    break;
                }
                case Uop.Ext:
                    r[op.D] = Extend(r[op.A], op.Size, op.Flags);
                    break;
                case Uop.Merge:
                    r[op.D] = MergeInto(r[op.D], r[op.A], op.Size, op.Flags);
                    break;
                case Uop.Lea:
                    r[op.D] = r[op.Base] + (r[op.Index] << op.Scale) + op.Disp;
                    break;
                case Uop.Load:
                {
                    uint ea = r[op.Base] + (r[op.Index] << op.Scale) + op.Disp;
                    if ((ulong)ea + op.Size > memSize)
                        return v.MemoryFault(s, ea, op.Size, FaultKind.ReadOutsideRam, op.Eip);
                    r[op.D] = LoadValue(mem, ea, op.Size, op.Flags);
                    break;
                }
                case Uop.Store:
                {
                    uint ea = r[op.Base] + (r[op.Index] << op.Scale) + op.Disp;
                    if ((ulong)ea + op.Size > memSize)
                        return v.MemoryFault(s, ea, op.Size, FaultKind.WriteOutsideRam, op.Eip);
                    uint value = (op.Flags & UopFlags.BImm) != 0 ? op.Imm : r[op.A];
                    if ((code[ea >> 12] | code[(ea + op.Size - 1) >> 12]) != 0
                        && v.Engine.OnCodeWrite(ea, op.Size, value))
                    {
                        StoreValue(mem, ea, op.Size, value);
                        return FinishAfterCodeWrite(v, s, block, i);
                    }
                    StoreValue(mem, ea, op.Size, value);
                    break;
                }
                case Uop.Atomic:
                {
                    BlockExit status = Atomic(v, s, block, i, ref op);
                    if (status != BlockExit.Reached)
                        return status;
                    break;
                }
                case Uop.Check:
                {
                    uint ea = r[op.Base] + (r[op.Index] << op.Scale) + op.Disp;
                    if ((ulong)ea + op.Imm > memSize)
                        return v.MemoryFault(s, ea, op.Imm, FaultKind.AccessOutsideRam, op.Eip);
                    break;
                }
                case Uop.Add:
                {
                    uint b = B(ref op, r);
                    uint a = r[op.A], res = a + b;
                    r[op.D] = res;
                    if ((op.Flags & UopFlags.SetFlags) != 0) Record(s, LazyOp.Add, op.Size, a, b, res);
                    break;
                }
                case Uop.Sub:
                {
                    uint b = B(ref op, r);
                    uint a = r[op.A], res = a - b;
                    r[op.D] = res;
                    if ((op.Flags & UopFlags.SetFlags) != 0) Record(s, LazyOp.Sub, op.Size, a, b, res);
                    break;
                }
                case Uop.And:
                {
                    uint b = B(ref op, r);
                    uint res = r[op.A] & b;
                    r[op.D] = res;
                    if ((op.Flags & UopFlags.SetFlags) != 0) Record(s, LazyOp.Logic, op.Size, 0, 0, res);
                    break;
                }
                case Uop.Or:
                {
                    uint b = B(ref op, r);
                    uint res = r[op.A] | b;
                    r[op.D] = res;
                    if ((op.Flags & UopFlags.SetFlags) != 0) Record(s, LazyOp.Logic, op.Size, 0, 0, res);
                    break;
                }
                case Uop.Xor:
                {
                    uint b = B(ref op, r);
                    uint res = r[op.A] ^ b;
                    r[op.D] = res;
                    if ((op.Flags & UopFlags.SetFlags) != 0) Record(s, LazyOp.Logic, op.Size, 0, 0, res);
                    break;
                }
                case Uop.Adc:
                {
                    uint b = B(ref op, r);
                    uint a = r[op.A], c = LazyFlags.Carry(s), res = a + b + c;
                    r[op.D] = res;
                    if ((op.Flags & UopFlags.SetFlags) != 0) { Record(s, LazyOp.Adc, op.Size, a, b, res); s->CcCarry = c; }
                    break;
                }
                case Uop.Sbb:
                {
                    uint b = B(ref op, r);
                    uint a = r[op.A], c = LazyFlags.Carry(s), res = a - b - c;
                    r[op.D] = res;
                    if ((op.Flags & UopFlags.SetFlags) != 0) { Record(s, LazyOp.Sbb, op.Size, a, b, res); s->CcCarry = c; }
                    break;
                }
                case Uop.Inc:
                case Uop.Dec:
                {
                    uint a = r[op.A], res = op.Kind == Uop.Inc ? a + 1 : a - 1;
                    if ((op.Flags & UopFlags.SetFlags) != 0)
                    {
                        uint c = LazyFlags.Carry(s);
                        Record(s, op.Kind == Uop.Inc ? LazyOp.Inc : LazyOp.Dec, op.Size, a, 1, res);
                        s->CcCarry = c;
                    }
                    r[op.D] = res;
                    break;
                }
                case Uop.Not:
                    r[op.D] = ~r[op.A];
                    break;
                case Uop.Shl:
                {
                    uint b = B(ref op, r);
                    uint a = r[op.A], c = b & 31, res = a << (int)c;
                    r[op.D] = res;
                    if (c != 0 && (op.Flags & UopFlags.SetFlags) != 0) Record(s, LazyOp.Shl, op.Size, a, c, res);
                    break;
                }
                case Uop.Shr:
                {
                    uint b = B(ref op, r);
                    uint a = r[op.A], c = b & 31, res = a >> (int)c;
                    r[op.D] = res;
                    if (c != 0 && (op.Flags & UopFlags.SetFlags) != 0) Record(s, LazyOp.Shr, op.Size, a, c, res);
                    break;
                }
                case Uop.Sar:
                {
                    uint b = B(ref op, r);
                    uint a = r[op.A], c = b & 31, res = (uint)((int)a >> (int)c);
                    r[op.D] = res;
                    if (c != 0 && (op.Flags & UopFlags.SetFlags) != 0) Record(s, LazyOp.Sar, op.Size, a, c, res);
                    break;
                }
                case Uop.Rol:
                case Uop.Ror:
                case Uop.Rcl:
                case Uop.Rcr:
                    r[op.D] = Rotate(s, op.Kind, op.Size, r[op.A], B(ref op, r) & 31, (op.Flags & UopFlags.SetFlags) != 0);
                    break;
                case Uop.Shld:
                case Uop.Shrd:
                    r[op.D] = DoubleShift(s, op.Kind, op.Size, r[op.A], B(ref op, r),
                        (op.Flags & UopFlags.CountImm) != 0 ? op.Imm : r[op.Base] & 31, (op.Flags & UopFlags.SetFlags) != 0);
                    break;
                case Uop.Mul:
                {
                    uint b = B(ref op, r);
                    uint a = r[op.A];
                    long p = (long)(int)a * (int)b;
                    uint res = (uint)p;
                    r[op.D] = res;
                    if ((op.Flags & UopFlags.SetFlags) != 0)
                    {
                        bool overflow = op.Size == 4 ? p != (int)p : p != (short)p;
                        Record(s, LazyOp.Mul, op.Size, overflow ? 1u : 0u, 0, res);
                    }
                    break;
                }
                case Uop.MulWide:
                    MulWide(s, r, ref op, B(ref op, r));
                    break;
                case Uop.Div:
                    if (!Divide(r, op.Size, (op.Flags & UopFlags.Signed) != 0, r[op.A]))
                        return v.Fault(s, FaultKind.DivideError, op.Eip);
                    break;
                case Uop.Bswap:
                    r[op.D] = System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(r[op.A]);
                    break;
                case Uop.Bsf:
                case Uop.Bsr:
                case Uop.Lzcnt:
                case Uop.Tzcnt:
                case Uop.Popcnt:
                    r[op.D] = BitScan(s, op.Kind, op.Size, r[op.A], r[op.D], (op.Flags & UopFlags.SetFlags) != 0);
                    break;
                case Uop.Bt:
                    r[op.D] = BitTest(s, op.Cc, op.Size, r[op.A], B(ref op, r), (op.Flags & UopFlags.SetFlags) != 0);
                    break;
                case Uop.SetCc:
                    r[op.D] = LazyFlags.Condition(s, op.Cc) ? 1u : 0u;
                    break;
                case Uop.CMov:
                    if (LazyFlags.Condition(s, op.Cc)) r[op.D] = r[op.A];
                    break;
                case Uop.GetCf:
                    r[op.D] = LazyFlags.Carry(s);
                    break;
                case Uop.Pushf:
                    r[op.D] = LazyFlags.Materialize(s);
                    break;
                case Uop.Popf:
                    s->Flags = (r[op.A] & Eflags.PopfWritable) | Eflags.Reserved1;
                    s->CcOp = (uint)LazyOp.None;
                    break;
                case Uop.FlagOp:
                    FlagOp(s, r, ref op);
                    break;
                case Uop.Jmp:
                    s->Eip = op.Imm;
                    return BlockExit.Taken;
                case Uop.Jcc:
                    if (LazyFlags.Condition(s, op.Cc))
                    {
                        s->Eip = op.Imm;
                        return BlockExit.Taken;
                    }
                    s->Eip = op.Next;
                    return BlockExit.Fallthrough;
                case Uop.JmpInd:
                    s->Eip = r[op.A];
                    return BlockExit.Continue;
                case Uop.AluJcc:
                {
                    uint a = r[op.A], b = B(ref op, r);
                    uint res;
                    uint cc;
                    if (op.Scale == (byte)Uop.Sub)
                    {
                        res = a - b;
                        cc = (uint)LazyOp.Sub | ((uint)op.Size << 8);
                    }
                    else
                    {
                        res = a & b;
                        cc = (uint)LazyOp.Logic | ((uint)op.Size << 8);
                    }
                    r[op.D] = res;
                    s->CcOp = cc;
                    s->CcA = a;
                    s->CcB = b;
                    s->CcRes = res;
                    if (LazyFlags.ConditionOf(op.Cc, cc, a, b, res, 0, s))
                    {
                        s->Eip = op.Disp;
                        return BlockExit.Taken;
                    }
                    s->Eip = op.Next;
                    return BlockExit.Fallthrough;
                }
                case Uop.LoadAlu:
                {
                    uint ea = r[op.Base] + (r[op.Index] << op.Scale) + op.Disp;
                    if ((ulong)ea + op.Size > memSize)
                        return v.MemoryFault(s, ea, op.Size, FaultKind.ReadOutsideRam, op.Eip);
                    uint a = r[op.A], b = LoadValue(mem, ea, op.Size, 0), res;
                    LazyOp lop;
                    switch ((Uop)op.Cc)
                    {
                        case Uop.Add: res = a + b; lop = LazyOp.Add; break;
                        case Uop.Sub: res = a - b; lop = LazyOp.Sub; break;
                        case Uop.And: res = a & b; lop = LazyOp.Logic; break;
                        case Uop.Or: res = a | b; lop = LazyOp.Logic; break;
                        default: res = a ^ b; lop = LazyOp.Logic; break;
                    }
                    r[op.D] = res;
                    if ((op.Flags & UopFlags.SetFlags) != 0) Record(s, lop, op.Size, a, b, res);
                    break;
                }
                case Uop.JmpCx:
                    if (CxTaken(s, r, op.Cc))
                    {
                        s->Eip = op.Imm;
                        return BlockExit.Taken;
                    }
                    s->Eip = op.Next;
                    return BlockExit.Fallthrough;
                case Uop.Enter:
                    if (!Enter(v, s, ref op, out BlockExit enterStatus))
                        return enterStatus;
                    break;
                case Uop.Cpuid:
                    Cpuid(v, r);
                    break;
                case Uop.Rdtsc:
                {
                    ulong tsc = v.Engine.ReadTsc();
                    r[0] = (uint)tsc;
                    r[2] = (uint)(tsc >> 32);
                    break;
                }
                // Journey: shared-hypercall
                // The same call from the shared semantics, which IL regions
                // run for the ops they do not compile themselves. The host needs the guest's state
                // exact: the region has spilled every register it held in
                // locals before it called here, and EIP already points after
                // the instruction, as a real trap would leave it.
                case Uop.Hypercall:
                case Uop.Hlt:
                {
                    BlockExit status = op.Kind == Uop.Hypercall ? Hypercall(v, s, op.Next) : Halt(v, s, op.Next);
                    if (status != BlockExit.Reached)
                        return status;
                    break;
                }
                case Uop.String:
                {
                    BlockExit status = StringOp(v, s, ref op);
                    if (status != BlockExit.Continue)
                        return status == BlockExit.Reenter ? BlockExit.Continue : status;
                    break;
                }
                case Uop.Fault:
                    return v.Stop(s, VcpuExit.Of(block.Faults[op.Imm]), op.Eip);
                default:
                    return v.Stop(s, new VcpuExit(StopReason.Error, $"internal error: micro-op {op.Kind} has no threaded handler"), op.Eip);
            }
        }
    }

    /// <summary>
    /// The guest just wrote to code this block may have been translated from:
    /// finish the current instruction's remaining ops, then leave the block so
    /// that the next instruction is fetched anew (x86 orders self-modifying code
    /// this way for the writing CPU).
    /// </summary>
    private static BlockExit FinishAfterCodeWrite(Vcpu v, CpuState* s, Block block, int i)
    {
        var ops = block.Ops;
        uint eip = ops[i].Eip;
        int end = i + 1;
        while (end < ops.Length && ops[end].Eip == eip)
            end++;
        if (end == i + 1)
        {
            s->Eip = ops[i].Next;
            return BlockExit.Continue;
        }
        BlockExit status = Run(v, s, block, i + 1, end);
        if (status == BlockExit.Reached)
            s->Eip = ops[i].Next;
        return status == BlockExit.Stop ? BlockExit.Stop : BlockExit.Continue;
    }

    /// <summary>Operand B: the immediate or a slot.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint B(ref MicroOp op, uint* r) => (op.Flags & UopFlags.BImm) != 0 ? op.Imm : r[op.B];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Record(CpuState* s, LazyOp op, int size, uint a, uint b, uint res)
    {
        s->CcOp = (uint)op | ((uint)size << 8);
        s->CcA = a;
        s->CcB = b;
        s->CcRes = res;
    }

    /// <summary>Replaces the bits in <paramref name="mask"/> of the arithmetic flags, keeping the rest.</summary>
    private static void SetFlagBits(CpuState* s, uint mask, uint bits)
    {
        uint f = LazyFlags.Materialize(s);
        s->Flags = (f & ~mask) | (bits & mask);
        s->CcOp = (uint)LazyOp.None;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static uint Extend(uint v, int size, UopFlags flags)
    {
        if ((flags & UopFlags.High8) != 0) v >>= 8;
        if ((flags & UopFlags.Signed) != 0)
            return size == 1 ? (uint)(sbyte)v : (uint)(short)v;
        return size == 1 ? (byte)v : (ushort)v;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static uint MergeInto(uint reg, uint value, int size, UopFlags flags)
    {
        if ((flags & UopFlags.High8) != 0)
            return (reg & 0xFFFF00FFu) | ((value & 0xFF) << 8);
        return size == 1 ? (reg & 0xFFFFFF00u) | (value & 0xFF) : (reg & 0xFFFF0000u) | (value & 0xFFFF);
    }

    // Guest RAM through its primitives (GuestMemory.*Unchecked*), whose
    // precondition every caller meets the same way: it compared
    // ea + size against the vCPU's MemorySize (and faulted the guest
    // otherwise) just before, and mem is the vCPU's MemoryBase, live while
    // the vCPU runs. They are volatile, so that the JIT never hoists a load
    // out of a guest spin-wait on memory another vCPU writes.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static uint LoadValue(byte* mem, uint ea, int size, UopFlags flags)
    {
        uint x = size switch
        {
            1 => GuestMemory.ReadUnchecked8(mem, ea),
            2 => GuestMemory.ReadUnchecked16(mem, ea),
            _ => GuestMemory.ReadUnchecked32(mem, ea),
        };
        if ((flags & UopFlags.Signed) != 0)
            return size == 1 ? (uint)(sbyte)x : size == 2 ? (uint)(short)x : x;
        return x;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StoreValue(byte* mem, uint ea, int size, uint value)
    {
        switch (size)
        {
            case 1: GuestMemory.WriteUnchecked8(mem, ea, (byte)value); break;
            case 2: GuestMemory.WriteUnchecked16(mem, ea, (ushort)value); break;
            default: GuestMemory.WriteUnchecked32(mem, ea, value); break;
        }
    }
}
