using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Runtime;
using static Sharpvisor.Jit.Threaded.Handlers;

namespace Sharpvisor.Jit.Threaded;

/// <summary>
/// Turns a block's micro-ops into threaded code (<see cref="ThreadedOp"/>s,
/// each pointing at the handler for its exact shape), and runs blocks of it
/// back to back through their links.
/// </summary>
internal static unsafe class ThreadedCode
{
    /// <summary>Blocks run back to back through their links before control returns to the dispatcher.</summary>
    public const int ChainBudget = 256;

    /// <summary>The block's threaded code (its first op), made on first use.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ThreadedOp* For(ExecutionEngine engine, Block block)
    {
        ThreadedOp* entry = block.ThreadedEntry;
        return entry != null ? entry : ThreadedCodeStore.Of(engine).Create(block);
    }

    /// <summary>
    /// Allocates a header and the block's ops in one native block (freed by
    /// <see cref="Free"/>), with a GCHandle from the header back to the block.
    /// </summary>
    /// <remarks>
    /// With <paramref name="countEntries"/> (the x64 engine), the first op's
    /// handler counts entries towards the x64 tier, and the header keeps
    /// the op's own handler.
    /// </remarks>
    internal static ThreadedOp* Compile(Block block, bool countEntries)
    {
        var ops = block.Ops;
        // SAFETY: one allocation of the header and ops.Length ops, written
        // only here, before the caller publishes the entry (with a barrier):
        // no other thread can see it yet. A block has at least one op (the
        // translator ends every block with an exit op), so code[0] exists.
        var h = (ThreadedHeader*)NativeMemory.AllocZeroed((nuint)(sizeof(ThreadedHeader) + ops.Length * sizeof(ThreadedOp)));
        h->Block = GCHandle.ToIntPtr(GCHandle.Alloc(block));
        h->Start = block.Start;
        var code = (ThreadedOp*)(h + 1);
        for (int i = 0; i < ops.Length; i++)
        {
            ref readonly MicroOp op = ref ops[i];
            code[i] = new ThreadedOp
            {
                Fn = Select(in op),
                D = op.D, A = op.A, B = op.B, Base = op.Base, Index = op.Index, Scale = op.Scale,
                Size = op.Size, Cc = op.Cc, Flags = op.Flags,
                Imm = op.Imm, Disp = op.Disp, Eip = op.Eip, Next = op.Next,
                OpIndex = i,
            };
            if (op.Kind is Uop.Inc or Uop.Dec)
                code[i].Cc = op.Kind == Uop.Inc ? (byte)0 : (byte)1;
            if (op.Kind is Uop.Adc or Uop.Sbb)
                code[i].Cc = op.Kind == Uop.Adc ? (byte)0 : (byte)1;
        }
        h->FirstFn = code[0].Fn;
        if (countEntries)
            code[0].Fn = &X64.X64Handlers.CountEntry;
        return code;
    }

    /// <summary>Frees what <see cref="Compile"/> allocated; nothing may run it or link to it any more.</summary>
    internal static void Free(ThreadedOp* entry)
    {
        ThreadedHeader* h = ThreadedHeader.Of(entry);
        GCHandle.FromIntPtr(h->Block).Free();
        NativeMemory.Free(h);
    }

