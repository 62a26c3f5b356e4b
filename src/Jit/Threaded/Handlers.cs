using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Jit.Semantics;
using Sharpvisor.Native;

namespace Sharpvisor.Jit.Threaded;

/// <summary>The common micro-ops as threaded handlers. Anything else runs through <see cref="Slow"/>.</summary>
internal static unsafe class Handlers
{
    // Each handler ends with "return Next(ref c, o)": a call in tail position
    // that the JIT emits as a jump, so a block runs as a chain of jumps.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static BlockExit Next(ref ThreadedContext c, ThreadedOp* o)
    {
        o++;
        return o->Fn(ref c, o);
    }

    /// <summary>Runs the op in the switch interpreter (uncommon ops, and stores that hit code).</summary>
    public static BlockExit Slow(ref ThreadedContext c, ThreadedOp* o)
    {
        BlockExit status = Interpreter.Step(c.V, c.S, ThreadedHeader.BlockOf(c.Current), o->OpIndex);
        return status == BlockExit.Reached ? Next(ref c, o) : status;
    }

    // Journey: threaded-hypercall
    /// <summary>
    /// <c>int $0x1f</c>, straight into the VM's hypercall host: a notify is
    /// the path whose cost bench notify compares with a bare write, so it
    /// does not go through the switch interpreter's dispatch.
    /// </summary>
    public static BlockExit Hypercall(ref ThreadedContext c, ThreadedOp* o) =>
        Interpreter.Hypercall(c.V, c.S, o->Next) == BlockExit.Reached ? Next(ref c, o) : BlockExit.Stop;

    /// <summary><c>rdtsc</c>: EDX:EAX = the engine's clock (the guests' timer, read around what they time).</summary>
    public static BlockExit Rdtsc(ref ThreadedContext c, ThreadedOp* o)
    {
        ulong tsc = c.V.Engine.ReadTsc();
        c.R[(int)Gpr.Eax] = (uint)tsc;
        c.R[(int)Gpr.Edx] = (uint)(tsc >> 32);
        return Next(ref c, o);
    }

    public static BlockExit MovR(ref ThreadedContext c, ThreadedOp* o) { c.R[o->D] = c.R[o->B]; return Next(ref c, o); }

    public static BlockExit MovI(ref ThreadedContext c, ThreadedOp* o) { c.R[o->D] = o->Imm; return Next(ref c, o); }

    public static BlockExit ExtU8(ref ThreadedContext c, ThreadedOp* o) { c.R[o->D] = (byte)c.R[o->A]; return Next(ref c, o); }

    public static BlockExit ExtU16(ref ThreadedContext c, ThreadedOp* o) { c.R[o->D] = (ushort)c.R[o->A]; return Next(ref c, o); }

    public static BlockExit ExtHigh8(ref ThreadedContext c, ThreadedOp* o) { c.R[o->D] = (byte)(c.R[o->A] >> 8); return Next(ref c, o); }

    public static BlockExit Ext(ref ThreadedContext c, ThreadedOp* o)
    {
        c.R[o->D] = Interpreter.Extend(c.R[o->A], o->Size, o->Flags);
        return Next(ref c, o);
    }

    // Partial register writes (al, ax, ah), one handler each: setcc and byte
    // moves make them common, and a shape switch here cost as much as the merge.
    public static BlockExit MergeU8(ref ThreadedContext c, ThreadedOp* o)
    {
        c.R[o->D] = (c.R[o->D] & 0xFFFFFF00u) | (byte)c.R[o->A];
        return Next(ref c, o);
    }

    public static BlockExit MergeU16(ref ThreadedContext c, ThreadedOp* o)
    {
        c.R[o->D] = (c.R[o->D] & 0xFFFF0000u) | (ushort)c.R[o->A];
        return Next(ref c, o);
    }

