using System.Numerics;
using System.Runtime.CompilerServices;

namespace Sharpvisor.Jit.Cpu;

// Journey: lazy-flags
/// <summary>
/// Computes EFLAGS from the lazy record, and evaluates conditions. Both
/// backends call these, so the flags a guest sees never depend on the engine.
/// </summary>
/// <remarks>
/// Almost every x86 arithmetic instruction sets six flags, and almost none
/// of them is ever read: the next instruction overwrites them. So a
/// flag-setting op only records what it did (the operation, its operands
/// and result: QEMU's cc_op idea), and the flags are computed from that
/// record when something asks. A <c>jcc</c> right after a <c>cmp</c> asks
/// a direct question of the operands ("a &lt; b, unsigned?") and never
/// builds EFLAGS at all.
/// </remarks>
public static unsafe class LazyFlags
{
    /// <summary>Packs an operation and an operand size (1, 2 or 4 bytes) as <see cref="CpuState.CcOp"/> holds them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Pack(LazyOp op, int size) => (uint)op | ((uint)size << 8);

    /// <summary>EFLAGS with the arithmetic flags computed; the record is left as it is.</summary>
    public static uint Materialize(CpuState* s)
    {
        uint cc = s->CcOp;
        if ((LazyOp)(byte)cc == LazyOp.None)
            return s->Flags;
        return (s->Flags & ~Eflags.Arith) | Arith(cc, s->CcA, s->CcB, s->CcRes, s->CcCarry);
    }

    /// <summary>Folds the lazy record into <see cref="CpuState.Flags"/> (before an instruction changes only some flags).</summary>
    public static void Settle(CpuState* s)
    {
        s->Flags = Materialize(s);
        s->CcOp = (uint)LazyOp.None;
    }

    /// <summary>The six arithmetic flags of a recorded operation.</summary>
    public static uint Arith(uint cc, uint a, uint b, uint res, uint carry)
    {
        int size = (int)(cc >> 8);
        int bits = size * 8;
        uint mask = size == 4 ? uint.MaxValue : (1u << bits) - 1;
        uint sign = 1u << (bits - 1);
        a &= mask; b &= mask; res &= mask;

        uint f = 0;
        switch ((LazyOp)(byte)cc)
        {
            case LazyOp.Add:
                if (res < a) f |= Eflags.CF;
                if (((a ^ res) & (b ^ res) & sign) != 0) f |= Eflags.OF;
                f |= (a ^ b ^ res) & Eflags.AF;
                break;
            case LazyOp.Adc:
                if (carry != 0 ? res <= a : res < a) f |= Eflags.CF;
                if (((a ^ res) & (b ^ res) & sign) != 0) f |= Eflags.OF;
                f |= (a ^ b ^ res) & Eflags.AF;
                break;
            case LazyOp.Sub:
                if (a < b) f |= Eflags.CF;
                if (((a ^ b) & (a ^ res) & sign) != 0) f |= Eflags.OF;
                f |= (a ^ b ^ res) & Eflags.AF;
                break;
            case LazyOp.Sbb:
                if (carry != 0 ? a <= b : a < b) f |= Eflags.CF;
                if (((a ^ b) & (a ^ res) & sign) != 0) f |= Eflags.OF;
                f |= (a ^ b ^ res) & Eflags.AF;
                break;
            case LazyOp.Logic:
                break;
            case LazyOp.Inc:
                if (carry != 0) f |= Eflags.CF;
                if (res == sign) f |= Eflags.OF;
                if ((res & 0xF) == 0) f |= Eflags.AF;
                break;
            case LazyOp.Dec:
                if (carry != 0) f |= Eflags.CF;
                if (res == sign - 1) f |= Eflags.OF;
                if ((res & 0xF) == 0xF) f |= Eflags.AF;
                break;
            case LazyOp.Shl:
                // b is the count (1..31); bits shifted past the operand leave CF = 0.
                if (b <= (uint)bits && ((a >> (bits - (int)b)) & 1) != 0) f |= Eflags.CF;
                if ((((res & sign) != 0 ? 1u : 0u) ^ (f & Eflags.CF)) != 0) f |= Eflags.OF;
                break;
            case LazyOp.Shr:
                if (((a >> ((int)b - 1)) & 1) != 0) f |= Eflags.CF;
                if ((a & sign) != 0) f |= Eflags.OF;
                break;
            case LazyOp.Sar:
            {
                int signed = (int)(a << (32 - bits)) >> (32 - bits);
                int by = (int)b - 1 > 31 ? 31 : (int)b - 1;
                if (((signed >> by) & 1) != 0) f |= Eflags.CF;
                break;
            }
            case LazyOp.Mul:
                if (a != 0) f |= Eflags.CF | Eflags.OF;
                break;
        }
        return f | ZspOfMasked(res, sign);
    }

