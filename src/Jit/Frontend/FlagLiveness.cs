using Sharpvisor.Jit.IR;

namespace Sharpvisor.Jit.Frontend;

// Journey: flag-liveness
/// <summary>
/// Drops flag updates nobody can observe: a backward pass over a block that
/// clears <see cref="UopFlags.SetFlags"/> on an op when a later op overwrites
/// all six arithmetic flags before anything reads them.
/// </summary>
/// <remarks>
/// Anything that can leave translated code counts as a reader of every flag:
/// block ends, and every op that can fault or call the host. That keeps EFLAGS
/// exact at every exit, which precise faults and the hypercall ABI need.
/// </remarks>
internal static class FlagLiveness
{
    public static void Run(Span<MicroOp> ops)
    {
        bool live = true; // the block's successor may read anything
        for (int i = ops.Length - 1; i >= 0; i--)
        {
            ref MicroOp op = ref ops[i];
            ref readonly UopInfo facts = ref UopTable.Of(op.Kind);
            if (op.SetsFlags && !live && CanDrop(in facts))
                op.Flags &= ~UopFlags.SetFlags;

            if (Reads(in op, in facts))
                live = true;
            else if (op.SetsFlags && KillsAll(in op, in facts))
                live = false;
        }
    }

    /// <summary>Ops whose flag update is their only purpose besides D, and safe to skip.</summary>
    internal static bool CanDrop(in UopInfo facts) => !facts.Has(UopTraits.KeepsFlagUpdate);

    /// <summary>Writes all six arithmetic flags unconditionally through the record (a shift by a variable count may not).</summary>
    internal static bool KillsAll(in MicroOp op, in UopInfo facts) => facts.Write switch
    {
        FlagWrite.Record => true,
        FlagWrite.RecordIfImmCount => op.BIsImm && (op.Imm & 31) != 0,
        _ => false,
    };

    /// <summary>
    /// Counts as reading every flag: it reads some, may leave translated code
    /// (a block end, a fault, a host call), keeps flags it does not change,
    /// or writes them outside the record (which the pass does not track).
    /// </summary>
    internal static bool Reads(in MicroOp op, in UopInfo facts) =>
        facts.FlagsRead != 0 || facts.EndsBlock || facts.MayLeave
        || facts.Write is FlagWrite.Merge or FlagWrite.Replace
        || (facts.Write == FlagWrite.RecordIfImmCount && !KillsAll(in op, in facts));
}