    public static BlockExit MergeHigh8(ref ThreadedContext c, ThreadedOp* o)
    {
        c.R[o->D] = (c.R[o->D] & 0xFFFF00FFu) | ((uint)(byte)c.R[o->A] << 8);
        return Next(ref c, o);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Ea(ref ThreadedContext c, ThreadedOp* o) => c.R[o->Base] + (c.R[o->Index] << o->Scale) + o->Disp;

    public static BlockExit Lea(ref ThreadedContext c, ThreadedOp* o) { c.R[o->D] = Ea(ref c, o); return Next(ref c, o); }

    // ---- addressing shapes: most guest accesses are [base + disp] ----

    public interface IAddress { static abstract uint Ea(ref ThreadedContext c, ThreadedOp* o); }
    public struct Absolute : IAddress { public static uint Ea(ref ThreadedContext c, ThreadedOp* o) => o->Disp; }
    public struct BaseDisp : IAddress { public static uint Ea(ref ThreadedContext c, ThreadedOp* o) => c.R[o->Base] + o->Disp; }
    public struct Indexed : IAddress { public static uint Ea(ref ThreadedContext c, ThreadedOp* o) => c.R[o->Base] + (c.R[o->Index] << o->Scale) + o->Disp; }

    // ---- loads and stores, specialised by width, extension and address shape ----

    // Widths read and write guest RAM through its primitives, whose
    // precondition (ea + Size inside RAM) every caller below checks against
    // c.MemSize first; c.Mem is the vCPU's MemoryBase, live while it runs.
    public interface IWidth
    {
        static abstract int Size { get; }
        static abstract uint Read(byte* mem, uint ea);
        static abstract void Write(byte* mem, uint ea, uint value);
    }

    public struct U8 : IWidth
    {
        public static int Size => 1;
        public static uint Read(byte* mem, uint ea) => (uint)GuestMemory.ReadUnchecked8(mem, ea);
        public static void Write(byte* mem, uint ea, uint value) => GuestMemory.WriteUnchecked8(mem, ea, (byte)value);
    }

    public struct S8 : IWidth
    {
        public static int Size => 1;
        public static uint Read(byte* mem, uint ea) => (uint)(sbyte)GuestMemory.ReadUnchecked8(mem, ea);
        public static void Write(byte* mem, uint ea, uint value) => GuestMemory.WriteUnchecked8(mem, ea, (byte)value);
    }

    public struct U16 : IWidth
    {
        public static int Size => 2;
        public static uint Read(byte* mem, uint ea) => GuestMemory.ReadUnchecked16(mem, ea);
        public static void Write(byte* mem, uint ea, uint value) => GuestMemory.WriteUnchecked16(mem, ea, (ushort)value);
    }

    public struct S16 : IWidth
    {
        public static int Size => 2;
        public static uint Read(byte* mem, uint ea) => (uint)(short)GuestMemory.ReadUnchecked16(mem, ea);
        public static void Write(byte* mem, uint ea, uint value) => GuestMemory.WriteUnchecked16(mem, ea, (ushort)value);
    }

    public struct U32 : IWidth
    {
        public static int Size => 4;
        public static uint Read(byte* mem, uint ea) => GuestMemory.ReadUnchecked32(mem, ea);
        public static void Write(byte* mem, uint ea, uint value) => GuestMemory.WriteUnchecked32(mem, ea, value);
    }

    public static BlockExit Load<TW, TA>(ref ThreadedContext c, ThreadedOp* o) where TW : struct, IWidth where TA : struct, IAddress
    {
        uint ea = TA.Ea(ref c, o);
        if ((ulong)ea + (uint)TW.Size > c.MemSize)
            return c.V.MemoryFault(c.S, ea, (uint)TW.Size, FaultKind.ReadOutsideRam, o->Eip);
        c.R[o->D] = TW.Read(c.Mem, ea);
        return Next(ref c, o);
    }

    public static BlockExit Store<TW, TA, TV>(ref ThreadedContext c, ThreadedOp* o)
        where TW : struct, IWidth where TA : struct, IAddress where TV : struct, IValue
    {
        uint ea = TA.Ea(ref c, o);
        if ((ulong)ea + (uint)TW.Size > c.MemSize)
            return c.V.MemoryFault(c.S, ea, (uint)TW.Size, FaultKind.WriteOutsideRam, o->Eip);
        // The page bytes only, in line: most stores are to pages without code,
        // and the handler stays as small as it was before code was tracked by
        // the byte (its register use is every threaded store's cost).
        if ((c.Code[ea >> 12] | c.Code[(ea + (uint)TW.Size - 1) >> 12]) != 0)
            return StoreNearCode<TW, TV>(ref c, o, ea);
        TW.Write(c.Mem, ea, TV.Value(ref c, o));
        return Next(ref c, o);
    }

    /// <summary>A store to a page that holds code: over translated bytes, the interpreter invalidates; beside them, a plain store.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static BlockExit StoreNearCode<TW, TV>(ref ThreadedContext c, ThreadedOp* o, uint ea)
        where TW : struct, IWidth where TV : struct, IValue
    {
        if (ExecutionEngine.StoreHitsCode(c.Code, c.CodeBits, ea, TW.Size))
            return Slow(ref c, o);
        TW.Write(c.Mem, ea, TV.Value(ref c, o));
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

    public static BlockExit Binary<TOp, TB, TF>(ref ThreadedContext c, ThreadedOp* o)
        where TOp : struct, IBinary where TB : struct, IOperand where TF : struct, IFlagMode
    {
        uint a = c.R[o->A], b = TB.B(ref c, o), res = TOp.Do(a, b);
        c.R[o->D] = res;
        if (TF.On)
            Interpreter.Record(c.S, TOp.Lazy, o->Size, a, b, res);
        return Next(ref c, o);
    }

    /// <summary>Shifts: the count is masked to 5 bits, and a zero count changes no flag.</summary>
    public static BlockExit Shift<TOp, TB, TF>(ref ThreadedContext c, ThreadedOp* o)
        where TOp : struct, IBinary where TB : struct, IOperand where TF : struct, IFlagMode
    {
        uint a = c.R[o->A], n = TB.B(ref c, o) & 31, res = TOp.Do(a, n);
        c.R[o->D] = res;
        if (TF.On && n != 0)
            Interpreter.Record(c.S, TOp.Lazy, o->Size, a, n, res);
        return Next(ref c, o);
    }

    public static BlockExit IncDec<TF>(ref ThreadedContext c, ThreadedOp* o) where TF : struct, IFlagMode
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

    public static BlockExit Not(ref ThreadedContext c, ThreadedOp* o) { c.R[o->D] = ~c.R[o->A]; return Next(ref c, o); }

    // ---- the rest of what gcc emits for integer code: rotates, multiword arithmetic, multiplies ----
    //
    // Each calls the shared semantics (src/Jit/Semantics) directly,
    // without the switch interpreter's step; the common no-flags forms are
    // computed here.

    /// <summary>Which shift-family op a generic handler runs.</summary>
    public interface IKind { static abstract Uop Kind { get; } }
    public struct RolKind : IKind { public static Uop Kind => Uop.Rol; }
    public struct RorKind : IKind { public static Uop Kind => Uop.Ror; }
    public struct RclKind : IKind { public static Uop Kind => Uop.Rcl; }
    public struct RcrKind : IKind { public static Uop Kind => Uop.Rcr; }
    public struct ShldKind : IKind { public static Uop Kind => Uop.Shld; }
    public struct ShrdKind : IKind { public static Uop Kind => Uop.Shrd; }

    /// <summary>rol/ror of 32 bits whose flags nobody reads.</summary>
    public static BlockExit Rotate32<TK, TB>(ref ThreadedContext c, ThreadedOp* o) where TK : struct, IKind where TB : struct, IOperand
    {
        int n = (int)(TB.B(ref c, o) & 31);
        uint a = c.R[o->A];
        c.R[o->D] = TK.Kind == Uop.Rol ? System.Numerics.BitOperations.RotateLeft(a, n) : System.Numerics.BitOperations.RotateRight(a, n);
        return Next(ref c, o);
    }

    /// <summary>rol/ror/rcl/rcr of any size, flags or not.</summary>
    public static BlockExit Rotate<TK, TB>(ref ThreadedContext c, ThreadedOp* o) where TK : struct, IKind where TB : struct, IOperand
    {
        c.R[o->D] = Interpreter.Rotate(c.S, TK.Kind, o->Size, c.R[o->A], TB.B(ref c, o) & 31, (o->Flags & UopFlags.SetFlags) != 0);
        return Next(ref c, o);
    }

    /// <summary>shld/shrd: the count is the immediate or slot Base.</summary>
    public static BlockExit DoubleShift<TK, TB>(ref ThreadedContext c, ThreadedOp* o) where TK : struct, IKind where TB : struct, IOperand
    {
        uint count = (o->Flags & UopFlags.CountImm) != 0 ? o->Imm : c.R[o->Base] & 31;
        c.R[o->D] = Interpreter.DoubleShift(c.S, TK.Kind, o->Size, c.R[o->A], TB.B(ref c, o), count, (o->Flags & UopFlags.SetFlags) != 0);
        return Next(ref c, o);
    }

    /// <summary>adc (Cc 0) and sbb (Cc 1): A op B op CF.</summary>
    public static BlockExit CarryArith<TB, TF>(ref ThreadedContext c, ThreadedOp* o) where TB : struct, IOperand where TF : struct, IFlagMode
    {
        bool adc = o->Cc == 0;
        uint a = c.R[o->A], b = TB.B(ref c, o), carry = LazyFlags.Carry(c.S);
        uint res = adc ? a + b + carry : a - b - carry;
        c.R[o->D] = res;
        if (TF.On)
        {
            Interpreter.Record(c.S, adc ? LazyOp.Adc : LazyOp.Sbb, o->Size, a, b, res);
            c.S->CcCarry = carry;
        }
        return Next(ref c, o);
    }

    /// <summary>The low half of a product (imul r, r/m and its immediate forms).</summary>
    public static BlockExit Mul<TB, TF>(ref ThreadedContext c, ThreadedOp* o) where TB : struct, IOperand where TF : struct, IFlagMode
    {
        uint a = c.R[o->A], b = TB.B(ref c, o);
        long p = (long)(int)a * (int)b;
        uint res = (uint)p;
        c.R[o->D] = res;
        if (TF.On)
        {
            bool overflow = o->Size == 4 ? p != (int)p : p != (short)p;
            Interpreter.Record(c.S, LazyOp.Mul, o->Size, overflow ? 1u : 0u, 0, res);
        }
        return Next(ref c, o);
    }

    /// <summary>mul/imul with both halves: D the low, slot Base the high.</summary>
    public static BlockExit MulWide<TB>(ref ThreadedContext c, ThreadedOp* o) where TB : struct, IOperand
    {
        bool signed = (o->Flags & UopFlags.Signed) != 0;
        ulong p = Interpreter.MulWideOf(o->Size, signed, c.R[o->A], TB.B(ref c, o));
        c.R[o->D] = (uint)p;
        c.R[o->Base] = (uint)(p >> 32);
        if ((o->Flags & UopFlags.SetFlags) != 0)
            Interpreter.Record(c.S, LazyOp.Mul, o->Size, Interpreter.MulWideOverflows(o->Size, signed, p), 0, (uint)p);
        return Next(ref c, o);
    }

    public static BlockExit Bswap(ref ThreadedContext c, ThreadedOp* o)
    {
        c.R[o->D] = System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(c.R[o->A]);
        return Next(ref c, o);
    }


    public static BlockExit LoadAlu<TOp, TF, TW, TA>(ref ThreadedContext c, ThreadedOp* o)
        where TOp : struct, IBinary where TF : struct, IFlagMode where TW : struct, IWidth where TA : struct, IAddress
    {
        uint ea = TA.Ea(ref c, o);
        if ((ulong)ea + (uint)TW.Size > c.MemSize)
            return c.V.MemoryFault(c.S, ea, (uint)TW.Size, FaultKind.ReadOutsideRam, o->Eip);
        uint a = c.R[o->A], b = TW.Read(c.Mem, ea), res = TOp.Do(a, b);
        c.R[o->D] = res;
        if (TF.On)
            Interpreter.Record(c.S, TOp.Lazy, TW.Size, a, b, res);
        return Next(ref c, o);
    }

    // ---- conditions: one handler per condition code, the general evaluation in a handler of its own ----
    //
    // A specialised handler tests its condition with one host compare on the
    // record of a compare or logic op (nearly every record a condition meets).
    // Operands of 8 and 16 bits are shifted to the top of the word first: then
    // every 32-bit condition, signed or not, is exactly the narrow one. Any
    // other record goes to the "Any" handler by a tail call, not an ordinary
    // call: a handler that calls nothing saves no registers, and pushing and
    // popping five of them cost more than the test itself.

    /// <summary>1 or 0 when the record is a compare or logic op, else -1 (ask <see cref="LazyFlags"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Known<TC>(CpuState* s) where TC : struct, ICondition
    {
        uint op = s->CcOp;
        int shift = 32 - 8 * (int)(op >> 8); // the record holds the size in bytes above the op
        if ((byte)op == (byte)LazyOp.Sub) return TC.AfterSub(s->CcA << shift, s->CcB << shift, s->CcRes << shift) ? 1 : 0;
        if ((byte)op == (byte)LazyOp.Logic) return TC.AfterLogic(s->CcRes << shift) ? 1 : 0;
        return -1;
    }

    public static BlockExit SetCc<TC>(ref ThreadedContext c, ThreadedOp* o) where TC : struct, ICondition
    {
        int known = Known<TC>(c.S);
        if (known < 0)
            return SetCcAny(ref c, o);
        c.R[o->D] = (uint)known;
        return Next(ref c, o);
    }

    public static BlockExit SetCcAny(ref ThreadedContext c, ThreadedOp* o)
    {
        c.R[o->D] = LazyFlags.Condition(c.S, o->Cc) ? 1u : 0u;
        return Next(ref c, o);
    }

    public static BlockExit CMov<TC>(ref ThreadedContext c, ThreadedOp* o) where TC : struct, ICondition
    {
        int known = Known<TC>(c.S);
        if (known < 0)
            return CMovAny(ref c, o);
        if (known != 0)
            c.R[o->D] = c.R[o->A];
        return Next(ref c, o);
    }

    public static BlockExit CMovAny(ref ThreadedContext c, ThreadedOp* o)
    {
        if (LazyFlags.Condition(c.S, o->Cc))
            c.R[o->D] = c.R[o->A];
        return Next(ref c, o);
    }

    // ---- block ends: jump straight into a linked successor, else return to the block loop ----

    // Journey: threaded-chain
    /// <summary>
    /// Leaves the block by <paramref name="how"/> for guest address
    /// <paramref name="eip"/>. If the exit is linked to a translated successor,
    /// the successor's first handler runs next, in tail position: a
    /// block-to-block jump with no return and no lookup. Links live in the
    /// native header before each block's code, so the jump reads and writes no
    /// managed object. The budget and the RCU kick bound how long the
    /// dispatcher goes without a quiescent state and a stop check; the budget
    /// spent is also the count of chained entries. EIP is stored only when
    /// control goes back to the dispatcher: inside a chain nothing reads it
    /// (faults and hypercalls set their own).
    /// </summary>
    /// <remarks>
    /// A successor's code stays allocated while this vCPU may jump into it:
    /// the engine retires a block's code through QSBR, and a vCPU reports a
    /// quiescent state only in the dispatcher, between chains.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static BlockExit Exit(ref ThreadedContext c, BlockExit how, uint eip)
    {
        ThreadedHeader* h = c.Current;
        ThreadedOp* next = how == BlockExit.Taken ? h->Taken : h->Fallthrough;
        if (CanEnter(ref c, next))
            return Enter(ref c, next);
        c.S->Eip = eip;
        return how;
    }

    /// <summary>An exit taken by machine code whose successor has none (X64/X64Handlers.cs): the threaded way on from there.</summary>
    internal static BlockExit ExitTo(ref ThreadedContext c, BlockExit how, uint eip) => Exit(ref c, how, eip);

    /// <summary>True if a chained jump may enter <paramref name="next"/>: budget left, no RCU kick, the block still valid.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool CanEnter(ref ThreadedContext c, ThreadedOp* next) =>
        next != null && c.Budget > 0 && *c.Kick == 0 && Volatile.Read(ref ThreadedHeader.Of(next)->Invalid) == 0;

    /// <summary>The chained jump: <paramref name="next"/>'s block becomes the current one and its first handler runs, in tail position.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static BlockExit Enter(ref ThreadedContext c, ThreadedOp* next)
    {
        c.Budget--;
        c.Current = ThreadedHeader.Of(next);
        return next->Fn(ref c, next);
    }

    /// <summary>A two-way block end; each way is its own path, so the exit kind is a constant in each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static BlockExit Branch(ref ThreadedContext c, ThreadedOp* o, bool taken, uint target)
    {
        if (taken)
            return Exit(ref c, BlockExit.Taken, target);
        return Exit(ref c, BlockExit.Fallthrough, o->Next);
    }

    public static BlockExit Jmp(ref ThreadedContext c, ThreadedOp* o) => Exit(ref c, BlockExit.Taken, o->Imm);

    public static BlockExit Jcc<TC>(ref ThreadedContext c, ThreadedOp* o) where TC : struct, ICondition
    {
        int known = Known<TC>(c.S);
        if (known < 0)
            return JccAny(ref c, o);
        return Branch(ref c, o, known != 0, o->Imm);
    }

    public static BlockExit JccAny(ref ThreadedContext c, ThreadedOp* o) =>
        Branch(ref c, o, LazyFlags.Condition(c.S, o->Cc), o->Imm);

    /// <summary>
    /// Fused compare (or test, sub, and) and branch: the record is written for
    /// whoever reads the flags later, and the condition comes straight from
    /// the operands (shifted to the top of the word when narrower than 32 bits).
    /// </summary>
    public static BlockExit AluJcc<TOp, TB, TC, TW>(ref ThreadedContext c, ThreadedOp* o)
        where TOp : struct, IBinary where TB : struct, IOperand where TC : struct, ICondition where TW : struct, IWidth
    {
        uint a = c.R[o->A], b = TB.B(ref c, o), res = TOp.Do(a, b);
        c.R[o->D] = res;
        CpuState* s = c.S;
        s->CcOp = (uint)TOp.Lazy | ((uint)TW.Size << 8);
        s->CcA = a;
        s->CcB = b;
        s->CcRes = res;
        int shift = 32 - 8 * TW.Size;
        bool taken = typeof(TOp) == typeof(SubOp)
            ? TC.AfterSub(a << shift, b << shift, res << shift)
            : TC.AfterLogic(res << shift);
        return Branch(ref c, o, taken, o->Disp);
    }

    /// <summary>Fused compare and branch of any size and condition.</summary>
    public static BlockExit AluJccAny<TOp, TB>(ref ThreadedContext c, ThreadedOp* o)
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
        return Branch(ref c, o, LazyFlags.ConditionOf(o->Cc, cc, a, b, res, 0, s), o->Disp);
    }

    /// <summary>
    /// An indirect exit (ret, call or jmp through a register): the block it
    /// reached last time if the target is the same (a ret to the same caller),
    /// else the vCPU's jump cache (a jump table's cases), so that neither
    /// returns to the dispatcher.
    /// </summary>
    public static BlockExit JmpInd(ref ThreadedContext c, ThreadedOp* o)
    {
        uint target = c.R[o->A];
        ThreadedOp* next = c.Current->Indirect;
        // The link is one pointer and the header it leads to says where its
        // block starts, so a link being rewritten can never pair one block's
        // address with another block's code.
        if (next == null || ThreadedHeader.Of(next)->Start != target)
        {
            // SAFETY: JumpSlot masks to the cache's fixed size, so the slot is
            // in bounds; unchecked, the handler has no range-check call to save registers for.
            Block? b = Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(c.JumpCache), Vcpu.JumpSlot(target));
            // Invalid is read before the code pointer: a block seen valid
            // here keeps its code until this vCPU's next quiescent state.
            next = b != null && b.Start == target && !b.Invalid ? b.ThreadedEntry : null;
        }
        if (CanEnter(ref c, next))
            return Enter(ref c, next);
        c.S->Eip = target;
        return BlockExit.Continue;
    }
}
