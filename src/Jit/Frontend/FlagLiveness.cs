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
            if (op.SetsFlags && (MayWrite(in op) & live) == 0 && CanDrop(op.Kind))
                op.Flags &= ~UopFlags.SetFlags;
            int writes = op.SetsFlags ? Writes(in op) : 0;
            live = (live & ~writes) | Reads(in op);
        }
    }

    /// <summary>Ops whose flag update is their only purpose besides D, and safe to skip.</summary>
    private static bool CanDrop(Uop kind) => kind is not (Uop.String);

    /// <summary>The flags an op that records them may change: if none of them is read later, it need not record.</summary>
    private static int MayWrite(in MicroOp op) => op.Kind switch
    {
        Uop.Rol or Uop.Ror => CF | OF,
        Uop.Inc or Uop.Dec => OF | Rest,
        _ => All,
    };

    /// <summary>
    /// The flags an op that records them writes whatever its operands, so
    /// that what ops before it wrote there is dead: a rotate by a nonzero
    /// constant writes CF and OF (two rotates in a row leave the first's
    /// dead), inc and dec all but CF; a shift or rotate by a variable count
    /// may write nothing.
    /// </summary>
    private static int Writes(in MicroOp op) => op.Kind switch
    {
        Uop.Add or Uop.Adc or Uop.Sub or Uop.Sbb or Uop.And or Uop.Or or Uop.Xor or Uop.Mul or Uop.MulWide => All,
        Uop.Shl or Uop.Shr or Uop.Sar => op.BIsImm && (op.Imm & 31) != 0 ? All : 0,
        Uop.Rol or Uop.Ror => op.BIsImm && (op.Imm & 31) != 0 ? CF | OF : 0,
        Uop.Inc or Uop.Dec => OF | Rest,
        _ => 0,
    };

    /// <summary>The flags an op reads, or may keep from the ops before it where its own write is not certain.</summary>
    private static int Reads(in MicroOp op) => op.Kind switch
    {
        Uop.Adc or Uop.Sbb => CF,
        Uop.Rcl or Uop.Rcr or Uop.GetCf or Uop.SetCc or Uop.CMov or Uop.Pushf => All,
        // What a rotate by a constant and inc/dec do not write passes through them (Writes).
        Uop.Rol or Uop.Ror => op.BIsImm && (op.Imm & 31) != 0 ? 0 : All,
        Uop.Inc or Uop.Dec => 0,
        // Partial writers keep the flags they do not change.
        Uop.Bt or Uop.Bsf or Uop.Bsr or Uop.Lzcnt or Uop.Tzcnt or Uop.Popcnt or Uop.Shld or Uop.Shrd or Uop.FlagOp => All,
        Uop.Shl or Uop.Shr or Uop.Sar => op.BIsImm && (op.Imm & 31) != 0 ? 0 : All,
        // Exits: faults, host calls, block ends.
        Uop.Load or Uop.Store or Uop.Check or Uop.Atomic or Uop.Div or Uop.String or Uop.Fault or Uop.Hypercall or Uop.Hlt
            or Uop.Cpuid or Uop.Rdtsc or Uop.Jmp or Uop.Jcc or Uop.JmpInd or Uop.JmpCx or Uop.Enter or Uop.Popf => All,
        _ => 0,
    };
}
