using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Native;

namespace Sharpvisor.Jit.Semantics;

/// <summary>The string instructions, with rep.</summary>
internal static unsafe partial class Interpreter
{
    /// <summary>
    /// movs/stos/lods/cmps/scas, with rep. Every access is checked before it is
    /// made, so a fault leaves ESI/EDI/ECX at the element that faulted, as x86
    /// does (a rep string op is restartable).
    /// </summary>
    internal static BlockExit StringOp(Vcpu v, CpuState* s, ref MicroOp op)
    {
        uint* r = s->Slots;
        byte* mem = v.MemoryBase;
        ulong memSize = v.MemorySize;
        int size = op.Size;
        int step = (s->Flags & Eflags.DF) != 0 ? -size : size;
        var kind = (StringKind)op.Cc;
        bool rep = (op.Flags & (UopFlags.Rep | UopFlags.RepNe)) != 0;
        bool repNe = (op.Flags & UopFlags.RepNe) != 0;
        bool compares = kind is StringKind.Cmps or StringKind.Scas;

        // The common rep movs/stos with DF = 0 and no code pages touched: one bulk copy.
        if (rep && step > 0 && kind is StringKind.Movs or StringKind.Stos && r[1] != 0)
        {
            ulong bytes = (ulong)r[1] * (uint)size;
            uint src = r[6], dst = r[7];
            bool srcOk = kind == StringKind.Stos || (ulong)src + bytes <= memSize;
            bool overlap = kind == StringKind.Movs && dst > src && dst < src + bytes;
            if (srcOk && (ulong)dst + bytes <= memSize && !overlap && !v.Engine.TouchesCode(dst, bytes))
            {
                // Both ranges were checked against memSize just above.
                if (kind == StringKind.Movs)
                    GuestMemory.CopyUnchecked(mem, src, dst, (nuint)bytes);
                else if (size == 1)
                    GuestMemory.FillUnchecked(mem, dst, (nuint)bytes, (byte)r[0]);
                else
                    for (ulong k = 0; k < bytes; k += (uint)size)
                        StoreValue(mem, (uint)(dst + k), size, r[0]);
                if (kind == StringKind.Movs) r[6] = src + (uint)bytes;
                r[7] = dst + (uint)bytes;
                r[1] = 0;
                return BlockExit.Continue;
            }
        }

        while (!rep || r[1] != 0)
        {
            uint si = r[6], di = r[7];
            uint x = 0, y = 0;
            if (kind is StringKind.Movs or StringKind.Lods or StringKind.Cmps)
            {
                if ((ulong)si + (uint)size > memSize)
                    return v.MemoryFault(s, si, (uint)size, FaultKind.ReadOutsideRam, op.Eip);
                x = LoadValue(mem, si, size, 0);
            }
            if (kind is StringKind.Cmps or StringKind.Scas)
            {
                if ((ulong)di + (uint)size > memSize)
                    return v.MemoryFault(s, di, (uint)size, FaultKind.ReadOutsideRam, op.Eip);
                y = LoadValue(mem, di, size, 0);
            }
            switch (kind)
            {
                case StringKind.Movs:
                case StringKind.Stos:
                {
                    uint value = kind == StringKind.Movs ? x : r[0];
                    if ((ulong)di + (uint)size > memSize)
                        return v.MemoryFault(s, di, (uint)size, FaultKind.WriteOutsideRam, op.Eip);
                    bool code = v.Engine.TouchesCode(di, (uint)size) && v.Engine.OnCodeWrite(di, size, value);
                    StoreValue(mem, di, size, value);
                    r[7] = di + (uint)step;
                    if (kind == StringKind.Movs) r[6] = si + (uint)step;
                    if (rep) r[1]--;
                    if (code && rep && r[1] != 0)
                    {
                        // Re-enter through the dispatcher so that a copy over code takes effect at once.
                        s->Eip = op.Eip;
                        return BlockExit.Reenter;
                    }
                    break;
                }
                case StringKind.Lods:
                    r[0] = size == 4 ? x : Interpreter.MergeInto(r[0], x, size, 0);
                    r[6] = si + (uint)step;
                    if (rep) r[1]--;
                    break;
                case StringKind.Cmps:
                    Record(s, LazyOp.Sub, size, x, y, x - y);
                    r[6] = si + (uint)step;
                    r[7] = di + (uint)step;
                    break;
                case StringKind.Scas:
                {
                    uint acc = size == 4 ? r[0] : size == 2 ? r[0] & 0xFFFF : r[0] & 0xFF;
                    Record(s, LazyOp.Sub, size, acc, y, acc - y);
                    r[7] = di + (uint)step;
                    break;
                }
            }
            if (!rep)
                break;
            if (compares)
            {
                r[1]--;
                bool zf = ((x - y) & (size == 4 ? uint.MaxValue : (1u << (size * 8)) - 1)) == 0;
                if (kind == StringKind.Scas)
                {
                    uint acc = size == 4 ? r[0] : size == 2 ? r[0] & 0xFFFF : r[0] & 0xFF;
                    zf = acc == y;
                }
                if (repNe ? zf : !zf)
                    break;
            }
        }
        return BlockExit.Continue;
    }
}
