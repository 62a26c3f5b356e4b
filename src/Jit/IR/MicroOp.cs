using System.Runtime.InteropServices;

namespace Sharpvisor.Jit.IR;

/// <summary>
/// One micro-op. Also the threaded backend's pre-decoded form: its dispatch
/// loop reads these directly, so the layout is kept small and flat.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct MicroOp
{
    /// <summary>First temporary slot (slots below are EAX..EDI).</summary>
    public const byte FirstTemp = 8;
    /// <summary>A slot that always reads 0: an absent base or index register.</summary>
    public const byte Zero = Cpu.CpuState.SlotCount - 1;

    public Uop Kind;
    public UopFlags Flags;
    /// <summary>Operand size in bytes: 1, 2 or 4.</summary>
    public byte Size;
    /// <summary>Condition code (x86 order), or a sub-kind.</summary>
    public byte Cc;
    public byte D, A, B;
    /// <summary>Memory operand: base slot, index slot, scale shift (0-3). Also a second destination for MulWide.</summary>
    public byte Base, Index, Scale;
    public uint Imm;
    /// <summary>Memory displacement.</summary>
    public uint Disp;
    /// <summary>Guest address of the instruction this op belongs to (faults report it).</summary>
    public uint Eip;
    /// <summary>Guest address of the next instruction.</summary>
    public uint Next;

    public readonly bool SetsFlags => (Flags & UopFlags.SetFlags) != 0;
    public readonly bool BIsImm => (Flags & UopFlags.BImm) != 0;

    public override readonly string ToString()
    {
        string b = BIsImm ? $"#{Imm:x}" : $"s{B}";
        return $"{Eip:x8} {Kind}{(SetsFlags ? "!" : "")}.{Size} d=s{D} a=s{A} b={b} cc={Cc} mem=[s{Base}+s{Index}<<{Scale}+{Disp:x}]";
    }
}
