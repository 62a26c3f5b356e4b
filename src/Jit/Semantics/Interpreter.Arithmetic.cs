using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.IR;

namespace Sharpvisor.Jit.Semantics;

/// <summary>The wide multiplies and the divides.</summary>
internal static unsafe partial class Interpreter
{
    internal static void MulWide(CpuState* s, uint* r, ref MicroOp op, uint b)
    {
        bool signed = (op.Flags & UopFlags.Signed) != 0;
        ulong p = MulWideOf(op.Size, signed, r[op.A], b);
        uint lo = (uint)p;
        r[op.D] = lo;
        r[op.Base] = (uint)(p >> 32);
        if ((op.Flags & UopFlags.SetFlags) != 0)
            Record(s, LazyOp.Mul, op.Size, MulWideOverflows(op.Size, signed, p), 0, lo);
    }

    /// <summary>mul/imul with a double-width result: the low half in bits 0-31, the high half in bits 32-63, each zero-extended from the operand size.</summary>
    internal static ulong MulWideOf(int size, bool signed, uint a, uint b)
    {
        switch (size)
        {
            case 4:
                return signed ? (ulong)((long)(int)a * (int)b) : (ulong)a * b;
            case 2:
            {
                int p = signed ? (short)a * (short)b : (int)((a & 0xFFFF) * (b & 0xFFFF));
                return ((uint)p & 0xFFFF) | ((ulong)(((uint)p >> 16) & 0xFFFF) << 32);
            }
            default:
            {
                int p = signed ? (sbyte)a * (sbyte)b : (int)((a & 0xFF) * (b & 0xFF));
                return ((uint)p & 0xFF) | ((ulong)(((uint)p >> 8) & 0xFF) << 32);
            }
        }
    }

    /// <summary>CF = OF of a <see cref="MulWideOf"/> product (1 or 0): the high half is more than the low half's extension.</summary>
    internal static uint MulWideOverflows(int size, bool signed, ulong product)
    {
        uint lo = (uint)product, hi = (uint)(product >> 32);
        if (!signed)
            return hi != 0 ? 1u : 0u;
        int bits = size * 8;
        uint mask = size == 4 ? uint.MaxValue : (1u << bits) - 1;
        uint extension = (lo & (1u << (bits - 1))) != 0 ? mask : 0;
        return hi != extension ? 1u : 0u;
    }

    /// <summary>div/idiv. Returns false for #DE, checked before anything changes (.NET would throw on x/0 and MIN/-1).</summary>
    internal static bool Divide(uint* r, int size, bool signed, uint divisor)
    {
        switch (size)
        {
            case 4:
                if (signed)
                {
                    long n = (long)(((ulong)r[2] << 32) | r[0]);
                    long d = (int)divisor;
                    if (d == 0 || (n == long.MinValue && d == -1)) return false;
                    long q = n / d;
                    if (q != (int)q) return false;
                    r[0] = (uint)q;
                    r[2] = (uint)(n % d);
                }
                else
                {
                    ulong n = ((ulong)r[2] << 32) | r[0];
                    if (divisor == 0) return false;
                    ulong q = n / divisor;
                    if (q > uint.MaxValue) return false;
                    r[0] = (uint)q;
                    r[2] = (uint)(n % divisor);
                }
                return true;
            case 2:
                if (signed)
                {
                    int n = (int)(((r[2] & 0xFFFF) << 16) | (r[0] & 0xFFFF));
                    int d = (short)divisor;
                    if (d == 0 || (n == int.MinValue && d == -1)) return false;
                    int q = n / d;
                    if (q != (short)q) return false;
                    r[0] = (r[0] & 0xFFFF0000) | ((uint)q & 0xFFFF);
                    r[2] = (r[2] & 0xFFFF0000) | ((uint)(n % d) & 0xFFFF);
                }
                else
                {
                    uint n = ((r[2] & 0xFFFF) << 16) | (r[0] & 0xFFFF);
                    uint d = divisor & 0xFFFF;
                    if (d == 0) return false;
                    uint q = n / d;
                    if (q > 0xFFFF) return false;
                    r[0] = (r[0] & 0xFFFF0000) | q;
                    r[2] = (r[2] & 0xFFFF0000) | (n % d);
                }
                return true;
            default:
                if (signed)
                {
                    int n = (short)(r[0] & 0xFFFF);
                    int d = (sbyte)divisor;
                    if (d == 0) return false;
                    int q = n / d;
                    if (q != (sbyte)q) return false;
                    r[0] = (r[0] & 0xFFFF0000) | (((uint)(n % d) & 0xFF) << 8) | ((uint)q & 0xFF);
                }
                else
                {
                    uint n = r[0] & 0xFFFF;
                    uint d = divisor & 0xFF;
                    if (d == 0) return false;
                    uint q = n / d;
                    if (q > 0xFF) return false;
                    r[0] = (r[0] & 0xFFFF0000) | ((n % d) << 8) | q;
                }
                return true;
        }
    }
}
