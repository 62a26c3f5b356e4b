namespace Sharpvisor.Jit.Cpu;

/// <summary>
/// The last flag-setting operation, kept instead of the six arithmetic flags
/// themselves (QEMU's cc_op idea): most flags are never read, so translated
/// code records the operation and its operands and the flags are computed only
/// when something asks (a jcc, pushf, an exit to the host).
/// </summary>
/// <remarks>
/// <see cref="CpuState.CcOp"/> holds <c>op | size &lt;&lt; 8</c>, size in bytes
/// (1, 2 or 4), so that one store records both.
/// </remarks>
public enum LazyOp : byte
{
    /// <summary>The arithmetic flags are materialized in <see cref="CpuState.Flags"/>.</summary>
    None = 0,
    Add, Adc, Sub, Sbb,
    /// <summary>and/or/xor/test: CF = OF = 0.</summary>
    Logic,
    /// <summary>inc/dec: like add/sub of 1, but CF is the carry-in (<see cref="CpuState.CcCarry"/>).</summary>
    Inc, Dec,
    /// <summary>Shifts by a nonzero count (<see cref="CpuState.CcB"/>); a zero count leaves flags alone.</summary>
    Shl, Shr, Sar,
    /// <summary>mul/imul: CF = OF = <see cref="CpuState.CcA"/> (0 or 1); SF/ZF/PF from the low result.</summary>
    Mul,
}
