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

/// <summary>Shifts and rotates.</summary>
internal sealed unsafe partial class RegionEmitter
{
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
}
