using Sharpvisor.Jit.Cpu;

namespace Sharpvisor.Jit.IR;

/// <summary>What a micro-op does to the flags, beyond reading them.</summary>
public enum FlagWrite : byte
{
    /// <summary>Leaves every flag as it is.</summary>
    None,
    /// <summary>With <see cref="UopFlags.SetFlags"/>, writes <see cref="UopInfo.FlagsWritten"/> whatever its operands (keeping the others as they are).</summary>
    Always,
    /// <summary>Writes them only for a nonzero count: certainly only when B is an immediate with a nonzero count (shifts, rol/ror).</summary>
    IfImmCount,
    /// <summary>
    /// Changes some flags (or all, under a condition such as a count in a
    /// register being nonzero) and keeps the rest, in a way the liveness
    /// pass does not follow: the flags before it are live.
    /// </summary>
    Merge,
    /// <summary>
    /// Replaces EFLAGS from a register, outside the lazy record (popf). The
    /// liveness pass kills flags only through the record, so it keeps the
    /// flags before this live.
    /// </summary>
    Replace,
}

/// <summary>Facts about a micro-op that passes and backends ask.</summary>
[Flags]
public enum UopTraits : ushort
{
    None = 0,
    /// <summary>Leaves the block for a successor (jmp, jcc, indirect jumps, loop/jecxz, fused compare-and-branch).</summary>
    Branch = 1 << 0,
    /// <summary>Has a fallthrough successor at <see cref="MicroOp.Next"/> as well as its target.</summary>
    Conditional = 1 << 1,
    /// <summary>Its branch target is <see cref="MicroOp.Imm"/> (else <see cref="MicroOp.Disp"/> for <see cref="TargetInDisp"/>, else a register).</summary>
    TargetInImm = 1 << 2,
    /// <summary>Its branch target is <see cref="MicroOp.Disp"/> (the fused compare-and-branch).</summary>
    TargetInDisp = 1 << 3,
    /// <summary>Stops the vCPU: the block ends here (<see cref="Uop.Fault"/>).</summary>
    Stops = 1 << 4,
    /// <summary>May stop the vCPU with a fault (memory out of RAM, #DE, an instruction not run), or leave the block after a store to code.</summary>
    MayFault = 1 << 5,
    /// <summary>Runs host code that sees or supplies guest state: the hypercall host, hlt's wait, the clock, cpuid's answers.</summary>
    CallsHost = 1 << 6,
    /// <summary>Its only effect is writing D (and the flags it records): the peephole pass may retarget D.</summary>
    WritesOnlyD = 1 << 7,
    /// <summary>Reads D as well as writing it (merges into it, or leaves it under a condition).</summary>
    ReadsD = 1 << 8,
    /// <summary>Its flag update is part of what it does (rep cmps/scas stop on it): the liveness pass never drops it.</summary>
    KeepsFlagUpdate = 1 << 9,
}

/// <summary>How a backend runs a micro-op.</summary>
public enum BackendUse : byte
{
    /// <summary>Every form is compiled in line.</summary>
    Compiled,
    /// <summary>Some forms are compiled (by size, flags, condition...), the others handed to the threaded engine's semantics.</summary>
    Partly,
    /// <summary>Handed to the threaded engine's semantics on purpose (rare, or not worth the code).</summary>
    Threaded,
}

/// <summary>One row of <see cref="UopTable"/>.</summary>
/// <param name="Kind">The micro-op.</param>
/// <param name="FlagsRead">The <see cref="Eflags"/> bits its result depends on (a condition's ops: all that a condition may test).</param>
/// <param name="FlagsWritten">The <see cref="Eflags"/> bits it may change.</param>
/// <param name="Write">How it changes them.</param>
/// <param name="Traits">Block ends, faults, host calls, what it does to D.</param>
/// <param name="X64">What the x64 tier does with it (X64/BlockCompiler.cs).</param>
/// <param name="Il">What an IL region does with it (IL/RegionEmitter.cs).</param>
public readonly record struct UopInfo(Uop Kind, uint FlagsRead, uint FlagsWritten, FlagWrite Write, UopTraits Traits, BackendUse X64, BackendUse Il)
{
    public bool Has(UopTraits t) => (Traits & t) != 0;

    /// <summary>Ends its block: a branch or a stop.</summary>
    public bool EndsBlock => (Traits & (UopTraits.Branch | UopTraits.Stops)) != 0;

    /// <summary>May leave translated code other than by a branch: a fault, a stop, a call to the host.</summary>
    public bool MayLeave => (Traits & (UopTraits.MayFault | UopTraits.Stops | UopTraits.CallsHost)) != 0;
}

