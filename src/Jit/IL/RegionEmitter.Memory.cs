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

/// <summary>Effective addresses, bounds checks, guest loads and stores (with the check for stores over code).</summary>
internal sealed unsafe partial class RegionEmitter
{
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

    /// <summary>Pushes MemoryBase + ea: only after <see cref="BoundsCheck"/> has branched past the fault for this ea.</summary>
    private void EmitHostAddress()
    {
        // SAFETY (of the IL emitted): the base is a constant of this region,
        // which runs only on vCPUs of the engine it was compiled for, whose
        // RAM outlives them all; every caller emits BoundsCheck for _ea first,
        // so the volatile ldind/stind that follows stays inside RAM.
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
}