    /// <summary>The handler for an op's exact shape; the switch interpreter for everything uncommon.</summary>
    private static delegate*<ref ThreadedContext, ThreadedOp*, BlockExit> Select(in MicroOp op)
    {
        bool imm = op.BIsImm, flags = op.SetsFlags;
        switch (op.Kind)
        {
            case Uop.Mov: return imm ? &MovI : &MovR;
            case Uop.Ext:
                return (op.Flags & (UopFlags.Signed | UopFlags.High8)) switch
                {
                    UopFlags.None => op.Size == 1 ? &ExtU8 : &ExtU16,
                    UopFlags.High8 => &ExtHigh8,
                    _ => &Ext,
                };
            case Uop.Merge:
                return (op.Flags & UopFlags.High8) != 0 ? &MergeHigh8 : op.Size == 1 ? &MergeU8 : &MergeU16;
            case Uop.Lea: return &Lea;
            case Uop.Load:
                return Shape(in op) switch
                {
                    0 => LoadOf<Absolute>(in op),
                    1 => LoadOf<BaseDisp>(in op),
                    _ => LoadOf<Indexed>(in op),
                };
            case Uop.Store:
                return Shape(in op) switch
                {
                    0 => imm ? StoreOf<Absolute, ImmValue>(in op) : StoreOf<Absolute, RegA>(in op),
                    1 => imm ? StoreOf<BaseDisp, ImmValue>(in op) : StoreOf<BaseDisp, RegA>(in op),
                    _ => imm ? StoreOf<Indexed, ImmValue>(in op) : StoreOf<Indexed, RegA>(in op),
                };
            case Uop.Add: return Bin<AddOp>(imm, flags);
            case Uop.Sub: return Bin<SubOp>(imm, flags);
            case Uop.And: return Bin<AndOp>(imm, flags);
            case Uop.Or: return Bin<OrOp>(imm, flags);
            case Uop.Xor: return Bin<XorOp>(imm, flags);
            case Uop.Shl: return Sh<ShlOp>(imm, flags);
            case Uop.Shr: return Sh<ShrOp>(imm, flags);
            case Uop.Sar: return Sh<SarOp>(imm, flags);
            case Uop.Inc:
            case Uop.Dec: return flags ? &IncDec<Handlers.Flags> : &IncDec<NoFlags>;
            case Uop.Not: return &Not;
            case Uop.Adc:
            case Uop.Sbb:
                return imm
                    ? (flags ? &CarryArith<ImmB, Handlers.Flags> : &CarryArith<ImmB, NoFlags>)
                    : (flags ? &CarryArith<RegB, Handlers.Flags> : &CarryArith<RegB, NoFlags>);
            case Uop.Rol: return RotateOf<RolKind>(in op);
            case Uop.Ror: return RotateOf<RorKind>(in op);
            case Uop.Rcl: return imm ? &Rotate<RclKind, ImmB> : &Rotate<RclKind, RegB>;
            case Uop.Rcr: return imm ? &Rotate<RcrKind, ImmB> : &Rotate<RcrKind, RegB>;
            case Uop.Shld: return imm ? &DoubleShift<ShldKind, ImmB> : &DoubleShift<ShldKind, RegB>;
            case Uop.Shrd: return imm ? &DoubleShift<ShrdKind, ImmB> : &DoubleShift<ShrdKind, RegB>;
            case Uop.Mul:
                return imm
                    ? (flags ? &Mul<ImmB, Handlers.Flags> : &Mul<ImmB, NoFlags>)
                    : (flags ? &Mul<RegB, Handlers.Flags> : &Mul<RegB, NoFlags>);
            case Uop.MulWide: return imm ? &MulWide<ImmB> : &MulWide<RegB>;
            case Uop.Bswap: return &Bswap;
            case Uop.SetCc: return Or(ConditionSelect.For<SetCcs>(op.Cc), &SetCcAny);
            case Uop.CMov: return Or(ConditionSelect.For<CMovs>(op.Cc), &CMovAny);
            case Uop.LoadAlu:
                return Shape(in op) switch
                {
                    0 => LoadAluOf<Absolute>(in op),
                    1 => LoadAluOf<BaseDisp>(in op),
                    _ => LoadAluOf<Indexed>(in op),
                };
            case Uop.Jmp: return &Jmp;
            case Uop.Jcc: return Or(ConditionSelect.For<Jccs>(op.Cc), &JccAny);
            case Uop.JmpInd: return &JmpInd;
            case Uop.AluJcc:
                return op.Scale == (byte)Uop.Sub
                    ? (imm ? AluJccOf<SubOp, ImmB>(in op) : AluJccOf<SubOp, RegB>(in op))
                    : (imm ? AluJccOf<AndOp, ImmB>(in op) : AluJccOf<AndOp, RegB>(in op));
            case Uop.Hypercall: return &Hypercall;
            case Uop.Rdtsc: return &Rdtsc;
            default: return &Slow;
        }
    }

