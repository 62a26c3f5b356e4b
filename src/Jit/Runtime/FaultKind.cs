namespace Sharpvisor.Jit.Runtime;

/// <summary>What a guest did that stopped it (see <see cref="GuestFault"/>).</summary>
public enum FaultKind : byte
{
    /// <summary>A load outside guest RAM.</summary>
    ReadOutsideRam,
    /// <summary>A store outside guest RAM.</summary>
    WriteOutsideRam,
    /// <summary>
    /// A range an instruction with several accesses checks before the first
    /// (pushad, popad) reaches outside guest RAM.
    /// </summary>
    AccessOutsideRam,
    /// <summary>Execution reached an address outside guest RAM, or an instruction's bytes run past its end.</summary>
    FetchOutsideRam,
    /// <summary>div or idiv by zero, or a quotient too large for its register (#DE).</summary>
    DivideError,
    /// <summary>Bytes that do not decode as an x86 instruction.</summary>
    InvalidInstruction,
    /// <summary>An instruction the engines do not run (port I/O, ud2, 16-bit addressing, ...).</summary>
    UnsupportedInstruction,
    /// <summary><c>int $0x1f</c> with a number in EAX that names no hypercall.</summary>
    UnknownHypercall,
    /// <summary>LHCALL_NOTIFY with the reserved value 0.</summary>
    NotifyValueZero,
    /// <summary>SV_CONSOLE_WRITE of a buffer that is not all in guest RAM.</summary>
    ConsoleWriteOutsideRam,
    /// <summary>
    /// An access to a device's register window that the device refuses (a
    /// wrong size or alignment, a gap between windows) or that is not a plain
    /// mov, movzx or movsx load or store.
    /// </summary>
    DeviceAccess,
}

/// <summary>The names of <see cref="FaultKind"/> in <c>--regs</c> JSON: one row per kind.</summary>
public static class FaultKinds
{
    public static string JsonName(FaultKind kind) => kind switch
    {
        FaultKind.ReadOutsideRam => "read_outside_ram",
        FaultKind.WriteOutsideRam => "write_outside_ram",
        FaultKind.AccessOutsideRam => "access_outside_ram",
        FaultKind.FetchOutsideRam => "fetch_outside_ram",
        FaultKind.DivideError => "divide_error",
        FaultKind.InvalidInstruction => "invalid_instruction",
        FaultKind.UnsupportedInstruction => "unsupported_instruction",
        FaultKind.UnknownHypercall => "unknown_hypercall",
        FaultKind.NotifyValueZero => "notify_value_zero",
        FaultKind.ConsoleWriteOutsideRam => "console_write_outside_ram",
        FaultKind.DeviceAccess => "device_access",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "a fault kind without a JSON name"),
    };
}