/// <summary>
/// One row per micro-op: the facts that the translator, the flag-liveness
/// and peephole passes, and the backends would otherwise each spell out by
/// hand (Iced's and ARMeilleure's instruction tables are the model). A new
/// micro-op is a new row; tests/Jit/UopTableTests.cs checks that every op
/// has one and that each backend does with each op what its row says.
/// </summary>
public static class UopTable
{
    private const uint A = Eflags.Arith, CF = Eflags.CF, ZF = Eflags.ZF, OF = Eflags.OF;
    private const UopTraits
        Branch = UopTraits.Branch, Cond = UopTraits.Conditional, Imm = UopTraits.TargetInImm, Disp = UopTraits.TargetInDisp,
        Fault = UopTraits.MayFault, Host = UopTraits.CallsHost, OnlyD = UopTraits.WritesOnlyD, ReadsD = UopTraits.ReadsD;
    private const FlagWrite None = FlagWrite.None, Always = FlagWrite.Always, Merge = FlagWrite.Merge;
    private const BackendUse Compiled = BackendUse.Compiled, Partly = BackendUse.Partly, Threaded = BackendUse.Threaded;

    private static readonly UopInfo[] s_rows = Build(
    [
        //  op                read  written  how                          traits                        x64       IL
        new(Uop.Mov,          0,    0,       None,                        OnlyD,                        Compiled, Compiled),
        new(Uop.Ext,          0,    0,       None,                        OnlyD,                        Compiled, Compiled),
        new(Uop.Merge,        0,    0,       None,                        ReadsD,                       Compiled, Compiled),
        new(Uop.Lea,          0,    0,       None,                        OnlyD,                        Compiled, Compiled),
        new(Uop.Load,         0,    0,       None,                        Fault | OnlyD,                Compiled, Compiled),
        new(Uop.Store,        0,    0,       None,                        Fault,                        Compiled, Compiled),
        new(Uop.Check,        0,    0,       None,                        Fault,                        Threaded, Compiled),
        new(Uop.Add,          0,    A,       Always,                      OnlyD,                        Compiled, Compiled),
        new(Uop.Adc,          CF,   A,       Always,                      UopTraits.None,               Compiled, Compiled),
        new(Uop.Sub,          0,    A,       Always,                      OnlyD,                        Compiled, Compiled),
        new(Uop.Sbb,          CF,   A,       Always,                      UopTraits.None,               Compiled, Compiled),
        new(Uop.And,          0,    A,       Always,                      OnlyD,                        Compiled, Compiled),
        new(Uop.Or,           0,    A,       Always,                      OnlyD,                        Compiled, Compiled),
        new(Uop.Xor,          0,    A,       Always,                      OnlyD,                        Compiled, Compiled),
        // inc/dec keep CF (carried into their own record: CF passes through them).
        new(Uop.Inc,          0,    A & ~CF, Always,                      UopTraits.None,               Compiled, Compiled),
        new(Uop.Dec,          0,    A & ~CF, Always,                      UopTraits.None,               Compiled, Compiled),
        new(Uop.Not,          0,    0,       None,                        OnlyD,                        Compiled, Compiled),
        new(Uop.Shl,          0,    A,       FlagWrite.IfImmCount,        OnlyD,                        Compiled, Compiled),
        new(Uop.Shr,          0,    A,       FlagWrite.IfImmCount,        OnlyD,                        Compiled, Compiled),
        new(Uop.Sar,          0,    A,       FlagWrite.IfImmCount,        OnlyD,                        Compiled, Compiled),
        new(Uop.Rol,          0,    CF | OF, FlagWrite.IfImmCount,        UopTraits.None,               Partly,   Compiled),
        new(Uop.Ror,          0,    CF | OF, FlagWrite.IfImmCount,        UopTraits.None,               Partly,   Compiled),
        new(Uop.Rcl,          CF,   CF | OF, Merge,                       UopTraits.None,               Threaded, Compiled),
        new(Uop.Rcr,          CF,   CF | OF, Merge,                       UopTraits.None,               Threaded, Compiled),
        // All six for a nonzero count, none for a zero one (the count may be in a register).
        new(Uop.Shld,         0,    A,       Merge,                       UopTraits.None,               Partly,   Compiled),
        new(Uop.Shrd,         0,    A,       Merge,                       UopTraits.None,               Partly,   Compiled),
        new(Uop.Mul,          0,    A,       Always,                      OnlyD,                        Partly,   Partly),
        new(Uop.MulWide,      0,    A,       Always,                      UopTraits.None,               Compiled, Compiled),
        new(Uop.Div,          0,    0,       None,                        Fault,                        Threaded, Threaded),
        new(Uop.Bswap,        0,    0,       None,                        OnlyD,                        Compiled, Compiled),
        // A zero source leaves D as it was.
        new(Uop.Bsf,          0,    ZF,      Merge,                       ReadsD,                       Threaded, Threaded),
        new(Uop.Bsr,          0,    ZF,      Merge,                       ReadsD,                       Threaded, Threaded),
        new(Uop.Lzcnt,        0,    CF | ZF, Merge,                       UopTraits.None,               Threaded, Threaded),
        new(Uop.Tzcnt,        0,    CF | ZF, Merge,                       UopTraits.None,               Threaded, Threaded),
        new(Uop.Popcnt,       0,    A,       Merge,                       UopTraits.None,               Threaded, Threaded),
        new(Uop.Bt,           0,    CF,      Merge,                       UopTraits.None,               Threaded, Threaded),
        new(Uop.SetCc,        A,    0,       None,                        OnlyD,                        Compiled, Compiled),
        new(Uop.CMov,         A,    0,       None,                        ReadsD,                       Compiled, Compiled),
        // It takes CF only, but the liveness pass has always kept every flag live before it.
        new(Uop.GetCf,        A,    0,       None,                        UopTraits.None,               Threaded, Compiled),
        new(Uop.Pushf,        A,    0,       None,                        UopTraits.None,               Threaded, Threaded),
        new(Uop.Popf,         0,    A,       FlagWrite.Replace,           UopTraits.None,               Compiled, Threaded),
        // clc/stc/cmc/cld/std change one flag; sahf merges five; lahf reads them.
        new(Uop.FlagOp,       A,    A,       Merge,                       UopTraits.None,               Threaded, Threaded),
        new(Uop.Jmp,          0,    0,       None,                        Branch | Imm,                 Compiled, Compiled),
        new(Uop.Jcc,          A,    0,       None,                        Branch | Cond | Imm,          Compiled, Compiled),
        new(Uop.JmpInd,       0,    0,       None,                        Branch,                       Compiled, Compiled),
        new(Uop.AluJcc,       0,    A,       Always,                      Branch | Cond | Disp,         Compiled, Compiled),
        new(Uop.LoadAlu,      0,    A,       Always,                      Fault,                        Compiled, Compiled),
        // loope/loopne test ZF.
        new(Uop.JmpCx,        ZF,   0,       None,                        Branch | Cond | Imm,          Threaded, Compiled),
        new(Uop.Cpuid,        0,    0,       None,                        Host,                         Threaded, Threaded),
        new(Uop.Rdtsc,        0,    0,       None,                        Host,                         Threaded, Threaded),
        new(Uop.Hypercall,    0,    0,       None,                        Host,                         Threaded, Threaded),
        new(Uop.Hlt,          0,    0,       None,                        Host,                         Threaded, Threaded),
        new(Uop.Enter,        0,    0,       None,                        Fault,                        Threaded, Threaded),
        new(Uop.String,       0,    A,       Always,                      Fault | UopTraits.KeepsFlagUpdate, Threaded, Threaded),
        new(Uop.Fault,        0,    0,       None,                        UopTraits.Stops | Fault,      Threaded, Threaded),
        new(Uop.Atomic,       0,    A,       Always,                      Fault,                        Threaded, Threaded),
    ]);

    /// <summary>The row of <paramref name="kind"/>.</summary>
    public static ref readonly UopInfo Of(Uop kind) => ref s_rows[(int)kind];

    /// <summary>Every row, in <see cref="Uop"/> order; a row whose <see cref="UopInfo.Kind"/> differs from its index is a missing entry.</summary>
    public static ReadOnlySpan<UopInfo> Rows => s_rows;

    /// <summary>Rows indexed by op (a missing op keeps a default row, which the table's test reports).</summary>
    private static UopInfo[] Build(UopInfo[] rows)
    {
        var byKind = new UopInfo[Enum.GetValues<Uop>().Length];
        for (int i = 0; i < byKind.Length; i++)
            byKind[i] = new UopInfo((Uop)255, 0, 0, FlagWrite.None, UopTraits.None, BackendUse.Threaded, BackendUse.Threaded);
        foreach (var row in rows)
            byKind[(int)row.Kind] = row;
        return byKind;
    }
}
