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
            if (op.SetsFlags && !live && CanDrop(op.Kind))
                op.Flags &= ~UopFlags.SetFlags;

            if (Reads(in op))
                live = true;
            else if (op.SetsFlags && KillsAll(in op))
                live = false;
        }
    }

    /// <summary>Ops whose flag update is their only purpose besides D, and safe to skip.</summary>
    private static bool CanDrop(Uop kind) => kind is not (Uop.String);

    /// <summary>Writes all six arithmetic flags unconditionally (a shift by a variable count may not).</summary>
    private static bool KillsAll(in MicroOp op) => op.Kind switch
    {
        Uop.Add or Uop.Adc or Uop.Sub or Uop.Sbb or Uop.And or Uop.Or or Uop.Xor or Uop.Mul or Uop.MulWide => true,
        Uop.Shl or Uop.Shr or Uop.Sar => op.BIsImm && (op.Imm & 31) != 0,
        _ => false,
    };

    private static bool Reads(in MicroOp op) => op.Kind switch
    {
        Uop.Adc or Uop.Sbb or Uop.Rcl or Uop.Rcr or Uop.GetCf or Uop.SetCc or Uop.CMov or Uop.Pushf => true,
        // Partial writers keep the flags they do not change.
        Uop.Inc or Uop.Dec or Uop.Rol or Uop.Ror or Uop.Bt or Uop.Bsf or Uop.Bsr or Uop.Lzcnt or Uop.Tzcnt or Uop.Popcnt
            or Uop.Shld or Uop.Shrd or Uop.FlagOp => true,
        Uop.Shl or Uop.Shr or Uop.Sar => !(op.BIsImm && (op.Imm & 31) != 0),
        // Exits: faults, host calls, block ends.
        Uop.Load or Uop.Store or Uop.Check or Uop.Atomic or Uop.Div or Uop.String or Uop.Fault or Uop.Hypercall or Uop.Hlt
            or Uop.Cpuid or Uop.Rdtsc or Uop.Jmp or Uop.Jcc or Uop.JmpInd or Uop.JmpCx or Uop.Enter or Uop.Popf => true,
        _ => false,
    };
}