    /// <summary>rol/ror: 32 bits without flags in a handler of their own, the rest through the shared semantics.</summary>
    private static delegate*<ref ThreadedContext, ThreadedOp*, BlockExit> RotateOf<TK>(in MicroOp op) where TK : struct, IKind =>
        op.Size == 4 && !op.SetsFlags
            ? (op.BIsImm ? &Rotate32<TK, ImmB> : &Rotate32<TK, RegB>)
            : (op.BIsImm ? &Rotate<TK, ImmB> : &Rotate<TK, RegB>);

    /// <summary>0: [disp], 1: [base + disp], 2: with an index.</summary>
    private static int Shape(in MicroOp op) =>
        op.Index != MicroOp.Zero ? 2 : op.Base != MicroOp.Zero ? 1 : 0;

    private static delegate*<ref ThreadedContext, ThreadedOp*, BlockExit> LoadOf<TA>(in MicroOp op) where TA : struct, IAddress
    {
        bool signed = (op.Flags & UopFlags.Signed) != 0;
        return op.Size switch
        {
            1 => signed ? &Load<S8, TA> : &Load<U8, TA>,
            2 => signed ? &Load<S16, TA> : &Load<U16, TA>,
            _ => &Load<U32, TA>,
        };
    }

    private static delegate*<ref ThreadedContext, ThreadedOp*, BlockExit> StoreOf<TA, TV>(in MicroOp op)
        where TA : struct, IAddress where TV : struct, IValue => op.Size switch
    {
        1 => &Store<U8, TA, TV>,
        2 => &Store<U16, TA, TV>,
        _ => &Store<U32, TA, TV>,
    };

    private static delegate*<ref ThreadedContext, ThreadedOp*, BlockExit> LoadAluOf<TA>(in MicroOp op) where TA : struct, IAddress => op.Size switch
    {
        1 => LoadAluOf<U8, TA>(in op),
        2 => LoadAluOf<U16, TA>(in op),
        _ => LoadAluOf<U32, TA>(in op),
    };

    private static delegate*<ref ThreadedContext, ThreadedOp*, BlockExit> LoadAluOf<TW, TA>(in MicroOp op)
        where TW : struct, IWidth where TA : struct, IAddress
    {
        bool flags = op.SetsFlags;
        return (Uop)op.Cc switch
        {
            Uop.Add => flags ? &LoadAlu<AddOp, Handlers.Flags, TW, TA> : &LoadAlu<AddOp, NoFlags, TW, TA>,
            Uop.Sub => flags ? &LoadAlu<SubOp, Handlers.Flags, TW, TA> : &LoadAlu<SubOp, NoFlags, TW, TA>,
            Uop.And => flags ? &LoadAlu<AndOp, Handlers.Flags, TW, TA> : &LoadAlu<AndOp, NoFlags, TW, TA>,
            Uop.Or => flags ? &LoadAlu<OrOp, Handlers.Flags, TW, TA> : &LoadAlu<OrOp, NoFlags, TW, TA>,
            _ => flags ? &LoadAlu<XorOp, Handlers.Flags, TW, TA> : &LoadAlu<XorOp, NoFlags, TW, TA>,
        };
    }

    /// <summary>A fused compare and branch on a common condition gets its own handler; the rest share one.</summary>
    private static delegate*<ref ThreadedContext, ThreadedOp*, BlockExit> AluJccOf<TOp, TB>(in MicroOp op)
        where TOp : struct, IBinary where TB : struct, IOperand => Or(op.Size switch
        {
            1 => ConditionSelect.For<AluJccs<TOp, TB, U8>>(op.Cc),
            2 => ConditionSelect.For<AluJccs<TOp, TB, U16>>(op.Cc),
            _ => ConditionSelect.For<AluJccs<TOp, TB, U32>>(op.Cc),
        }, &AluJccAny<TOp, TB>);

