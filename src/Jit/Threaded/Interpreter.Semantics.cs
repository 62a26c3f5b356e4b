using System.Numerics;
using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Runtime;

namespace Sharpvisor.Jit.Threaded;

/// <summary>
/// The less common instructions, written once: the threaded loop calls these,
/// and the IL backend calls them for ops it does not emit in line.
/// </summary>
internal static unsafe partial class Interpreter
{
    private static uint Zsp(uint res, int size)
    {
        int bits = size * 8;
        uint mask = size == 4 ? uint.MaxValue : (1u << bits) - 1;
        res &= mask;
        uint f = 0;
        if (res == 0) f |= Eflags.ZF;
        if ((res & (1u << (bits - 1))) != 0) f |= Eflags.SF;
        if ((BitOperations.PopCount(res & 0xFF) & 1) == 0) f |= Eflags.PF;
        return f;
    }

    /// <summary>Replaces the bits in <paramref name="mask"/> of the arithmetic flags, keeping the rest.</summary>
    private static void SetFlagBits(CpuState* s, uint mask, uint bits)
    {
        uint f = LazyFlags.Materialize(s);
        s->Flags = (f & ~mask) | (bits & mask);
        s->CcOp = (uint)LazyOp.None;
    }

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
            SetFlagBits(s, Eflags.Arith, Zsp(res, size) | (cf != 0 ? Eflags.CF : 0) | of);
        }
        return res;
    }

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
    internal static bool Enter(Vcpu v, CpuState* s, ref MicroOp op, out int status)
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
        StoreValue(mem + sp, 4, ebp);
        uint frame = sp;
        for (int i = 1; i < level; i++)
        {
            sp -= 4;
            StoreValue(mem + sp, 4, LoadValue(mem + (ebp - 4u * (uint)i), 4, 0));
        }
        sp -= 4;
        StoreValue(mem + sp, 4, frame);
        r[5] = frame;
        r[4] = sp - op.Imm;
        status = Continue;
        return true;
    }

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

    internal static void FlagOp(CpuState* s, uint* r, ref MicroOp op)
    {
        switch (op.Cc)
        {
            case 0: SetFlagBits(s, Eflags.CF, 0); break;
            case 1: SetFlagBits(s, Eflags.CF, Eflags.CF); break;
            case 2: SetFlagBits(s, Eflags.CF, LazyFlags.Carry(s) != 0 ? 0 : Eflags.CF); break;
            case 3: s->Flags &= ~Eflags.DF; break;
            case 4: s->Flags |= Eflags.DF; break;
            case 5: SetFlagBits(s, Eflags.SF | Eflags.ZF | Eflags.AF | Eflags.PF | Eflags.CF, r[op.A]); break;
            default: r[op.D] = LazyFlags.Materialize(s) & 0xFF; break;
        }
    }

    // Journey: cpuid
    /// <summary>
    /// cpuid advertises exactly what the engines implement, so a guest that
    /// probes features never takes a path we would stop on.
    /// </summary>
    internal static void Cpuid(Vcpu v, uint* r)
    {
        uint leaf = r[0];
        uint a = 0, b = 0, c = 0, d = 0;
        switch (leaf)
        {
            case 0:
                a = 7;
                b = Ascii("Shar"); d = Ascii("pvis"); c = Ascii("orV1");
                break;
            case 1:
                a = 0x00000600;                       // family 6, model 0, stepping 0
                b = (uint)v.Index << 24;              // initial APIC id = vCPU index
                c = (1u << 23) | (1u << 31);          // POPCNT, hypervisor present
                d = (1u << 4) | (1u << 15);           // TSC, CMOV
                break;
            case 7:
                // BMI1 stays clear: tzcnt runs, but andn/bextr/blsi/blsmsk/blsr do not.
                break;
            case 0x40000000:
                a = 0x40000001;
                b = Ascii("Shar"); c = Ascii("pvis"); d = Ascii("orV1");
                break;
            case 0x40000001:
                a = Engines.AbiVersion;
                b = Engines.TscKhz;
                break;
            case 0x80000000:
                a = 0x80000001;
                break;
            case 0x80000001:
                c = 1u << 5;                          // ABM: lzcnt
                break;
        }
        r[0] = a; r[3] = b; r[1] = c; r[2] = d;
    }

    private static uint Ascii(string four) => (uint)(four[0] | four[1] << 8 | four[2] << 16 | four[3] << 24);

    /// <summary>
    /// movs/stos/lods/cmps/scas, with rep. Every access is checked before it is
    /// made, so a fault leaves ESI/EDI/ECX at the element that faulted, as x86
    /// does (a rep string op is restartable).
    /// </summary>
    internal static int StringOp(Vcpu v, CpuState* s, ref MicroOp op)
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
                if (kind == StringKind.Movs)
                    Buffer.MemoryCopy(mem + src, mem + dst, bytes, bytes);
                else if (size == 1)
                    new Span<byte>(mem + dst, (int)bytes).Fill((byte)r[0]);
                else
                    for (ulong k = 0; k < bytes; k += (uint)size)
                        StoreValue(mem + dst + k, size, r[0]);
                if (kind == StringKind.Movs) r[6] = src + (uint)bytes;
                r[7] = dst + (uint)bytes;
                r[1] = 0;
                return Continue;
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
                x = LoadValue(mem + si, size, 0);
            }
            if (kind is StringKind.Cmps or StringKind.Scas)
            {
                if ((ulong)di + (uint)size > memSize)
                    return v.MemoryFault(s, di, (uint)size, FaultKind.ReadOutsideRam, op.Eip);
                y = LoadValue(mem + di, size, 0);
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
                    StoreValue(mem + di, size, value);
                    r[7] = di + (uint)step;
                    if (kind == StringKind.Movs) r[6] = si + (uint)step;
                    if (rep) r[1]--;
                    if (code && rep && r[1] != 0)
                    {
                        // Re-enter through the dispatcher so that a copy over code takes effect at once.
                        s->Eip = op.Eip;
                        return Reenter;
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
        return Continue;
    }

    /// <summary>
    /// A locked read-modify-write (<see cref="Uop.Atomic"/>): a compare-and-swap
    /// loop on guest RAM, so another vCPU's access, locked or not, lands wholly
    /// before or after it. Returns <see cref="Reached"/> to go on.
    /// </summary>
    /// <remarks>
    /// A store over translated code takes the plain path instead (load,
    /// invalidate what changes, store): a lock word that is also code being
    /// run is not worth a second mechanism.
    /// </remarks>
    private static int Atomic(Vcpu v, CpuState* s, Block block, int i, ref MicroOp op)
    {
        uint* r = s->Slots;
        uint ea = r[op.Base] + (r[op.Index] << op.Scale) + op.Disp;
        int size = op.Size;
        if ((ulong)ea + (uint)size > v.MemorySize)
            return v.MemoryFault(s, ea, (uint)size, FaultKind.WriteOutsideRam, op.Eip);
        byte* p = v.MemoryBase + ea;
        var kind = (AtomicOp)op.Cc;
        uint b = (op.Flags & UopFlags.BImm) != 0 ? op.Imm : r[op.B];
        uint expected = r[op.A];
        uint mask = size == 4 ? uint.MaxValue : (1u << (size * 8)) - 1;
        bool onCode = ExecutionEngine.StoreHitsCode(v.CodePages, v.Engine.CodeBits, ea, size);
        uint carry = kind is AtomicOp.Adc or AtomicOp.Sbb ? LazyFlags.Carry(s) : 0;
        uint old, res;
        while (true)
        {
            old = LoadValue(p, size, 0);
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
                StoreValue(p, size, res);
                Finish(s, kind, size, old, b, expected, res, carry, op.Flags);
                r[op.D] = old;
                return changed ? FinishAfterCodeWrite(v, s, block, i) : Reached;
            }
            if (CompareExchange(p, size, res, old) == (old & mask))
                break;
        }
        Finish(s, kind, size, old, b, expected, res, carry, op.Flags);
        r[op.D] = old;
        return Reached;
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
    private static uint CompareExchange(byte* p, int size, uint value, uint comparand) => size switch
    {
        1 => Interlocked.CompareExchange(ref *p, (byte)value, (byte)comparand),
        2 => Interlocked.CompareExchange(ref *(ushort*)p, (ushort)value, (ushort)comparand),
        _ => Interlocked.CompareExchange(ref *(uint*)p, value, comparand),
    };
}
