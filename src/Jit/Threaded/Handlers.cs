using System.Runtime.CompilerServices;
using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.IR;

namespace Sharpvisor.Jit.Threaded;

/// <summary>The common micro-ops as threaded handlers. Anything else runs through <see cref="Slow"/>.</summary>
internal static unsafe class Handlers
{
    // Each handler ends with "return Next(ref c, o)": a call in tail position
    // that the JIT emits as a jump, so a block runs as a chain of jumps.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Next(ref ThreadedContext c, ThreadedOp* o)
    {
        o++;
        return o->Fn(ref c, o);
    }

    /// <summary>Runs the op in the switch interpreter (uncommon ops, and stores that hit code).</summary>
    public static int Slow(ref ThreadedContext c, ThreadedOp* o)
    {
        int status = Interpreter.Step(c.V, c.S, c.Block, o->OpIndex);
        return status == Interpreter.Reached ? Next(ref c, o) : status;
    }

    public static int MovR(ref ThreadedContext c, ThreadedOp* o) { c.R[o->D] = c.R[o->B]; return Next(ref c, o); }

    public static int MovI(ref ThreadedContext c, ThreadedOp* o) { c.R[o->D] = o->Imm; return Next(ref c, o); }

    public static int ExtU8(ref ThreadedContext c, ThreadedOp* o) { c.R[o->D] = (byte)c.R[o->A]; return Next(ref c, o); }

    public static int ExtU16(ref ThreadedContext c, ThreadedOp* o) { c.R[o->D] = (ushort)c.R[o->A]; return Next(ref c, o); }

    public static int ExtHigh8(ref ThreadedContext c, ThreadedOp* o) { c.R[o->D] = (byte)(c.R[o->A] >> 8); return Next(ref c, o); }

    public static int Ext(ref ThreadedContext c, ThreadedOp* o)
    {
        c.R[o->D] = Interpreter.Extend(c.R[o->A], o->Size, o->Flags);
        return Next(ref c, o);
    }

