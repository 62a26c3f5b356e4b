using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Runtime;

namespace Sharpvisor.Jit.Semantics;

/// <summary>The control-flow ops with more to them than a jump: loop/jecxz and enter with a nesting level.</summary>
internal static unsafe partial class Interpreter
{
    /// <summary>jecxz tests ECX; loop/loope/loopne decrement it (no flag changes) and test it, and ZF.</summary>
    internal static bool CxTaken(CpuState* s, uint* r, int kind)
    {
        if (kind == (int)CxBranch.Jecxz)
            return r[1] == 0;
        uint ecx = --r[1];
        if (ecx == 0)
            return false;
        return kind switch
        {
            (int)CxBranch.Loope => LazyFlags.Condition(s, 4),
            (int)CxBranch.Loopne => LazyFlags.Condition(s, 5),
            _ => true,
        };
    }

    /// <summary>
    /// enter with a nesting level: pushes EBP, copies level - 1 frame pointers
    /// from the old frame, pushes the new frame pointer, then reserves the locals.
    /// Every access is checked before the first write.
    /// </summary>
    internal static bool Enter(Vcpu v, CpuState* s, ref MicroOp op, out BlockExit status)
    {
        uint* r = s->Slots;
        int level = op.Cc;
        uint esp = r[4], ebp = r[5];
        uint pushBytes = 4u * (uint)(level + 1);
        uint low = esp - pushBytes;
        if ((ulong)low + pushBytes > v.MemorySize || low > esp)
        {
            status = v.MemoryFault(s, low, pushBytes, FaultKind.WriteOutsideRam, op.Eip);
            return false;
        }
        for (int i = 1; i < level; i++)
        {
            uint at = ebp - 4u * (uint)i;
            if ((ulong)at + 4 > v.MemorySize)
            {
                status = v.MemoryFault(s, at, 4, FaultKind.ReadOutsideRam, op.Eip);
                return false;
            }
        }
        byte* mem = v.MemoryBase;
        uint sp = esp - 4;
        StoreValue(mem, sp, 4, ebp);
        uint frame = sp;
        for (int i = 1; i < level; i++)
        {
            sp -= 4;
            StoreValue(mem, sp, 4, LoadValue(mem, ebp - 4u * (uint)i, 4, 0));
        }
        sp -= 4;
        StoreValue(mem, sp, 4, frame);
        r[5] = frame;
        r[4] = sp - op.Imm;
        status = BlockExit.Continue;
        return true;
    }
}
