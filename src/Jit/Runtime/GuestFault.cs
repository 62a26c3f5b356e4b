using StringBuilder = System.Text.StringBuilder;
using Iced.Intel;

namespace Sharpvisor.Jit.Runtime;

/// <summary>
/// A guest fault as data: what the guest did, where, and the instruction that
/// did it. <c>--regs</c> reports it field by field; <see cref="Describe"/>
/// is the one place its line for a human is made.
/// </summary>
/// <param name="Kind">What happened.</param>
/// <param name="Eip">The faulting instruction's address (for a fetch outside RAM, the address execution reached).</param>
/// <param name="Address">The first byte accessed, for the kinds that access memory (else null).</param>
/// <param name="Size">Bytes accessed, for reads, writes and checked ranges (else null).</param>
/// <param name="Bytes">The instruction's bytes from guest RAM at EIP: its length if it decodes, else up to 15; only what is in RAM.</param>
/// <param name="Hypercall">The hypercall number (EAX), for the faults a hypercall raises (else null).</param>
public sealed record GuestFault(FaultKind Kind, uint Eip, uint? Address, uint? Size, byte[] Bytes, uint? Hypercall = null)
{
    /// <summary>For a device-access fault, the device's own line: which device, offset and size, and why.</summary>
    public string? Detail { get; init; }

    /// <summary>The longest x86 instruction.</summary>
    public const int MaxInstructionLength = 15;

    /// <summary>A fault of the instruction at <paramref name="eip"/>, with its bytes read from guest RAM.</summary>
    public static unsafe GuestFault At(FaultKind kind, uint eip, byte* ram, ulong ramSize,
        uint? address = null, uint? size = null, uint? hypercall = null) =>
        new(kind, eip, address, size, InstructionBytes(ram, ramSize, eip), hypercall);

    /// <inheritdoc cref="At(FaultKind, uint, byte*, ulong, uint?, uint?, uint?)"/>
    public static unsafe GuestFault At(FaultKind kind, uint eip, Native.GuestMemory memory,
        uint? address = null, uint? size = null, uint? hypercall = null) =>
        At(kind, eip, memory.Base, memory.Size, address, size, hypercall);

    /// <summary>
    /// The bytes of the instruction at <paramref name="eip"/>: as many as it
    /// is long if it decodes, else up to 15, and never past the end of RAM.
    /// </summary>
    public static unsafe byte[] InstructionBytes(byte* ram, ulong ramSize, uint eip)
    {
        if (eip >= ramSize)
            return [];
        int available = (int)Math.Min(MaxInstructionLength, ramSize - eip);
        // SAFETY: eip < ramSize and available <= ramSize - eip: inside RAM, which is live while its vCPU reports the fault.
        byte[] bytes = new ReadOnlySpan<byte>(ram + eip, available).ToArray();
        var decoder = Decoder.Create(32, new ByteArrayCodeReader(bytes), eip, DecoderOptions.None);
        decoder.Decode(out Instruction insn);
        return insn.IsInvalid ? bytes : bytes[..insn.Length];
    }

    /// <summary>One line for a human: what happened, where, and the guest EIP.</summary>
    public string Describe() => Kind switch
    {
        FaultKind.ReadOutsideRam => $"read of {Plural(Size)} at 0x{Address:x8} outside guest RAM at eip 0x{Eip:x8}",
        FaultKind.WriteOutsideRam => $"write of {Plural(Size)} at 0x{Address:x8} outside guest RAM at eip 0x{Eip:x8}",
        FaultKind.AccessOutsideRam => $"access of {Plural(Size)} at 0x{Address:x8} outside guest RAM at eip 0x{Eip:x8}",
        FaultKind.FetchOutsideRam => Address == Eip
            ? $"instruction fetch at 0x{Eip:x8} outside guest RAM"
            : $"instruction fetch at 0x{Address:x8} outside guest RAM at eip 0x{Eip:x8}",
        FaultKind.DivideError => $"divide error (#DE) at eip 0x{Eip:x8}",
        FaultKind.InvalidInstruction => $"invalid instruction (bytes {Hex(" ")}) at eip 0x{Eip:x8}",
        FaultKind.UnsupportedInstruction => $"unsupported instruction '{Disassemble()}' (bytes {Hex(" ")}) at eip 0x{Eip:x8}",
        FaultKind.UnknownHypercall => $"unknown hypercall {Hypercall} (EAX) at eip 0x{Eip:x}",
        FaultKind.NotifyValueZero => $"LHCALL_NOTIFY with value 0 at eip 0x{Eip:x}",
        FaultKind.ConsoleWriteOutsideRam => $"SV_CONSOLE_WRITE of {Size} bytes at 0x{Address:x} outside guest RAM at eip 0x{Eip:x}",
        FaultKind.DeviceAccess => $"{Detail} ('{Disassemble()}') at eip 0x{Eip:x8}",
        _ => $"{Kind} at eip 0x{Eip:x8}",
    };

    /// <summary>The bytes as lowercase hex, pairs joined by <paramref name="separator"/>.</summary>
    public string Hex(string separator = "")
    {
        var sb = new StringBuilder(Bytes.Length * (2 + separator.Length));
        foreach (byte b in Bytes)
        {
            if (sb.Length > 0) sb.Append(separator);
            sb.Append(b.ToString("x2"));
        }
        return sb.ToString();
    }

    /// <summary>The instruction as Iced's NASM formatter writes it (the bytes show prefixes it may drop).</summary>
    private string Disassemble()
    {
        var decoder = Decoder.Create(32, new ByteArrayCodeReader(Bytes), Eip, DecoderOptions.None);
        decoder.Decode(out Instruction insn);
        var text = new StringOutput();
        new NasmFormatter().Format(insn, text);
        return text.ToStringAndReset();
    }

    private static string Plural(uint? size) => $"{size} byte{(size == 1 ? "" : "s")}";

    public override string ToString() => Describe();
}
