using System.Numerics;
using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.IR;

namespace Sharpvisor.Jit.Semantics;

/// <summary>bsf/bsr/lzcnt/tzcnt/popcnt and bt/bts/btr/btc.</summary>
internal static unsafe partial class Interpreter
{
    internal static uint BitScan(CpuState* s, Uop kind, int size, uint src, uint old, bool setFlags)
    {
        int bits = size * 8;
        src &= size == 4 ? uint.MaxValue : (1u << bits) - 1;
        uint res;
        uint flags;
        switch (kind)
        {
            case Uop.Bsf:
            case Uop.Bsr:
                // A zero source leaves the destination as it was (what Intel and AMD parts do).
                res = src == 0 ? old : kind == Uop.Bsf ? (uint)BitOperations.TrailingZeroCount(src) : (uint)(31 - BitOperations.LeadingZeroCount(src));
                if (setFlags) SetFlagBits(s, Eflags.ZF, src == 0 ? Eflags.ZF : 0);
                return res;
            case Uop.Lzcnt:
                res = (uint)(BitOperations.LeadingZeroCount(src) - (32 - bits));
                flags = (src == 0 ? Eflags.CF : 0) | (res == 0 ? Eflags.ZF : 0);
                if (setFlags) SetFlagBits(s, Eflags.CF | Eflags.ZF, flags);
                return res;
            case Uop.Tzcnt:
                res = src == 0 ? (uint)bits : (uint)BitOperations.TrailingZeroCount(src);
                flags = (src == 0 ? Eflags.CF : 0) | (res == 0 ? Eflags.ZF : 0);
                if (setFlags) SetFlagBits(s, Eflags.CF | Eflags.ZF, flags);
                return res;
            default: // popcnt: every arithmetic flag cleared but ZF
                res = (uint)BitOperations.PopCount(src);
                if (setFlags) SetFlagBits(s, Eflags.Arith, src == 0 ? Eflags.ZF : 0);
                return res;
        }
    }

    internal static uint BitTest(CpuState* s, int which, int size, uint value, uint bit, bool setFlags)
    {
        int n = (int)(bit & (uint)(size * 8 - 1));
        uint m = 1u << n;
        if (setFlags) SetFlagBits(s, Eflags.CF, (value & m) != 0 ? Eflags.CF : 0);
        return which switch
        {
            1 => value | m,
            2 => value & ~m,
            3 => value ^ m,
            _ => value,
        };
    }
}
