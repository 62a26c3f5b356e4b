using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.IR;

namespace Sharpvisor.Jit.Frontend;

// Journey: flag-liveness
/// <summary>
/// Drops flag updates nobody can observe: a backward pass over a block that
/// clears <see cref="UopFlags.SetFlags"/> on an op when later ops overwrite
/// every flag it may change before anything reads it. CF and OF are tracked
/// apart from the other four, because rotates write just those two: in hash
/// code, rotate follows rotate.
/// </summary>
/// <remarks>
/// Anything that can leave translated code counts as a reader of every flag:
/// block ends, and every op that can fault or call the host. That keeps EFLAGS
/// exact at every exit, which precise faults and the hypercall ABI need.
/// </remarks>
internal static class FlagLiveness
{
    // Flag groups: CF, OF, and SF/ZF/AF/PF together.
    private const int CF = 1, OF = 2, Rest = 4, All = CF | OF | Rest;

    public static void Run(Span<MicroOp> ops)
    {
        int live = All; // the block's successor may read anything
        for (int i = ops.Length - 1; i >= 0; i--)
        {
            ref MicroOp op = ref ops[i];
            ref readonly UopInfo facts = ref UopTable.Of(op.Kind);
            if (op.SetsFlags && (MayWrite(in facts) & live) == 0 && CanDrop(in facts))
                op.Flags &= ~UopFlags.SetFlags;
            int writes = op.SetsFlags ? Writes(in op, in facts) : 0;
            live = (live & ~writes) | Reads(in op, in facts);
        }
    }

    /// <summary>Ops whose flag update is their only purpose besides D, and safe to skip.</summary>
    internal static bool CanDrop(in UopInfo facts) => !facts.Has(UopTraits.KeepsFlagUpdate);

    /// <summary>The flags an op that records them may change: if none of them is read later, it need not record.</summary>
    internal static int MayWrite(in UopInfo facts) =>
        facts.Write is FlagWrite.Always or FlagWrite.IfImmCount ? Groups(facts.FlagsWritten) : All;

    /// <summary>
    /// The flags an op that records them writes whatever its operands, so
    /// that what ops before it wrote there is dead: a rotate by a nonzero
    /// constant writes CF and OF (two rotates in a row leave the first's
    /// dead), inc and dec all but CF; a shift or rotate by a variable count
    /// may write nothing.
    /// </summary>
    internal static int Writes(in MicroOp op, in UopInfo facts) => facts.Write switch
    {
        FlagWrite.Always => Groups(facts.FlagsWritten),
        FlagWrite.IfImmCount => ImmCount(in op) ? Groups(facts.FlagsWritten) : 0,
        _ => 0,
    };

    /// <summary>
    /// The flags an op reads, or may keep from the ops before it where its
    /// own write is not certain. Anything that may leave translated code (a
    /// block end, a fault, a host call) reads them all, and so does an op
    /// that keeps the flags it does not change by merging (the pass does not
    /// track which) or replaces them outside the record.
    /// </summary>
    internal static int Reads(in MicroOp op, in UopInfo facts) =>
        facts.EndsBlock || facts.MayLeave || facts.Write is FlagWrite.Merge or FlagWrite.Replace
        || (facts.Write == FlagWrite.IfImmCount && !ImmCount(in op))
            ? All
            : Groups(facts.FlagsRead);

    private static bool ImmCount(in MicroOp op) => op.BIsImm && (op.Imm & 31) != 0;

    /// <summary>The pass's flag groups of some <see cref="Eflags"/> bits.</summary>
    private static int Groups(uint eflags) =>
        ((eflags & Eflags.CF) != 0 ? CF : 0) | ((eflags & Eflags.OF) != 0 ? OF : 0)
        | ((eflags & (Eflags.Arith & ~(Eflags.CF | Eflags.OF))) != 0 ? Rest : 0);
}