    public static int Merge(ref ThreadedContext c, ThreadedOp* o)
    {
        c.R[o->D] = Interpreter.MergeInto(c.R[o->D], c.R[o->A], o->Size, o->Flags);
        return Next(ref c, o);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Ea(ref ThreadedContext c, ThreadedOp* o) => c.R[o->Base] + (c.R[o->Index] << o->Scale) + o->Disp;

    public static int Lea(ref ThreadedContext c, ThreadedOp* o) { c.R[o->D] = Ea(ref c, o); return Next(ref c, o); }

    // ---- addressing shapes: most guest accesses are [base + disp] ----

    public interface IAddress { static abstract uint Ea(ref ThreadedContext c, ThreadedOp* o); }
    public struct Absolute : IAddress { public static uint Ea(ref ThreadedContext c, ThreadedOp* o) => o->Disp; }
    public struct BaseDisp : IAddress { public static uint Ea(ref ThreadedContext c, ThreadedOp* o) => c.R[o->Base] + o->Disp; }
    public struct Indexed : IAddress { public static uint Ea(ref ThreadedContext c, ThreadedOp* o) => c.R[o->Base] + (c.R[o->Index] << o->Scale) + o->Disp; }

    // ---- loads and stores, specialised by width, extension and address shape ----

    public interface IWidth
    {
        static abstract int Size { get; }
        static abstract uint Read(byte* p);
        static abstract void Write(byte* p, uint value);
    }

    public struct U8 : IWidth
    {
        public static int Size => 1;
        public static uint Read(byte* p) => Volatile.Read(ref *p);
        public static void Write(byte* p, uint value) => Volatile.Write(ref *p, (byte)value);
    }

    public struct S8 : IWidth
    {
        public static int Size => 1;
        public static uint Read(byte* p) => (uint)(sbyte)Volatile.Read(ref *p);
        public static void Write(byte* p, uint value) => Volatile.Write(ref *p, (byte)value);
    }

    public struct U16 : IWidth
    {
        public static int Size => 2;
        public static uint Read(byte* p) => Volatile.Read(ref Unsafe.AsRef<ushort>(p));
        public static void Write(byte* p, uint value) => Volatile.Write(ref Unsafe.AsRef<ushort>(p), (ushort)value);
    }

    public struct S16 : IWidth
    {
        public static int Size => 2;
        public static uint Read(byte* p) => (uint)(short)Volatile.Read(ref Unsafe.AsRef<ushort>(p));
        public static void Write(byte* p, uint value) => Volatile.Write(ref Unsafe.AsRef<ushort>(p), (ushort)value);
    }

    public struct U32 : IWidth
    {
        public static int Size => 4;
        public static uint Read(byte* p) => Volatile.Read(ref Unsafe.AsRef<uint>(p));
        public static void Write(byte* p, uint value) => Volatile.Write(ref Unsafe.AsRef<uint>(p), value);
    }

    public static int Load<TW, TA>(ref ThreadedContext c, ThreadedOp* o) where TW : struct, IWidth where TA : struct, IAddress
    {
        uint ea = TA.Ea(ref c, o);
        if ((ulong)ea + (uint)TW.Size > c.MemSize)
            return c.V.MemoryFault(c.S, ea, (uint)TW.Size, "read", o->Eip);
        c.R[o->D] = TW.Read(c.Mem + ea);
        return Next(ref c, o);
    }

    public static int Store<TW, TA, TV>(ref ThreadedContext c, ThreadedOp* o)
        where TW : struct, IWidth where TA : struct, IAddress where TV : struct, IValue
    {
        uint ea = TA.Ea(ref c, o);
        if ((ulong)ea + (uint)TW.Size > c.MemSize)
            return c.V.MemoryFault(c.S, ea, (uint)TW.Size, "write", o->Eip);
        if ((c.Code[ea >> 12] | c.Code[(ea + (uint)TW.Size - 1) >> 12]) != 0)
            return Slow(ref c, o); // a page holding code: the interpreter handles invalidation
        TW.Write(c.Mem + ea, TV.Value(ref c, o));
        return Next(ref c, o);
    }

    /// <summary>A store's value: register A, or the immediate (a fused <c>mov [m], imm</c>).</summary>
    public interface IValue { static abstract uint Value(ref ThreadedContext c, ThreadedOp* o); }
    public struct RegA : IValue { public static uint Value(ref ThreadedContext c, ThreadedOp* o) => c.R[o->A]; }
    public struct ImmValue : IValue { public static uint Value(ref ThreadedContext c, ThreadedOp* o) => o->Imm; }

    // ---- two-operand arithmetic, specialised by operation, operand B and flags ----

    public interface IBinary
    {
        static abstract uint Do(uint a, uint b);
        static abstract LazyOp Lazy { get; }
    }

    public struct AddOp : IBinary { public static uint Do(uint a, uint b) => a + b; public static LazyOp Lazy => LazyOp.Add; }
    public struct SubOp : IBinary { public static uint Do(uint a, uint b) => a - b; public static LazyOp Lazy => LazyOp.Sub; }
    public struct AndOp : IBinary { public static uint Do(uint a, uint b) => a & b; public static LazyOp Lazy => LazyOp.Logic; }
    public struct OrOp : IBinary { public static uint Do(uint a, uint b) => a | b; public static LazyOp Lazy => LazyOp.Logic; }
    public struct XorOp : IBinary { public static uint Do(uint a, uint b) => a ^ b; public static LazyOp Lazy => LazyOp.Logic; }
    public struct ShlOp : IBinary { public static uint Do(uint a, uint b) => a << (int)b; public static LazyOp Lazy => LazyOp.Shl; }
    public struct ShrOp : IBinary { public static uint Do(uint a, uint b) => a >> (int)b; public static LazyOp Lazy => LazyOp.Shr; }
    public struct SarOp : IBinary { public static uint Do(uint a, uint b) => (uint)((int)a >> (int)b); public static LazyOp Lazy => LazyOp.Sar; }

    public interface IOperand { static abstract uint B(ref ThreadedContext c, ThreadedOp* o); }
    public struct RegB : IOperand { public static uint B(ref ThreadedContext c, ThreadedOp* o) => c.R[o->B]; }
    public struct ImmB : IOperand { public static uint B(ref ThreadedContext c, ThreadedOp* o) => o->Imm; }

    public interface IFlagMode { static abstract bool On { get; } }
    public struct Flags : IFlagMode { public static bool On => true; }
    public struct NoFlags : IFlagMode { public static bool On => false; }

    public static int Binary<TOp, TB, TF>(ref ThreadedContext c, ThreadedOp* o)
        where TOp : struct, IBinary where TB : struct, IOperand where TF : struct, IFlagMode
    {
        uint a = c.R[o->A], b = TB.B(ref c, o), res = TOp.Do(a, b);
        c.R[o->D] = res;
        if (TF.On)
            Interpreter.Record(c.S, TOp.Lazy, o->Size, a, b, res);
        return Next(ref c, o);
    }

    /// <summary>Shifts: the count is masked to 5 bits, and a zero count changes no flag.</summary>
    public static int Shift<TOp, TB, TF>(ref ThreadedContext c, ThreadedOp* o)
        where TOp : struct, IBinary where TB : struct, IOperand where TF : struct, IFlagMode
    {
        uint a = c.R[o->A], n = TB.B(ref c, o) & 31, res = TOp.Do(a, n);
        c.R[o->D] = res;
        if (TF.On && n != 0)
            Interpreter.Record(c.S, TOp.Lazy, o->Size, a, n, res);
        return Next(ref c, o);
    }

    public static int IncDec<TF>(ref ThreadedContext c, ThreadedOp* o) where TF : struct, IFlagMode
    {
        uint a = c.R[o->A];
        bool inc = o->Cc == 0;
        uint res = inc ? a + 1 : a - 1;
        if (TF.On)
        {
            uint carry = LazyFlags.Carry(c.S);
            Interpreter.Record(c.S, inc ? LazyOp.Inc : LazyOp.Dec, o->Size, a, 1, res);
            c.S->CcCarry = carry;
        }
        c.R[o->D] = res;
        return Next(ref c, o);
    }

    public static int Not(ref ThreadedContext c, ThreadedOp* o) { c.R[o->D] = ~c.R[o->A]; return Next(ref c, o); }

    public static int LoadAlu<TOp, TF, TA>(ref ThreadedContext c, ThreadedOp* o)
        where TOp : struct, IBinary where TF : struct, IFlagMode where TA : struct, IAddress
    {
        uint ea = TA.Ea(ref c, o);
        if ((ulong)ea + o->Size > c.MemSize)
            return c.V.MemoryFault(c.S, ea, o->Size, "read", o->Eip);
        uint a = c.R[o->A], b = Interpreter.LoadValue(c.Mem + ea, o->Size, 0), res = TOp.Do(a, b);
        c.R[o->D] = res;
        if (TF.On)
            Interpreter.Record(c.S, TOp.Lazy, o->Size, a, b, res);
        return Next(ref c, o);
    }

    /// <summary>
    /// A condition on the flags record: after a 32-bit compare or logic op
    /// (nearly always) straight from the operands, else the general evaluation.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Condition(CpuState* s, int cc)
    {
        uint op = s->CcOp;
        if (op == LazyFlags.Pack(LazyOp.Sub, 4))
            return Compare32(cc, s->CcA, s->CcB, s->CcRes, s);
        if (op == LazyFlags.Pack(LazyOp.Logic, 4))
            return Logic32(cc, s->CcRes, s);
        return LazyFlags.Condition(s, cc);
    }

    public static int SetCc(ref ThreadedContext c, ThreadedOp* o)
    {
        c.R[o->D] = Condition(c.S, o->Cc) ? 1u : 0u;
        return Next(ref c, o);
    }

    public static int CMov(ref ThreadedContext c, ThreadedOp* o)
    {
        if (Condition(c.S, o->Cc))
            c.R[o->D] = c.R[o->A];
        return Next(ref c, o);
    }

    // ---- block ends: jump straight into a linked successor, else return to the block loop ----

    // Journey: threaded-chain
    /// <summary>
    /// Leaves the block by <paramref name="how"/>. If the exit is linked to a
    /// translated successor, the successor's first handler runs next, in tail
    /// position: a block-to-block jump with no return and no lookup. The
    /// budget and the RCU kick bound how long the dispatcher goes without a
    /// quiescent state and a stop check.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Exit(ref ThreadedContext c, int how)
    {
        Block block = c.Block;
        Block? next = how == Interpreter.Taken ? block.Taken : block.Fallthrough;
        if (next != null && --c.Budget > 0 && !next.Invalid && *c.Kick == 0)
        {
            ThreadedOp* first = next.ThreadedEntry;
            if (first != null)
            {
                // A loop of one block jumps to itself: skip the store and its GC write barrier.
                if (!ReferenceEquals(next, block))
                    c.Block = next;
                c.Chained++;
                return first->Fn(ref c, first);
            }
        }
        return how;
    }

    public static int Jmp(ref ThreadedContext c, ThreadedOp* o)
    {
        c.S->Eip = o->Imm;
        return Exit(ref c, Interpreter.Taken);
    }

    public static int Jcc(ref ThreadedContext c, ThreadedOp* o)
    {
        if (Condition(c.S, o->Cc))
        {
            c.S->Eip = o->Imm;
            return Exit(ref c, Interpreter.Taken);
        }
        c.S->Eip = o->Next;
        return Exit(ref c, Interpreter.Fallthrough);
    }

    /// <summary>Fused compare (or test) and branch.</summary>
    public static int AluJcc<TOp, TB>(ref ThreadedContext c, ThreadedOp* o)
        where TOp : struct, IBinary where TB : struct, IOperand
    {
        uint a = c.R[o->A], b = TB.B(ref c, o), res = TOp.Do(a, b);
        c.R[o->D] = res;
        uint cc = (uint)TOp.Lazy | ((uint)o->Size << 8);
        CpuState* s = c.S;
        s->CcOp = cc;
        s->CcA = a;
        s->CcB = b;
        s->CcRes = res;
        bool taken = o->Size != 4 ? LazyFlags.ConditionOf(o->Cc, cc, a, b, res, 0, s)
            : typeof(TOp) == typeof(SubOp) ? Compare32(o->Cc, a, b, res, s)
            : Logic32(o->Cc, res, s);
        if (taken)
        {
            s->Eip = o->Disp;
            return Exit(ref c, Interpreter.Taken);
        }
        s->Eip = o->Next;
        return Exit(ref c, Interpreter.Fallthrough);
    }

    /// <summary>A condition after a 32-bit compare, straight from the operands.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Compare32(int cc, uint a, uint b, uint res, CpuState* s) => cc switch
    {
        2 => a < b,
        3 => a >= b,
        4 => a == b,
        5 => a != b,
        6 => a <= b,
        7 => a > b,
        8 => (int)res < 0,
        9 => (int)res >= 0,
        12 => (int)a < (int)b,
        13 => (int)a >= (int)b,
        14 => (int)a <= (int)b,
        15 => (int)a > (int)b,
        _ => LazyFlags.ConditionOf(cc, LazyFlags.Pack(LazyOp.Sub, 4), a, b, res, 0, s),
    };

    /// <summary>A condition after a 32-bit and/or/xor/test: CF = OF = 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Logic32(int cc, uint res, CpuState* s) => cc switch
    {
        0 or 2 => false,               // o, b
        1 or 3 => true,                // no, ae
        4 or 6 => res == 0,            // e, be
        5 or 7 => res != 0,            // ne, a
        8 or 12 => (int)res < 0,       // s, l
        9 or 13 => (int)res >= 0,      // ns, ge
        14 => (int)res <= 0,           // le
        15 => (int)res > 0,            // g
        _ => LazyFlags.ConditionOf(cc, LazyFlags.Pack(LazyOp.Logic, 4), 0, 0, res, 0, s),
    };

    public static int JmpInd(ref ThreadedContext c, ThreadedOp* o)
    {
        uint target = c.R[o->A];
        c.S->Eip = target;
        // The block this exit reached last time, if the target is the same (a ret to the same caller).
        Block? next = c.Block.Indirect;
        if (next != null && next.Start == target && --c.Budget > 0 && !next.Invalid && *c.Kick == 0)
        {
            ThreadedOp* first = next.ThreadedEntry;
            if (first != null)
            {
                c.Block = next;
                c.Chained++;
                return first->Fn(ref c, first);
            }
        }
        return Interpreter.Continue;
    }
}
