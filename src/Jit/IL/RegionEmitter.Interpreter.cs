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

/// <summary>Ops a region hands to the shared semantics: state out, Interpreter.Step, state back.</summary>
internal sealed unsafe partial class RegionEmitter
{
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
}
