using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.IR;

namespace Sharpvisor.Jit.Semantics;

/// <summary>rcl/rcr/rol/ror and shld/shrd: the shifts and rotates whose flags the lazy record does not cover.</summary>
internal static unsafe partial class Interpreter
{
    internal static uint Rotate(CpuState* s, Uop kind, int size, uint a, uint count, bool setFlags)
    {
        int bits = size * 8;
        uint mask = size == 4 ? uint.MaxValue : (1u << bits) - 1;
        a &= mask;
        uint msb = 1u << (bits - 1);
        if (kind is Uop.Rol or Uop.Ror)
        {
            if (count == 0)
                return a;
            int c = (int)(count % (uint)bits);
            uint res = kind == Uop.Rol
                ? ((a << c) | (a >> ((bits - c) % bits))) & mask
                : ((a >> c) | (a << ((bits - c) % bits))) & mask;
            if (setFlags)
            {
                uint cf = kind == Uop.Rol ? res & 1 : ((res & msb) != 0 ? 1u : 0u);
                uint ov = kind == Uop.Rol
                    ? (((res & msb) != 0 ? 1u : 0u) ^ cf)
                    : (((res & msb) != 0 ? 1u : 0u) ^ ((res & (msb >> 1)) != 0 ? 1u : 0u));
                SetFlagBits(s, Eflags.CF | Eflags.OF, (cf != 0 ? Eflags.CF : 0) | (ov != 0 ? Eflags.OF : 0));
            }
            return res;
        }

        // rcl/rcr rotate through CF: a (bits + 1)-bit rotation.
        int n = (int)(count % (uint)(bits + 1));
        if (n == 0)
            return a;
        ulong carry = LazyFlags.Carry(s);
        ulong wide = (carry << bits) | a;
        int width = bits + 1;
        ulong wmask = (1UL << width) - 1;
        ulong rot = kind == Uop.Rcl
            ? ((wide << n) | (wide >> (width - n))) & wmask
            : ((wide >> n) | (wide << (width - n))) & wmask;
        uint result = (uint)(rot & mask);
        uint newCf = (uint)(rot >> bits) & 1;
        uint of = kind == Uop.Rcl
            ? (((result & msb) != 0 ? 1u : 0u) ^ newCf)
            : (((result & msb) != 0 ? 1u : 0u) ^ ((result & (msb >> 1)) != 0 ? 1u : 0u));
        SetFlagBits(s, Eflags.CF | Eflags.OF, (newCf != 0 ? Eflags.CF : 0) | (of != 0 ? Eflags.OF : 0));
        return result;
    }

    internal static uint DoubleShift(CpuState* s, Uop kind, int size, uint a, uint src, uint count, bool setFlags)
    {
        count &= 31;
        if (count == 0)
            return a;
        int bits = size * 8;
        uint res, cf;
        if (size == 4)
        {
            int c = (int)count;
            if (kind == Uop.Shld)
            {
                res = (a << c) | (src >> (32 - c));
                cf = (a >> (32 - c)) & 1;
            }
            else
            {
                res = (a >> c) | (src << (32 - c));
                cf = (a >> (c - 1)) & 1;
            }
        }
        else
        {
            // 16-bit: shift the 48-bit pattern a:src:a so that counts above 16
            // behave as the CPUs we compare against do.
            a &= 0xFFFF;
            src &= 0xFFFF;
            int c = (int)count;
            if (kind == Uop.Shld)
            {
                ulong wide = ((ulong)a << 32) | ((ulong)src << 16) | a;
                res = (uint)((wide << c) >> 32) & 0xFFFF;
                cf = (uint)((wide << (c - 1)) >> 47) & 1;
            }
            else
            {
                ulong low = ((ulong)a << 32) | ((ulong)src << 16) | a;
                res = (uint)(low >> c) & 0xFFFF;
                cf = (uint)(low >> (c - 1)) & 1;
            }
        }
        if (setFlags)
        {
            uint msb = 1u << (bits - 1);
            uint of = ((res ^ a) & msb) != 0 ? Eflags.OF : 0;
            SetFlagBits(s, Eflags.Arith, LazyFlags.Zsp(res, size) | (cf != 0 ? Eflags.CF : 0) | of);
        }
        return res;
    }
}
