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

/// <summary>Conditions, evaluated from the record held in locals.</summary>
internal sealed unsafe partial class RegionEmitter
{
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
