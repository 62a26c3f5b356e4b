namespace Sharpvisor.Jit.Cpu;

/// <summary>EFLAGS bits the engines model.</summary>
public static class Eflags
{
    public const uint CF = 1u << 0;
    public const uint Reserved1 = 1u << 1; // always reads as 1
    public const uint PF = 1u << 2;
    public const uint AF = 1u << 4;
    public const uint ZF = 1u << 6;
    public const uint SF = 1u << 7;
    public const uint TF = 1u << 8;
    public const uint IF = 1u << 9;
    public const uint DF = 1u << 10;
    public const uint OF = 1u << 11;
    public const uint ID = 1u << 21;

    /// <summary>The six arithmetic flags, the ones the lazy record describes.</summary>
    public const uint Arith = CF | PF | AF | ZF | SF | OF;

    /// <summary>Bits popf may change at CPL 0 with interrupts masked in ABI v1 (IF and TF stay 0).</summary>
    public const uint PopfWritable = Arith | DF | ID;

    /// <summary>EFLAGS at vCPU entry (guest ABI v1).</summary>
    public const uint Initial = Reserved1;
}
