namespace Sharpvisor.Jit.IR;

/// <summary>
/// The micro-operations both backends consume. The front end lowers every
/// x86 instruction into a few of these, so x86 semantics are written once.
/// Operands are slots: 0-7 the guest registers, 8 and up temporaries, and
/// <see cref="MicroOp.Zero"/> a slot that always reads 0.
/// </summary>
public enum Uop : byte
{
    // --- data movement ---
    /// <summary>D = B.</summary>
    Mov,
    /// <summary>D = A narrowed to Size bytes (bits 8-15 with <see cref="UopFlags.High8"/>), zero- or sign-extended.</summary>
    Ext,
    /// <summary>D = D with its low Size bytes (or bits 8-15 with <see cref="UopFlags.High8"/>) replaced by A.</summary>
    Merge,
    /// <summary>D = effective address.</summary>
    Lea,
    /// <summary>D = guest memory at the effective address, Size bytes, zero- or sign-extended.</summary>
    Load,
    /// <summary>Guest memory at the effective address = A, Size bytes.</summary>
    Store,
    /// <summary>Faults unless [ea, ea + Imm) is RAM: instructions with several stores check them all first.</summary>
    Check,

    // --- arithmetic: D = A op B (B is Imm with UopFlags.BImm); UopFlags.SetFlags records the lazy flags ---
    Add, Adc, Sub, Sbb, And, Or, Xor,
    /// <summary>D = A + 1 / A - 1; CF kept.</summary>
    Inc, Dec,
    /// <summary>D = ~A.</summary>
    Not,
    /// <summary>Shifts and rotates by B &amp; 31; a zero count changes no flag.</summary>
    Shl, Shr, Sar, Rol, Ror, Rcl, Rcr,
    /// <summary>Double shifts: D = A shifted with bits from B, count in slot Base (or Imm with UopFlags.CountImm).</summary>
    Shld, Shrd,
    /// <summary>D = low half of A * B (signed with UopFlags.Signed); flags as mul/imul.</summary>
    Mul,
    /// <summary>D = low, slot Base = high half of A * B at Size.</summary>
    MulWide,
    /// <summary>Divides EDX:EAX (DX:AX, AX) by A at Size; raises #DE before changing anything.</summary>
    Div,
    Bswap, Bsf, Bsr, Lzcnt, Tzcnt, Popcnt,
    /// <summary>Bit test (Cc: 0 bt, 1 bts, 2 btr, 3 btc): D = A with bit B changed, CF = old bit.</summary>
    Bt,
    /// <summary>D = condition Cc ? 1 : 0.</summary>
    SetCc,
    /// <summary>if condition Cc: D = A.</summary>
    CMov,
    /// <summary>D = CF (0 or 1).</summary>
    GetCf,
    /// <summary>D = EFLAGS.</summary>
    Pushf,
    /// <summary>EFLAGS = A (the bits popf may change).</summary>
    Popf,
    /// <summary>Changes one flag (Cc: 0 clc, 1 stc, 2 cmc, 3 cld, 4 std, 5 sahf from A, 6 lahf into D).</summary>
    FlagOp,

    // --- control: these end a block ---
    /// <summary>EIP = Imm.</summary>
    Jmp,
    /// <summary>EIP = condition Cc ? Imm : Next.</summary>
    Jcc,
    /// <summary>EIP = A (ret, indirect call and jmp).</summary>
    JmpInd,
    /// <summary>
    /// Fused compare-and-branch (cmp/test/sub/and + jcc): D = A op B with the
    /// lazy flags recorded (op in <see cref="MicroOp.Scale"/>: Sub or And),
    /// then EIP = condition Cc ? Imm : Next. Made by the peephole pass; the
    /// threaded backend saves a dispatch, the IL backend splits it again.
    /// </summary>
    AluJcc,
    /// <summary>Fused load and ALU op: D = A op (memory at ea), op in Cc (Add, Sub, And, Or, Xor), flags as the op.</summary>
    LoadAlu,
    /// <summary>ECX branches (Cc = <see cref="CxBranch"/>): EIP = taken ? Imm : Next; loop* decrement ECX first.</summary>
    JmpCx,

    // --- system: run in line, may stop the vCPU ---
    Cpuid, Rdtsc,
    /// <summary><c>int $0x1f</c>: a call into the host, in line.</summary>
    Hypercall,
    /// <summary><c>hlt</c>.</summary>
    Hlt,
    /// <summary><c>enter Imm, Cc</c> with a nesting level (level 0 is lowered to plain ops).</summary>
    Enter,
    /// <summary>movs/stos/lods/cmps/scas (Cc = <see cref="StringKind"/>), with rep/repe/repne in flags.</summary>
    String,
    /// <summary>Stops the vCPU: an instruction the engines do not run (Imm indexes the block's messages).</summary>
    Fault,
    /// <summary>
    /// A locked read-modify-write of memory (Cc = <see cref="AtomicOp"/>): the
    /// memory at the effective address becomes (old op B), atomically with
    /// respect to every other vCPU; D = the old value. <c>cmpxchg</c> compares
    /// with A and writes B only if equal. Flags as the plain instruction.
    /// </summary>
    Atomic,
}

/// <summary>The operations of <see cref="Uop.Atomic"/>: <c>xchg</c> with memory, and what may take a <c>lock</c> prefix.</summary>
public enum AtomicOp : byte { Xchg, Xadd, Cmpxchg, Add, Adc, Sub, Sbb, And, Or, Xor, Inc, Dec, Not, Neg, Bts, Btr, Btc }

[Flags]
public enum UopFlags : byte
{
    None = 0,
    /// <summary>Operand B is <see cref="MicroOp.Imm"/>, not a slot.</summary>
    BImm = 1,
    /// <summary>Record the lazy flags (cleared by the liveness pass when no one can read them).</summary>
    SetFlags = 2,
    Signed = 4,
    High8 = 8,
    /// <summary>String op with rep (with repe for cmps/scas).</summary>
    Rep = 16,
    /// <summary>String op with repne.</summary>
    RepNe = 32,
    /// <summary>Shld/Shrd count is Imm.</summary>
    CountImm = 64,
    /// <summary>On Jmp/JmpInd: the jump of a call (Next is the return point).</summary>
    Call = 128,
}

public enum StringKind : byte { Movs, Stos, Lods, Cmps, Scas }

/// <summary>The branches on ECX.</summary>
public enum CxBranch : byte { Jecxz, Loop, Loope, Loopne }
