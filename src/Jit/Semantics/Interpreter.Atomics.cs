using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Native;

namespace Sharpvisor.Jit.Semantics;

/// <summary>The locked read-modify-writes.</summary>
internal static unsafe partial class Interpreter
{
    /// <summary>
    /// A locked read-modify-write (<see cref="Uop.Atomic"/>): a compare-and-swap
    /// loop on guest RAM, so another vCPU's access, locked or not, lands wholly
    /// before or after it. Returns <see cref="BlockExit.Reached"/> to go on.
    /// </summary>
    /// <remarks>
    /// A store over translated code takes the plain path instead (load,
    /// invalidate what changes, store): a lock word that is also code being
    /// run is not worth a second mechanism.
    /// </remarks>
    private static BlockExit Atomic(Vcpu v, CpuState* s, Block block, int i, ref MicroOp op)
    {
        uint* r = s->Slots;
        uint ea = r[op.Base] + (r[op.Index] << op.Scale) + op.Disp;
        int size = op.Size;
        if ((ulong)ea + (uint)size > v.MemorySize)
            return v.MemoryFault(s, ea, (uint)size, FaultKind.WriteOutsideRam, op.Eip);
        byte* mem = v.MemoryBase;
        var kind = (AtomicOp)op.Cc;
        uint b = (op.Flags & UopFlags.BImm) != 0 ? op.Imm : r[op.B];
        uint expected = r[op.A];
        uint mask = size == 4 ? uint.MaxValue : (1u << (size * 8)) - 1;
        bool onCode = ExecutionEngine.StoreHitsCode(v.CodePages, v.Engine.CodeBits, ea, size);
        uint carry = kind is AtomicOp.Adc or AtomicOp.Sbb ? LazyFlags.Carry(s) : 0;
        uint old, res;
        while (true)
        {
            old = LoadValue(mem, ea, size, 0);
            bool store = true;
            res = kind switch
            {
                AtomicOp.Xchg => b,
                AtomicOp.Xadd or AtomicOp.Add => old + b,
                AtomicOp.Adc => old + b + carry,
                AtomicOp.Sub => old - b,
                AtomicOp.Sbb => old - b - carry,
                AtomicOp.Bts => BitTest(s, 1, size, old, b, false),
                AtomicOp.Btr => BitTest(s, 2, size, old, b, false),
                AtomicOp.Btc => BitTest(s, 3, size, old, b, false),
                AtomicOp.And => old & b,
                AtomicOp.Or => old | b,
                AtomicOp.Xor => old ^ b,
                AtomicOp.Inc => old + 1,
                AtomicOp.Dec => old - 1,
                AtomicOp.Not => ~old,
                AtomicOp.Neg => 0 - old,
                _ => (old & mask) == (expected & mask) ? b : old, // cmpxchg
            };
            if (kind == AtomicOp.Cmpxchg && (old & mask) != (expected & mask))
                store = false; // a failed cmpxchg writes back what it read: nothing to do
            if (!store)
                break;
            if (onCode)
            {
                bool changed = v.Engine.OnCodeWrite(ea, size, res);
                StoreValue(mem, ea, size, res);
                Finish(s, kind, size, old, b, expected, res, carry, op.Flags);
                r[op.D] = old;
                return changed ? FinishAfterCodeWrite(v, s, block, i) : BlockExit.Reached;
            }
            if (CompareExchange(mem, ea, size, res, old) == (old & mask))
                break;
        }
        Finish(s, kind, size, old, b, expected, res, carry, op.Flags);
        r[op.D] = old;
        return BlockExit.Reached;
    }

    /// <summary>The flags of a locked op, as the plain instruction sets them.</summary>
    private static void Finish(CpuState* s, AtomicOp kind, int size, uint old, uint b, uint expected, uint res, uint carry, UopFlags flags)
    {
        if ((flags & UopFlags.SetFlags) == 0)
            return;
        switch (kind)
        {
            case AtomicOp.Xadd:
            case AtomicOp.Add: Record(s, LazyOp.Add, size, old, b, res); break;
            case AtomicOp.Adc: Record(s, LazyOp.Adc, size, old, b, res); s->CcCarry = carry; break;
            case AtomicOp.Sub: Record(s, LazyOp.Sub, size, old, b, res); break;
            case AtomicOp.Sbb: Record(s, LazyOp.Sbb, size, old, b, res); s->CcCarry = carry; break;
            case AtomicOp.Bts: BitTest(s, 1, size, old, b, true); break;
            case AtomicOp.Btr: BitTest(s, 2, size, old, b, true); break;
            case AtomicOp.Btc: BitTest(s, 3, size, old, b, true); break;
            case AtomicOp.Neg: Record(s, LazyOp.Sub, size, 0, old, res); break;
            case AtomicOp.Cmpxchg: Record(s, LazyOp.Sub, size, expected, old, expected - old); break;
            case AtomicOp.And:
            case AtomicOp.Or:
            case AtomicOp.Xor: Record(s, LazyOp.Logic, size, 0, 0, res); break;
            case AtomicOp.Inc:
            case AtomicOp.Dec:
            {
                uint cf = LazyFlags.Carry(s); // inc and dec keep CF
                Record(s, kind == AtomicOp.Inc ? LazyOp.Inc : LazyOp.Dec, size, old, 1, res);
                s->CcCarry = cf;
                break;
            }
        }
    }

    /// <summary>The host's own locked cmpxchg at the guest's width; returns what memory held (zero-extended).</summary>
    private static uint CompareExchange(byte* mem, uint ea, int size, uint value, uint comparand) => size switch
    {
        1 => GuestMemory.CompareExchangeUnchecked8(mem, ea, (byte)value, (byte)comparand),
        2 => GuestMemory.CompareExchangeUnchecked16(mem, ea, (ushort)value, (ushort)comparand),
        _ => GuestMemory.CompareExchangeUnchecked32(mem, ea, value, comparand),
    };
}