    /// <summary>ZF, SF and PF of a result of <paramref name="size"/> bytes: what every flag-setting op computes alike.</summary>
    public static uint Zsp(uint res, int size)
    {
        int bits = size * 8;
        uint mask = size == 4 ? uint.MaxValue : (1u << bits) - 1;
        return ZspOfMasked(res & mask, 1u << (bits - 1));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint ZspOfMasked(uint res, uint sign)
    {
        uint f = 0;
        if (res == 0) f |= Eflags.ZF;
        if ((res & sign) != 0) f |= Eflags.SF;
        if ((BitOperations.PopCount(res & 0xFF) & 1) == 0) f |= Eflags.PF;
        return f;
    }

    /// <summary>
    /// Evaluates condition <paramref name="cc"/> (x86 order: O NO B AE E NE BE A
    /// S NS P NP L GE LE G) on the state's record.
    /// </summary>
    public static bool Condition(CpuState* s, int cc) =>
        ConditionOf(cc, s->CcOp, s->CcA, s->CcB, s->CcRes, s->CcCarry, s);

    /// <summary>Evaluates a condition on materialized EFLAGS.</summary>
    public static bool FromFlags(uint f, int cc)
    {
        bool r = (cc >> 1) switch
        {
            0 => (f & Eflags.OF) != 0,
            1 => (f & Eflags.CF) != 0,
            2 => (f & Eflags.ZF) != 0,
            3 => (f & (Eflags.CF | Eflags.ZF)) != 0,
            4 => (f & Eflags.SF) != 0,
            5 => (f & Eflags.PF) != 0,
            6 => ((f & Eflags.SF) != 0) != ((f & Eflags.OF) != 0),
            _ => (f & Eflags.ZF) != 0 || (((f & Eflags.SF) != 0) != ((f & Eflags.OF) != 0)),
        };
        return r ^ ((cc & 1) != 0);
    }

    /// <summary>
    /// <see cref="Condition(CpuState*, int)"/> on a record held outside the
    /// state (the IL backend keeps it in locals); <c>s->Flags</c> supplies the
    /// materialized flags when <paramref name="op"/> is <see cref="LazyOp.None"/>.
    /// A compare or a logic op, the common cases, is answered from the
    /// operands without computing all six flags.
    /// </summary>
    public static bool ConditionOf(int cc, uint op, uint a, uint b, uint res, uint carry, CpuState* s)
    {
        var kind = (LazyOp)(byte)op;
        int test = cc >> 1;
        if (kind == LazyOp.Sub && test is 1 or 2 or 3 or 4 or 6 or 7)
        {
            int size = (int)(op >> 8);
            int shift = 32 - size * 8;
            uint ua = (a << shift) >> shift, ub = (b << shift) >> shift;
            int sa = (int)(a << shift) >> shift, sb = (int)(b << shift) >> shift;
            bool r = test switch
            {
                1 => ua < ub,
                2 => ua == ub,
                3 => ua <= ub,
                4 => (int)(res << shift) < 0,
                6 => sa < sb,
                _ => sa <= sb,
            };
            return r ^ ((cc & 1) != 0);
        }
        if (kind == LazyOp.Logic && test != 5)
        {
            int shift = 32 - (int)(op >> 8) * 8;
            int v = (int)(res << shift);
            bool r = test switch
            {
                0 or 1 => false,   // OF = CF = 0
                2 or 3 => v == 0,  // ZF (CF = 0)
                4 or 6 => v < 0,   // SF (OF = 0)
                _ => v <= 0,       // ZF | SF
            };
            return r ^ ((cc & 1) != 0);
        }
        if (kind == LazyOp.None)
            return FromFlags(s->Flags, cc);
        return FromFlags((s->Flags & ~Eflags.Arith) | Arith(op, a, b, res, carry), cc);
    }

    /// <summary>CF of a record held outside the state.</summary>
    public static uint CarryOf(uint op, uint a, uint b, uint res, uint carry, CpuState* s)
    {
        switch ((LazyOp)(byte)op)
        {
            case LazyOp.None: return s->Flags & Eflags.CF;
            case LazyOp.Logic: return 0;
            case LazyOp.Inc:
            case LazyOp.Dec: return carry != 0 ? 1u : 0u;
            default: return Arith(op, a, b, res, carry) & Eflags.CF;
        }
    }

    /// <summary>CF alone (adc, sbb, rcl, rcr read just this).</summary>
    public static uint Carry(CpuState* s)
    {
        uint cc = s->CcOp;
        switch ((LazyOp)(byte)cc)
        {
            case LazyOp.None: return s->Flags & Eflags.CF;
            case LazyOp.Logic: return 0;
            case LazyOp.Inc:
            case LazyOp.Dec: return s->CcCarry != 0 ? 1u : 0u;
            case LazyOp.Sub when (cc >> 8) == 4: return s->CcA < s->CcB ? 1u : 0u;
            default: return Arith(cc, s->CcA, s->CcB, s->CcRes, s->CcCarry) & Eflags.CF;
        }
    }
}
