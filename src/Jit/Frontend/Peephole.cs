using Sharpvisor.Jit.IR;

namespace Sharpvisor.Jit.Frontend;

/// <summary>
/// Local rewrites after lowering that cut the number of micro-ops the threaded
/// backend dispatches: results written straight into their register instead
/// of through a temporary, and the commonest pairs fused into one op.
/// </summary>
internal static class Peephole
{
    public static MicroOp[] Run(MicroOp[] ops)
    {
        var list = new List<MicroOp>(ops.Length);
        for (int i = 0; i < ops.Length; i++)
        {
            MicroOp op = ops[i];
            if (list.Count > 0)
            {
                MicroOp prev = list[^1];
                // "t = X; reg = t" -> "reg = X" when t is read by nothing after
                // (temporaries live within one instruction). Adjacent only, so
                // no op that could fault comes between the two writes.
                if (op.Kind == Uop.Mov && !op.BIsImm && op.D < MicroOp.FirstTemp && op.B >= MicroOp.FirstTemp
                    && prev.D == op.B && prev.Eip == op.Eip && UopTable.Of(prev.Kind).Has(UopTraits.WritesOnlyD) && !ReadLater(ops, i + 1, op.B, op.Eip))
                {
                    prev.D = op.D;
                    list[^1] = prev;
                    continue;
                }
                // "t = imm; store [m], t" -> a store of the immediate.
                if (op.Kind == Uop.Store && !op.BIsImm && prev.Kind == Uop.Mov && prev.BIsImm
                    && prev.D == op.A && prev.D >= MicroOp.FirstTemp && prev.Eip == op.Eip
                    && op.Base != prev.D && op.Index != prev.D && !ReadLater(ops, i + 1, prev.D, op.Eip))
                {
                    op.Flags |= UopFlags.BImm;
                    op.Imm = prev.Imm;
                    op.A = MicroOp.Zero;
                    list[^1] = op;
                    continue;
                }
                // "cmp/test; jcc" -> one compare-and-branch.
                if (op.Kind == Uop.Jcc && prev.Kind is Uop.Sub or Uop.And && prev.SetsFlags)
                {
                    prev.Scale = (byte)prev.Kind;
                    prev.Kind = Uop.AluJcc;
                    prev.Cc = op.Cc;
                    prev.Imm = prev.BIsImm ? prev.Imm : 0;
                    prev.Disp = op.Imm;      // branch target
                    prev.Next = op.Next;
                    prev.Index = MicroOp.Zero;
                    list[^1] = prev;
                    continue;
                }
                // "t = load [m]; d = a op t" -> one load-and-op.
                if (op.Kind is Uop.Add or Uop.Sub or Uop.And or Uop.Or or Uop.Xor && !op.BIsImm
                    && prev.Kind == Uop.Load && (prev.Flags & UopFlags.Signed) == 0 && prev.Size == op.Size
                    && prev.D == op.B && prev.D >= MicroOp.FirstTemp && op.A != prev.D && prev.Eip == op.Eip
                    && !ReadLater(ops, i + 1, prev.D, op.Eip))
                {
                    prev.Kind = Uop.LoadAlu;
                    prev.Cc = (byte)op.Kind;
                    prev.D = op.D;
                    prev.A = op.A;
                    prev.Flags = op.Flags;
                    list[^1] = prev;
                    continue;
                }
            }
            list.Add(op);
        }
        return list.ToArray();
    }

    private static bool ReadLater(MicroOp[] ops, int from, byte slot, uint eip)
    {
        for (int k = from; k < ops.Length && ops[k].Eip == eip; k++)
        {
            ref readonly MicroOp o = ref ops[k];
            if (o.A == slot || (!o.BIsImm && o.B == slot) || o.Base == slot || o.Index == slot
                || (o.D == slot && UopTable.Of(o.Kind).Has(UopTraits.ReadsD)))
                return true;
        }
        return false;
    }
}
