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

/// <summary>ALU ops and the lazy-flags record they write.</summary>
internal sealed unsafe partial class RegionEmitter
{
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
}
