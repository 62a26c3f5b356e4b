using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Reflection;
using System.Reflection.Emit;
using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Jit.Semantics;
using Sharpvisor.Jit.Threaded;

namespace Sharpvisor.Jit.IL;

/// <summary>What a compiled region reaches at run time: its blocks (for the uncommon ops it hands to the interpreter).</summary>
public sealed class RegionData
{
    public RegionData(Block[] blocks) => Blocks = blocks;
    public readonly Block[] Blocks;
}

// Journey: il-emit
/// <summary>
/// Emits one region as a DynamicMethod <c>int (RegionData, CpuState*, Vcpu)</c>.
/// Guest registers and the lazy-flags record live in IL locals (the JIT puts
/// them in host registers) and are written back at every exit; memory base,
/// size and the code-page table are constants; branches between the region's
/// blocks are IL branches.
/// </summary>
/// <remarks>
/// This is how a hypervisor in C# gets machine code without writing a code
/// generator: it writes IL, and .NET's own JIT does register allocation and
/// instruction selection. A region still leaves every
/// <see cref="BackEdgeBudget"/> back-edges, or at once when an RCU updater
/// kicks the vCPU, so that a guest spinning in a loop cannot hold up a
/// grace period or a stop request.
/// </remarks>
[RequiresDynamicCode("Emits IL; callers check Engines.IsIlAvailable.")]
internal sealed unsafe class RegionEmitter
{
    /// <summary>Back-edges taken before the region returns to the dispatcher for a quiescent state and a stop check.</summary>
    public const int BackEdgeBudget = 4096;

    private static readonly FieldInfo FSlots = typeof(CpuState).GetField(nameof(CpuState.Slots))!;
    private static readonly FieldInfo FEip = typeof(CpuState).GetField(nameof(CpuState.Eip))!;
    private static readonly FieldInfo FCcOp = typeof(CpuState).GetField(nameof(CpuState.CcOp))!;
    private static readonly FieldInfo FCcA = typeof(CpuState).GetField(nameof(CpuState.CcA))!;
    private static readonly FieldInfo FCcB = typeof(CpuState).GetField(nameof(CpuState.CcB))!;
    private static readonly FieldInfo FCcRes = typeof(CpuState).GetField(nameof(CpuState.CcRes))!;
    private static readonly FieldInfo FCcCarry = typeof(CpuState).GetField(nameof(CpuState.CcCarry))!;
    private static readonly FieldInfo FBlocks = typeof(RegionData).GetField(nameof(RegionData.Blocks))!;
    private static readonly MethodInfo MStep = typeof(Interpreter).GetMethod(nameof(Interpreter.Step))!;
    private static readonly MethodInfo MCondition = typeof(LazyFlags).GetMethod(nameof(LazyFlags.ConditionOf))!;
    private static readonly MethodInfo MCarry = typeof(LazyFlags).GetMethod(nameof(LazyFlags.CarryOf))!;
    private static readonly MethodInfo MFault = typeof(Vcpu).GetMethod(nameof(Vcpu.RegionMemoryFault), BindingFlags.NonPublic | BindingFlags.Instance)!;
    private static readonly MethodInfo MRotate = typeof(Interpreter).GetMethod(nameof(Interpreter.Rotate), BindingFlags.NonPublic | BindingFlags.Static)!;
    private static readonly MethodInfo MDoubleShift = typeof(Interpreter).GetMethod(nameof(Interpreter.DoubleShift), BindingFlags.NonPublic | BindingFlags.Static)!;
    private static readonly MethodInfo MMulWideOf = typeof(Interpreter).GetMethod(nameof(Interpreter.MulWideOf), BindingFlags.NonPublic | BindingFlags.Static)!;
    private static readonly MethodInfo MMulWideOverflows = typeof(Interpreter).GetMethod(nameof(Interpreter.MulWideOverflows), BindingFlags.NonPublic | BindingFlags.Static)!;
    private static readonly MethodInfo MHitsCode = typeof(ExecutionEngine).GetMethod(nameof(ExecutionEngine.StoreHitsCode), BindingFlags.NonPublic | BindingFlags.Static)!;
    private static readonly MethodInfo MCodeWrite = typeof(Vcpu).GetMethod(nameof(Vcpu.RegionCodeWrite), BindingFlags.NonPublic | BindingFlags.Instance)!;
    private static readonly MethodInfo MKick = typeof(Vcpu).GetProperty(nameof(Vcpu.KickPointer), BindingFlags.NonPublic | BindingFlags.Instance)!.GetMethod!;
    private static readonly MethodInfo MAddBranches = typeof(Vcpu).GetMethod(nameof(Vcpu.AddRegionBranches), BindingFlags.NonPublic | BindingFlags.Instance)!;
    private static readonly MethodInfo MBswap = typeof(System.Buffers.Binary.BinaryPrimitives).GetMethod(nameof(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness), new[] { typeof(uint) })!;
    private static readonly MethodInfo MRotl = typeof(BitOperations).GetMethod(nameof(BitOperations.RotateLeft), new[] { typeof(uint), typeof(int) })!;
    private static readonly MethodInfo MRotr = typeof(BitOperations).GetMethod(nameof(BitOperations.RotateRight), new[] { typeof(uint), typeof(int) })!;

