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
internal sealed unsafe partial class RegionEmitter
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
}