    private static delegate*<ref ThreadedContext, ThreadedOp*, BlockExit> Or(
        delegate*<ref ThreadedContext, ThreadedOp*, BlockExit> handler, delegate*<ref ThreadedContext, ThreadedOp*, BlockExit> otherwise) =>
        handler != null ? handler : otherwise;

    // The condition-specialised handler families, for ConditionSelect.
    private struct SetCcs : IConditionHandlers
    {
        public static delegate*<ref ThreadedContext, ThreadedOp*, BlockExit> Get<TC>() where TC : struct, ICondition => &SetCc<TC>;
    }

    private struct CMovs : IConditionHandlers
    {
        public static delegate*<ref ThreadedContext, ThreadedOp*, BlockExit> Get<TC>() where TC : struct, ICondition => &CMov<TC>;
    }

    private struct Jccs : IConditionHandlers
    {
        public static delegate*<ref ThreadedContext, ThreadedOp*, BlockExit> Get<TC>() where TC : struct, ICondition => &Jcc<TC>;
    }

    private struct AluJccs<TOp, TB, TW> : IConditionHandlers where TOp : struct, IBinary where TB : struct, IOperand where TW : struct, IWidth
    {
        public static delegate*<ref ThreadedContext, ThreadedOp*, BlockExit> Get<TC>() where TC : struct, ICondition => &AluJcc<TOp, TB, TC, TW>;
    }

    private static delegate*<ref ThreadedContext, ThreadedOp*, BlockExit> Bin<TOp>(bool imm, bool flags) where TOp : struct, IBinary =>
        imm
            ? (flags ? &Binary<TOp, ImmB, Handlers.Flags> : &Binary<TOp, ImmB, NoFlags>)
            : (flags ? &Binary<TOp, RegB, Handlers.Flags> : &Binary<TOp, RegB, NoFlags>);

    private static delegate*<ref ThreadedContext, ThreadedOp*, BlockExit> Sh<TOp>(bool imm, bool flags) where TOp : struct, IBinary =>
        imm
            ? (flags ? &Shift<TOp, ImmB, Handlers.Flags> : &Shift<TOp, ImmB, NoFlags>)
            : (flags ? &Shift<TOp, RegB, Handlers.Flags> : &Shift<TOp, RegB, NoFlags>);

    // Journey: threaded-run
    /// <summary>
    /// Runs <paramref name="block"/>, then its linked successors, until an exit
    /// without a link, <see cref="ChainBudget"/> blocks, or an RCU
    /// kick (so the dispatcher reports quiescent states and sees stop requests).
    /// Leaves <paramref name="block"/> at the last block run.
    /// </summary>
    public static BlockExit Run(Vcpu v, CpuState* s, ref Block block, bool chain)
    {
        int budget = chain ? ChainBudget : 0;
        ThreadedOp* first = For(v.Engine, block);
        var c = new ThreadedContext
        {
            R = s->Slots,
            Mem = v.MemoryBase,
            MemSize = v.MemorySize,
            Code = v.CodePages,
            CodeBits = v.Engine.CodeBits,
            S = s,
            V = v,
            Current = ThreadedHeader.Of(first),
            Budget = budget,
            Kick = v.KickPointer,
            JumpCache = v.JumpCache,
            Frame = (X64.X64Frame*)v.BackendFrame,
        };
        if (c.Frame != null)
            c.Frame->Kick = c.Kick;
        BlockExit how = first->Fn(ref c, first);
        // Links are made by the dispatcher from the block that took the exit.
        int chained = budget - c.Budget;
        if (chained != 0)
            block = ThreadedHeader.BlockOf(c.Current);
        v._stats.Linked += chained;
        v._stats.Blocks += chained;
        return how;
    }
}