    private readonly Vcpu _vcpu;
    private readonly List<Block> _blocks;
    private readonly Dictionary<uint, int> _index = new();
    private ILGenerator _il = null!;
    private Label[] _labels = null!;
    private readonly LocalBuilder?[] _slots = new LocalBuilder?[CpuState.SlotCount];
    private LocalBuilder _ccOp = null!, _ccA = null!, _ccB = null!, _ccRes = null!, _ccCarry = null!;
    private LocalBuilder _ea = null!, _exitEip = null!, _budget = null!, _kick = null!, _branches = null!, _p64 = null!;
    private LocalBuilder _fEa = null!, _fSize = null!, _fEip = null!, _fKind = null!;
    private Label _exit, _fault, _stop;
    private readonly List<(int Block, int Op, Label Label)> _codeWriteTails = new();
    private readonly List<uint> _returnPoints = new();
    /// <summary>The flag-setting op whose record the locals hold, if known at this point of the emission.</summary>
    private MicroOp? _lastSetter;
    private bool _tailMode;

    public RegionEmitter(Vcpu vcpu, List<Block> blocks)
    {
        _vcpu = vcpu;
        _blocks = blocks;
        for (int i = 0; i < blocks.Count; i++)
            _index[blocks[i].Start] = i;
        foreach (var b in blocks)
            if ((b.Ops[^1].Flags & UopFlags.Call) != 0 && _index.ContainsKey(b.Ops[^1].Next))
                _returnPoints.Add(b.Ops[^1].Next);
    }

    public CompiledRegion Compile()
    {
        var dm = new DynamicMethod($"region_{_blocks[0].Start:x8}", typeof(BlockExit),
            new[] { typeof(RegionData), typeof(CpuState*), typeof(Vcpu) }, typeof(RegionEmitter).Module, skipVisibility: true);
        _il = dm.GetILGenerator();
        _labels = _blocks.Select(_ => _il.DefineLabel()).ToArray();
        _exit = _il.DefineLabel();
        _fault = _il.DefineLabel();
        _stop = _il.DefineLabel();
        _ccOp = _il.DeclareLocal(typeof(uint));
        _ccA = _il.DeclareLocal(typeof(uint));
        _ccB = _il.DeclareLocal(typeof(uint));
        _ccRes = _il.DeclareLocal(typeof(uint));
        _ccCarry = _il.DeclareLocal(typeof(uint));
        _ea = _il.DeclareLocal(typeof(uint));
        _exitEip = _il.DeclareLocal(typeof(uint));
        _budget = _il.DeclareLocal(typeof(int));
        _kick = _il.DeclareLocal(typeof(int*));
        _branches = _il.DeclareLocal(typeof(int));
        _p64 = _il.DeclareLocal(typeof(ulong));
        _fEa = _il.DeclareLocal(typeof(uint));
        _fSize = _il.DeclareLocal(typeof(uint));
        _fEip = _il.DeclareLocal(typeof(uint));
        _fKind = _il.DeclareLocal(typeof(int));
        for (int r = 0; r < 8; r++)
            _slots[r] = _il.DeclareLocal(typeof(uint));

        // Entry: registers and the flags record into locals.
        ReloadAll();
        _il.Emit(OpCodes.Ldc_I4, BackEdgeBudget);
        _il.Emit(OpCodes.Stloc, _budget);
        _il.Emit(OpCodes.Ldarg_2);
        _il.Emit(OpCodes.Call, MKick);
        _il.Emit(OpCodes.Stloc, _kick);
        _il.Emit(OpCodes.Br, _labels[0]);

        for (int bi = 0; bi < _blocks.Count; bi++)
        {
            _il.MarkLabel(_labels[bi]);
            _lastSetter = null;
            var ops = _blocks[bi].Ops;
            for (int oi = 0; oi < ops.Length; oi++)
                EmitOp(bi, oi);
        }

        // Out-of-line tails: the rest of an instruction whose store hit code, then leave.
        _tailMode = true;
        foreach (var (bi, oi, label) in _codeWriteTails.ToArray())
        {
            _il.MarkLabel(label);
            _lastSetter = null;
            var ops = _blocks[bi].Ops;
            int k = oi + 1;
            bool left = false;
            for (; k < ops.Length && ops[k].Eip == ops[oi].Eip; k++)
            {
                EmitOp(bi, k);
                if (UopTable.Of(ops[k].Kind).Has(UopTraits.Branch)) { left = true; break; }
            }
            if (!left)
                ExitTo(ops[oi].Next);
        }

        // Shared exits.
        _il.MarkLabel(_exit);
        SpillAll();
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Ldloc, _exitEip);
        _il.Emit(OpCodes.Stfld, FEip);
        FlushBranches();
        _il.Emit(OpCodes.Ldc_I4_0);
        _il.Emit(OpCodes.Ret);

