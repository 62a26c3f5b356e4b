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

/// <summary>Which ops a region emits in line, and how; the rest go to the shared semantics.</summary>
internal sealed unsafe partial class RegionEmitter
{
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
                    StoreProductHalves(op);
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
                    StoreProductHalves(op);
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

    /// <summary>The 64-bit product on the stack goes to <c>_p64</c>, its low half to D and its high half to Base (MulWide's two destinations).</summary>
    private void StoreProductHalves(in MicroOp op)
    {
        _il.Emit(OpCodes.Stloc, _p64);
        _il.Emit(OpCodes.Ldloc, _p64);
        _il.Emit(OpCodes.Conv_U4);
        St(op.D);
        _il.Emit(OpCodes.Ldloc, _p64);
        LdC(32);
        _il.Emit(OpCodes.Shr_Un);
        _il.Emit(OpCodes.Conv_U4);
        St(op.Base);
    }
}