        _il.MarkLabel(_fault);
        SpillAll();
        FlushBranches();
        _il.Emit(OpCodes.Ldarg_2);
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Ldloc, _fEa);
        _il.Emit(OpCodes.Ldloc, _fSize);
        _il.Emit(OpCodes.Ldloc, _fKind);
        _il.Emit(OpCodes.Ldloc, _fEip);
        _il.Emit(OpCodes.Call, MFault);
        _il.Emit(OpCodes.Ret);

        _il.MarkLabel(_stop); // state already written back by the op that stopped
        FlushBranches();
        _il.Emit(OpCodes.Ldc_I4_1);
        _il.Emit(OpCodes.Ret);

        var blocks = _blocks.ToArray();
        var entry = (RegionEntry)dm.CreateDelegate(typeof(RegionEntry), new RegionData(blocks));
        return new CompiledRegion(entry, blocks);
    }

    // ---- locals and state ----

    private LocalBuilder Slot(byte slot) => _slots[slot] ??= _il.DeclareLocal(typeof(uint));

    private void Ld(byte slot)
    {
        if (slot == MicroOp.Zero) _il.Emit(OpCodes.Ldc_I4_0);
        else _il.Emit(OpCodes.Ldloc, Slot(slot));
    }

    private void St(byte slot) => _il.Emit(OpCodes.Stloc, Slot(slot));

    private void LdB(in MicroOp op)
    {
        if (op.BIsImm) _il.Emit(OpCodes.Ldc_I4, (int)op.Imm);
        else Ld(op.B);
    }

    private void LdC(uint value) => _il.Emit(OpCodes.Ldc_I4, (int)value);

    /// <summary>Address of slot <paramref name="slot"/> in the state: s->Slots + slot.</summary>
    private void SlotAddress(int slot)
    {
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Ldflda, FSlots);
        if (slot != 0)
        {
            _il.Emit(OpCodes.Ldc_I4, slot * 4);
            _il.Emit(OpCodes.Add);
        }
    }

    private void SpillSlot(int slot)
    {
        SlotAddress(slot);
        _il.Emit(OpCodes.Ldloc, Slot((byte)slot));
        _il.Emit(OpCodes.Stind_I4);
    }

    private void ReloadSlot(int slot)
    {
        SlotAddress(slot);
        _il.Emit(OpCodes.Ldind_U4);
        _il.Emit(OpCodes.Stloc, Slot((byte)slot));
    }

    private void SpillCc()
    {
        foreach (var (f, l) in new[] { (FCcOp, _ccOp), (FCcA, _ccA), (FCcB, _ccB), (FCcRes, _ccRes), (FCcCarry, _ccCarry) })
        {
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldloc, l);
            _il.Emit(OpCodes.Stfld, f);
        }
    }

    private void ReloadCc()
    {
        foreach (var (f, l) in new[] { (FCcOp, _ccOp), (FCcA, _ccA), (FCcB, _ccB), (FCcRes, _ccRes), (FCcCarry, _ccCarry) })
        {
            _il.Emit(OpCodes.Ldarg_1);
            _il.Emit(OpCodes.Ldfld, f);
            _il.Emit(OpCodes.Stloc, l);
        }
    }

    private void SpillAll()
    {
        for (int r = 0; r < 8; r++) SpillSlot(r);
        SpillCc();
    }

    private void ReloadAll()
    {
        for (int r = 0; r < 8; r++) ReloadSlot(r);
        ReloadCc();
    }

    private void FlushBranches()
    {
        _il.Emit(OpCodes.Ldarg_2);
        _il.Emit(OpCodes.Ldloc, _branches);
        _il.Emit(OpCodes.Call, MAddBranches);
    }

    // ---- control flow ----

    private void ExitTo(uint eip)
    {
        LdC(eip);
        _il.Emit(OpCodes.Stloc, _exitEip);
        _il.Emit(OpCodes.Br, _exit);
    }

    /// <summary>Continue at a static guest address: an IL branch inside the region, else an exit.</summary>
    private void GoTo(int fromBlock, uint target)
    {
        if (_tailMode || !_index.TryGetValue(target, out int to))
        {
            ExitTo(target);
            return;
        }
        _il.Emit(OpCodes.Ldloc, _branches);
        _il.Emit(OpCodes.Ldc_I4_1);
        _il.Emit(OpCodes.Add);
        _il.Emit(OpCodes.Stloc, _branches);
        if (to <= fromBlock)
        {
            // A back-edge: leave now and then, and when an RCU updater kicks us,
            // so that the dispatcher reports a quiescent state and sees stop requests.
            var leave = _il.DefineLabel();
            _il.Emit(OpCodes.Ldloc, _budget);
            _il.Emit(OpCodes.Ldc_I4_1);
            _il.Emit(OpCodes.Sub);
            _il.Emit(OpCodes.Dup);
            _il.Emit(OpCodes.Stloc, _budget);
            _il.Emit(OpCodes.Brfalse, leave);
            _il.Emit(OpCodes.Ldloc, _kick);
            _il.Emit(OpCodes.Ldind_I4);
            _il.Emit(OpCodes.Brtrue, leave);
            _il.Emit(OpCodes.Br, _labels[to]);
            _il.MarkLabel(leave);
            ExitTo(target);
            return;
        }
        _il.Emit(OpCodes.Br, _labels[to]);
    }

    /// <summary>Consumes the condition on the stack: to <paramref name="taken"/> if true, else to <paramref name="fallthrough"/>.</summary>
    private void Branch(int fromBlock, uint taken, uint fallthrough)
    {
        var yes = _il.DefineLabel();
        _il.Emit(OpCodes.Brtrue, yes);
        GoTo(fromBlock, fallthrough);
        _il.MarkLabel(yes);
        GoTo(fromBlock, taken);
    }

    // ---- ops ----

    private void EmitOp(int bi, int oi)
    {
        MicroOp op = _blocks[bi].Ops[oi];
        switch (op.Kind)
        {
            case Uop.AluJcc:
            {
                // Split the threaded backend's fused pair again: the JIT fuses it better.
                var alu = op;
                alu.Kind = (Uop)op.Scale;
                alu.Scale = 0;
                EmitBinary(alu);
                EmitCondition(op.Cc);
                Branch(bi, op.Disp, op.Next);
                return;
            }
            case Uop.LoadAlu:
            {
                var alu = op;
                alu.Kind = (Uop)op.Cc;
                alu.Flags &= ~UopFlags.BImm;
                var t = _il.DeclareLocal(typeof(uint));
                EmitGuestLoad(op, signed: false);
                _il.Emit(OpCodes.Stloc, t);
                EmitBinary(alu, t);
                return;
            }
            case Uop.Mov:
                LdB(op);
                St(op.D);
                return;
            case Uop.Ext:
                Ld(op.A);
                if ((op.Flags & UopFlags.High8) != 0) { LdC(8); _il.Emit(OpCodes.Shr_Un); }
                bool signed = (op.Flags & UopFlags.Signed) != 0;
                _il.Emit(op.Size == 1 ? (signed ? OpCodes.Conv_I1 : OpCodes.Conv_U1) : (signed ? OpCodes.Conv_I2 : OpCodes.Conv_U2));
                St(op.D);
                return;
            case Uop.Merge:
                Ld(op.D);
                if ((op.Flags & UopFlags.High8) != 0)
                {
                    LdC(0xFFFF00FF); _il.Emit(OpCodes.And);
                    Ld(op.A); LdC(0xFF); _il.Emit(OpCodes.And); LdC(8); _il.Emit(OpCodes.Shl);
                }
                else
                {
                    uint keep = op.Size == 1 ? 0xFFFFFF00u : 0xFFFF0000u;
                    LdC(keep); _il.Emit(OpCodes.And);
                    Ld(op.A); LdC(~keep); _il.Emit(OpCodes.And);
                }
                _il.Emit(OpCodes.Or);
                St(op.D);
                return;
            case Uop.Lea:
                EmitEa(op);
                St(op.D);
                return;
            case Uop.Load:
                EmitGuestLoad(op, (op.Flags & UopFlags.Signed) != 0);
                St(op.D);
                return;
            case Uop.Store:
                EmitStore(bi, oi, op);
                return;
            case Uop.Check:
                EmitEa(op);
                _il.Emit(OpCodes.Stloc, _ea);
                BoundsCheck(op, (int)op.Imm, 2);
                return;
            case Uop.Add:
            case Uop.Sub:
            case Uop.And:
            case Uop.Or:
            case Uop.Xor:
                EmitBinary(op);
                return;
            case Uop.Adc:
            case Uop.Sbb:
                EmitCarryArith(op);
                return;
            case Uop.Inc:
            case Uop.Dec:
                EmitIncDec(op);
                return;
            case Uop.Not:
                Ld(op.A);
                _il.Emit(OpCodes.Not);
                St(op.D);
                return;
            case Uop.Shl:
            case Uop.Shr:
            case Uop.Sar:
                EmitShift(op);
                return;
            case Uop.Rol:
            case Uop.Ror:
                if (op.Size == 4 && !op.SetsFlags)
                {
                    Ld(op.A);
                    LdB(op);
                    LdC(31);
                    _il.Emit(OpCodes.And);
                    _il.Emit(OpCodes.Call, op.Kind == Uop.Rol ? MRotl : MRotr);
                    St(op.D);
                    return;
                }
                EmitShiftFamily(op);
                return;
            case Uop.Rcl:
            case Uop.Rcr:
            case Uop.Shld:
            case Uop.Shrd:
                EmitShiftFamily(op);
                return;
            case Uop.Mul:
                if (op.Size == 4)
                {
                    Ld(op.A); _il.Emit(OpCodes.Conv_I8);
                    LdB(op); _il.Emit(OpCodes.Conv_I8);
                    _il.Emit(OpCodes.Mul);
                    _il.Emit(OpCodes.Stloc, _p64);
                    _il.Emit(OpCodes.Ldloc, _p64);
                    _il.Emit(OpCodes.Conv_U4);
                    St(op.D);
                    if (op.SetsFlags)
                    {
                        // Overflow: the 64-bit product does not survive a round trip through int.
                        _il.Emit(OpCodes.Ldloc, _p64);
                        _il.Emit(OpCodes.Ldloc, _p64);
                        _il.Emit(OpCodes.Conv_I4);
                        _il.Emit(OpCodes.Conv_I8);
                        _il.Emit(OpCodes.Ceq);
                        LdC(1); _il.Emit(OpCodes.Xor);
                        RecordMulFlags(op);
                    }
                    return;
                }
                break;
            case Uop.MulWide:
                if (op.Size != 4 || (op.Flags & UopFlags.Signed) != 0)
                {
                    // The shared product and overflow (Interpreter.MulWideOf), halves split here.
                    bool wideSigned = (op.Flags & UopFlags.Signed) != 0;
                    LdC(op.Size);
                    LdC(wideSigned ? 1u : 0u);
                    Ld(op.A);
                    LdB(op);
                    _il.Emit(OpCodes.Call, MMulWideOf);
                    _il.Emit(OpCodes.Stloc, _p64);
                    _il.Emit(OpCodes.Ldloc, _p64);
                    _il.Emit(OpCodes.Conv_U4);
                    St(op.D);
                    _il.Emit(OpCodes.Ldloc, _p64);
                    LdC(32);
                    _il.Emit(OpCodes.Shr_Un);
                    _il.Emit(OpCodes.Conv_U4);
                    St(op.Base);
                    if (op.SetsFlags)
                    {
                        LdC(op.Size);
                        LdC(wideSigned ? 1u : 0u);
                        _il.Emit(OpCodes.Ldloc, _p64);
                        _il.Emit(OpCodes.Call, MMulWideOverflows);
                        _il.Emit(OpCodes.Stloc, _ccA);
                        Ld(op.D);
                        _il.Emit(OpCodes.Stloc, _ccRes);
                        SetCcOp(LazyOp.Mul, op.Size);
                        _lastSetter = null;
                    }
                    return;
                }
                {
                    Ld(op.A); _il.Emit(OpCodes.Conv_U8);
                    LdB(op); _il.Emit(OpCodes.Conv_U8);
                    _il.Emit(OpCodes.Mul);
                    _il.Emit(OpCodes.Stloc, _p64);
                    _il.Emit(OpCodes.Ldloc, _p64);
                    _il.Emit(OpCodes.Conv_U4);
                    St(op.D);
                    _il.Emit(OpCodes.Ldloc, _p64);
                    LdC(32);
                    _il.Emit(OpCodes.Shr_Un);
                    _il.Emit(OpCodes.Conv_U4);
                    St(op.Base);
                    if (op.SetsFlags)
                    {
                        // Overflow: a nonzero high half.
                        Ld(op.Base); LdC(0); _il.Emit(OpCodes.Cgt_Un);
                        RecordMulFlags(op);
                    }
                    return;
                }
            case Uop.Bswap:
                Ld(op.A);
                _il.Emit(OpCodes.Call, MBswap);
                St(op.D);
                return;
            case Uop.SetCc:
                EmitCondition(op.Cc);
                St(op.D);
                return;
            case Uop.CMov:
            {
                var skip = _il.DefineLabel();
                EmitCondition(op.Cc);
                _il.Emit(OpCodes.Brfalse, skip);
                Ld(op.A);
                St(op.D);
                _il.MarkLabel(skip);
                return;
            }
            case Uop.GetCf:
                EmitCarry();
                St(op.D);
                return;
            case Uop.Jmp:
                GoTo(bi, op.Imm);
                return;
            case Uop.Jcc:
                EmitCondition(op.Cc);
                Branch(bi, op.Imm, op.Next);
                return;
            case Uop.JmpCx:
            {
                var taken = _il.DefineLabel();
                var notTaken = _il.DefineLabel();
                if (op.Cc == (byte)CxBranch.Jecxz)
                {
                    Ld(1);
                    _il.Emit(OpCodes.Brfalse, taken);
                }
                else
                {
                    Ld(1); LdC(1); _il.Emit(OpCodes.Sub); St(1);
                    Ld(1);
                    _il.Emit(OpCodes.Brfalse, notTaken);
                    if (op.Cc != (byte)CxBranch.Loop)
                    {
                        EmitCondition(op.Cc == (byte)CxBranch.Loope ? 4 : 5);
                        _il.Emit(OpCodes.Brfalse, notTaken);
                    }
                    _il.Emit(OpCodes.Br, taken);
                }
                _il.MarkLabel(notTaken);
                GoTo(bi, op.Next);
                _il.MarkLabel(taken);
                GoTo(bi, op.Imm);
                return;
            }
            case Uop.JmpInd:
                if (!_tailMode)
                {
                    // A return into the region (the caller's loop) stays inside
                    // it, and so does a jump to a target this jump was seen
                    // to take while cold (a jump table's cases).
                    var targets = new List<uint>(_returnPoints);
                    foreach (uint t in _blocks[bi].IndirectTargets)
                        if (_index.ContainsKey(t) && !targets.Contains(t))
                            targets.Add(t);
                    foreach (uint point in targets)
                    {
                        var no = _il.DefineLabel();
                        Ld(op.A); LdC(point); _il.Emit(OpCodes.Bne_Un, no);
                        GoTo(bi, point);
                        _il.MarkLabel(no);
                    }
                }
                Ld(op.A);
                _il.Emit(OpCodes.Stloc, _exitEip);
                _il.Emit(OpCodes.Br, _exit);
                return;
        }
        HandedOver.Add((bi, oi));
        EmitViaInterpreter(bi, oi, op);
    }

    /// <summary>The ops (block, op index) this region hands to the interpreter (tests compare them with <see cref="UopTable"/>).</summary>
    internal readonly List<(int Block, int Op)> HandedOver = new();

    /// <summary>
    /// Rotates and double shifts through the shared semantics, called
    /// directly: only the flags record goes to the state and back (they read
    /// CF and may change the flags), not the registers.
    /// </summary>
    private void EmitShiftFamily(in MicroOp op)
    {
        bool setFlags = op.SetsFlags;
        bool touchesFlags = setFlags || op.Kind is Uop.Rcl or Uop.Rcr;
        if (touchesFlags) SpillCc();
        _il.Emit(OpCodes.Ldarg_1);
        LdC((uint)op.Kind);
        LdC(op.Size);
        Ld(op.A);
        if (op.Kind is Uop.Shld or Uop.Shrd)
        {
            LdB(op);
            if ((op.Flags & UopFlags.CountImm) != 0) LdC(op.Imm);
            else { Ld(op.Base); LdC(31); _il.Emit(OpCodes.And); }
            LdC(setFlags ? 1u : 0u);
            _il.Emit(OpCodes.Call, MDoubleShift);
        }
        else
        {
            LdB(op);
            LdC(31);
            _il.Emit(OpCodes.And);
            LdC(setFlags ? 1u : 0u);
            _il.Emit(OpCodes.Call, MRotate);
        }
        St(op.D);
        if (touchesFlags)
        {
            ReloadCc();
            _lastSetter = null;
        }
    }

    // Journey: il-hypercall
    /// <summary>
    /// Uncommon ops run in the interpreter: registers and flags go to the state,
    /// the op runs there, and everything it may have changed comes back.
    /// </summary>
    private void EmitViaInterpreter(int bi, int oi, MicroOp op)
    {
        SpillAll();
        foreach (byte t in TempsOf(op)) SpillSlot(t);
        _il.Emit(OpCodes.Ldarg_2);
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Ldarg_0);
        _il.Emit(OpCodes.Ldfld, FBlocks);
        LdC((uint)bi);
        _il.Emit(OpCodes.Ldelem_Ref);
        LdC((uint)oi);
        _il.Emit(OpCodes.Call, MStep);
        // Reached: carry on. Stop: leave with 1. Anything else left the block with s->Eip set.
        var reached = _il.DefineLabel();
        var notStop = _il.DefineLabel();
        _il.Emit(OpCodes.Dup);
        LdC((int)BlockExit.Reached);
        _il.Emit(OpCodes.Beq, reached);
        LdC((int)BlockExit.Stop);
        _il.Emit(OpCodes.Bne_Un, notStop);
        _il.Emit(OpCodes.Br, _stop);
        _il.MarkLabel(notStop);
        FlushBranches();
        _il.Emit(OpCodes.Ldc_I4_0);
        _il.Emit(OpCodes.Ret);
        _il.MarkLabel(reached);
        _il.Emit(OpCodes.Pop);
        ReloadAll();
        foreach (byte t in TempsOf(op)) ReloadSlot(t);
        _lastSetter = null;
    }

    private static IEnumerable<byte> TempsOf(MicroOp op)
    {
        var set = new SortedSet<byte>();
        foreach (byte s in new[] { op.D, op.A, op.B, op.Base, op.Index })
            if (s >= MicroOp.FirstTemp && s != MicroOp.Zero) set.Add(s);
        return set;
    }

    private void LdOperandB(in MicroOp op, LocalBuilder? bLocal)
    {
        if (bLocal != null) _il.Emit(OpCodes.Ldloc, bLocal);
        else LdB(op);
    }

    /// <summary>Loads a record local narrowed to the operand size, zero- or sign-extended.</summary>
    private void LdNarrow(LocalBuilder local, int size, bool signed)
    {
        _il.Emit(OpCodes.Ldloc, local);
        if (size == 1) _il.Emit(signed ? OpCodes.Conv_I1 : OpCodes.Conv_U1);
        else if (size == 2) _il.Emit(signed ? OpCodes.Conv_I2 : OpCodes.Conv_U2);
    }

    private void EmitEa(in MicroOp op)
    {
        bool any = false;
        if (op.Base != MicroOp.Zero) { Ld(op.Base); any = true; }
        if (op.Index != MicroOp.Zero)
        {
            Ld(op.Index);
            if (op.Scale != 0) { LdC(op.Scale); _il.Emit(OpCodes.Shl); }
            if (any) _il.Emit(OpCodes.Add);
            any = true;
        }
        if (op.Disp != 0 || !any)
        {
            LdC(op.Disp);
            if (any) _il.Emit(OpCodes.Add);
        }
    }

    /// <summary>Faults unless [ea, ea + size) is RAM; <paramref name="kind"/>: 0 read, 1 write, 2 access.</summary>
    private void BoundsCheck(in MicroOp op, int size, int kind)
    {
        var ok = _il.DefineLabel();
        _il.Emit(OpCodes.Ldloc, _ea);
        _il.Emit(OpCodes.Conv_U8);
        _il.Emit(OpCodes.Ldc_I8, (long)(_vcpu.MemorySize - (ulong)size));
        _il.Emit(OpCodes.Ble_Un, ok);
        _il.Emit(OpCodes.Ldloc, _ea);
        _il.Emit(OpCodes.Stloc, _fEa);
        LdC((uint)size);
        _il.Emit(OpCodes.Stloc, _fSize);
        LdC((uint)kind);
        _il.Emit(OpCodes.Stloc, _fKind);
        LdC(op.Eip);
        _il.Emit(OpCodes.Stloc, _fEip);
        _il.Emit(OpCodes.Br, _fault);
        _il.MarkLabel(ok);
    }

    /// <summary>Pushes the guest value at op's address (bounds-checked, volatile), zero- or sign-extended.</summary>
    private void EmitGuestLoad(in MicroOp op, bool signed)
    {
        EmitEa(op);
        _il.Emit(OpCodes.Stloc, _ea);
        BoundsCheck(op, op.Size, 0);
        EmitHostAddress();
        _il.Emit(OpCodes.Volatile);
        _il.Emit(op.Size switch
        {
            1 => signed ? OpCodes.Ldind_I1 : OpCodes.Ldind_U1,
            2 => signed ? OpCodes.Ldind_I2 : OpCodes.Ldind_U2,
            _ => OpCodes.Ldind_U4,
        });
    }

    private void EmitHostAddress()
    {
        _il.Emit(OpCodes.Ldc_I8, (long)_vcpu.MemoryBase);
        _il.Emit(OpCodes.Conv_U);
        _il.Emit(OpCodes.Ldloc, _ea);
        _il.Emit(OpCodes.Conv_U);
        _il.Emit(OpCodes.Add);
    }

    private void EmitStore(int bi, int oi, in MicroOp op)
    {
        EmitEa(op);
        _il.Emit(OpCodes.Stloc, _ea);
        BoundsCheck(op, op.Size, 1);
        // Self-modifying code: does the store overwrite translated code?
        var plain = _il.DefineLabel();
        var tail = _il.DefineLabel();
        _il.Emit(OpCodes.Ldc_I8, (long)_vcpu.CodePages);
        _il.Emit(OpCodes.Conv_U);
        _il.Emit(OpCodes.Ldc_I8, (long)_vcpu.Engine.CodeBits);
        _il.Emit(OpCodes.Conv_U);
        _il.Emit(OpCodes.Ldloc, _ea);
        LdC(op.Size);
        _il.Emit(OpCodes.Call, MHitsCode);
        _il.Emit(OpCodes.Brfalse, plain);
        _il.Emit(OpCodes.Ldarg_2);
        _il.Emit(OpCodes.Ldloc, _ea);
        LdC(op.Size);
        LdStoreValue(op);
        _il.Emit(OpCodes.Call, MCodeWrite);
        _il.Emit(OpCodes.Brfalse, plain);
        EmitRawStore(op);
        if (_tailMode)
        {
            ExitTo(op.Next);
        }
        else
        {
            _il.Emit(OpCodes.Br, tail);
            _codeWriteTails.Add((bi, oi, tail));
        }
        _il.MarkLabel(plain);
        EmitRawStore(op);
    }

    /// <summary>A store's value: slot A, or the immediate of a fused <c>mov [m], imm</c>.</summary>
    private void LdStoreValue(in MicroOp op)
    {
        if (op.BIsImm) LdC(op.Imm);
        else Ld(op.A);
    }

    private void EmitRawStore(in MicroOp op)
    {
        EmitHostAddress();
        LdStoreValue(op);
        _il.Emit(OpCodes.Volatile);
        _il.Emit(op.Size switch { 1 => OpCodes.Stind_I1, 2 => OpCodes.Stind_I2, _ => OpCodes.Stind_I4 });
    }

    /// <summary>Records mul/imul flags: the overflow bit is on the stack, the low result in D.</summary>
    private void RecordMulFlags(in MicroOp op)
    {
        _il.Emit(OpCodes.Stloc, _ccA);
        Ld(op.D);
        _il.Emit(OpCodes.Stloc, _ccRes);
        SetCcOp(LazyOp.Mul, 4);
        _lastSetter = op;
    }

    private void SetCcOp(LazyOp kind, int size)
    {
        LdC(LazyFlags.Pack(kind, size));
        _il.Emit(OpCodes.Stloc, _ccOp);
    }

    private void EmitBinary(in MicroOp op, LocalBuilder? bLocal = null)
    {
        OpCode code = op.Kind switch
        {
            Uop.Add => OpCodes.Add,
            Uop.Sub => OpCodes.Sub,
            Uop.And => OpCodes.And,
            Uop.Or => OpCodes.Or,
            _ => OpCodes.Xor,
        };
        if (!op.SetsFlags)
        {
            Ld(op.A);
            LdOperandB(op, bLocal);
            _il.Emit(code);
            St(op.D);
            return;
        }
        bool logic = op.Kind is Uop.And or Uop.Or or Uop.Xor;
        if (logic)
        {
            Ld(op.A);
            LdOperandB(op, bLocal);
            _il.Emit(code);
            _il.Emit(OpCodes.Dup);
            _il.Emit(OpCodes.Stloc, _ccRes);
            St(op.D);
            SetCcOp(LazyOp.Logic, op.Size);
        }
        else
        {
            Ld(op.A);
            _il.Emit(OpCodes.Stloc, _ccA);
            LdOperandB(op, bLocal);
            _il.Emit(OpCodes.Stloc, _ccB);
            _il.Emit(OpCodes.Ldloc, _ccA);
            _il.Emit(OpCodes.Ldloc, _ccB);
            _il.Emit(code);
            _il.Emit(OpCodes.Dup);
            _il.Emit(OpCodes.Stloc, _ccRes);
            St(op.D);
            SetCcOp(op.Kind == Uop.Add ? LazyOp.Add : LazyOp.Sub, op.Size);
        }
        _lastSetter = op;
    }

    private void EmitCarry()
    {
        _il.Emit(OpCodes.Ldloc, _ccOp);
        _il.Emit(OpCodes.Ldloc, _ccA);
        _il.Emit(OpCodes.Ldloc, _ccB);
        _il.Emit(OpCodes.Ldloc, _ccRes);
        _il.Emit(OpCodes.Ldloc, _ccCarry);
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Call, MCarry);
    }

    private void EmitCarryArith(in MicroOp op)
    {
        var c = _il.DeclareLocal(typeof(uint));
        EmitCarry();
        _il.Emit(OpCodes.Stloc, c);
        var a = _il.DeclareLocal(typeof(uint));
        var b = _il.DeclareLocal(typeof(uint));
        Ld(op.A); _il.Emit(OpCodes.Stloc, a);
        LdB(op); _il.Emit(OpCodes.Stloc, b);
        _il.Emit(OpCodes.Ldloc, a);
        _il.Emit(OpCodes.Ldloc, b);
        _il.Emit(op.Kind == Uop.Adc ? OpCodes.Add : OpCodes.Sub);
        _il.Emit(OpCodes.Ldloc, c);
        _il.Emit(op.Kind == Uop.Adc ? OpCodes.Add : OpCodes.Sub);
        St(op.D);
        if (op.SetsFlags)
        {
            _il.Emit(OpCodes.Ldloc, a); _il.Emit(OpCodes.Stloc, _ccA);
            _il.Emit(OpCodes.Ldloc, b); _il.Emit(OpCodes.Stloc, _ccB);
            Ld(op.D); _il.Emit(OpCodes.Stloc, _ccRes);
            _il.Emit(OpCodes.Ldloc, c); _il.Emit(OpCodes.Stloc, _ccCarry);
            SetCcOp(op.Kind == Uop.Adc ? LazyOp.Adc : LazyOp.Sbb, op.Size);
            _lastSetter = op;
        }
    }

    private void EmitIncDec(in MicroOp op)
    {
        if (op.SetsFlags)
        {
            EmitCarry();
            _il.Emit(OpCodes.Stloc, _ccCarry);
            Ld(op.A);
            _il.Emit(OpCodes.Stloc, _ccA);
            LdC(1);
            _il.Emit(OpCodes.Stloc, _ccB);
        }
        Ld(op.A);
        LdC(1);
        _il.Emit(op.Kind == Uop.Inc ? OpCodes.Add : OpCodes.Sub);
        St(op.D);
        if (op.SetsFlags)
        {
            Ld(op.D);
            _il.Emit(OpCodes.Stloc, _ccRes);
            SetCcOp(op.Kind == Uop.Inc ? LazyOp.Inc : LazyOp.Dec, op.Size);
            _lastSetter = op;
        }
    }

    private void EmitShift(in MicroOp op)
    {
        OpCode code = op.Kind switch { Uop.Shl => OpCodes.Shl, Uop.Shr => OpCodes.Shr_Un, _ => OpCodes.Shr };
        var count = _il.DeclareLocal(typeof(int));
        LdB(op);
        LdC(31);
        _il.Emit(OpCodes.And);
        _il.Emit(OpCodes.Stloc, count);
        var a = _il.DeclareLocal(typeof(uint));
        Ld(op.A);
        _il.Emit(OpCodes.Stloc, a);
        _il.Emit(OpCodes.Ldloc, a);
        _il.Emit(OpCodes.Ldloc, count);
        _il.Emit(code);
        St(op.D);
        if (!op.SetsFlags)
            return;
        // A zero count leaves the flags alone.
        var skip = _il.DefineLabel();
        _il.Emit(OpCodes.Ldloc, count);
        _il.Emit(OpCodes.Brfalse, skip);
        _il.Emit(OpCodes.Ldloc, a); _il.Emit(OpCodes.Stloc, _ccA);
        _il.Emit(OpCodes.Ldloc, count); _il.Emit(OpCodes.Stloc, _ccB);
        Ld(op.D); _il.Emit(OpCodes.Stloc, _ccRes);
        SetCcOp(op.Kind switch { Uop.Shl => LazyOp.Shl, Uop.Shr => LazyOp.Shr, _ => LazyOp.Sar }, op.Size);
        _il.MarkLabel(skip);
        _lastSetter = op.BIsImm && (op.Imm & 31) != 0 ? op : null;
    }

    /// <summary>
    /// Pushes the truth of condition <paramref name="cc"/>. After a 32-bit
    /// compare or logic op in the same block, a direct comparison of the
    /// recorded operands (the JIT fuses it with the branch); otherwise the
    /// general evaluation of the record.
    /// </summary>
    private void EmitCondition(int cc)
    {
        bool negate = (cc & 1) != 0;
        int test = cc >> 1;
        if (_lastSetter is { } last)
        {
            bool sub = last.Kind == Uop.Sub;
            bool logic = last.Kind is Uop.And or Uop.Or or Uop.Xor;
            int size = last.Size;
            bool done = true;
            if (sub && test is 1 or 2 or 3 or 6 or 7)
            {
                bool signedCompare = test >= 6;
                LdNarrow(_ccA, size, signedCompare);
                LdNarrow(_ccB, size, signedCompare);
                switch (test)
                {
                    case 1: _il.Emit(OpCodes.Clt_Un); break;                                   // b
                    case 2: _il.Emit(OpCodes.Ceq); break;                                      // e
                    case 3: _il.Emit(OpCodes.Cgt_Un); negate = !negate; break;                 // be = !(a > b)
                    case 6: _il.Emit(OpCodes.Clt); break;                                      // l
                    case 7: _il.Emit(OpCodes.Cgt); negate = !negate; break;                    // le = !(a > b)
                }
            }
            else if ((sub || logic) && test == 4)
            {
                LdNarrow(_ccRes, size, true); LdC(0); _il.Emit(OpCodes.Clt);                 // s
            }
            else if (logic && test is 0 or 1 or 2 or 3 or 6 or 7)
            {
                switch (test)
                {
                    case 0:
                    case 1: LdC(0); break;                                                     // OF = 0, CF = 0
                    case 2:
                    case 3: LdNarrow(_ccRes, size, false); LdC(0); _il.Emit(OpCodes.Ceq); break; // ZF (CF = 0)
                    case 6: LdNarrow(_ccRes, size, true); LdC(0); _il.Emit(OpCodes.Clt); break;  // SF (OF = 0)
                    case 7: LdNarrow(_ccRes, size, true); LdC(0); _il.Emit(OpCodes.Cgt); negate = !negate; break; // ZF|SF
                }
            }
            else
            {
                done = false;
            }
            if (done)
            {
                if (negate) { LdC(0); _il.Emit(OpCodes.Ceq); }
                return;
            }
        }
        LdC((uint)cc);
        _il.Emit(OpCodes.Ldloc, _ccOp);
        _il.Emit(OpCodes.Ldloc, _ccA);
        _il.Emit(OpCodes.Ldloc, _ccB);
        _il.Emit(OpCodes.Ldloc, _ccRes);
        _il.Emit(OpCodes.Ldloc, _ccCarry);
        _il.Emit(OpCodes.Ldarg_1);
        _il.Emit(OpCodes.Call, MCondition);
    }
}
