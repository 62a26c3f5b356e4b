using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Sharpvisor.Jit.Cpu;

/// <summary>
/// A vCPU's architectural state, in unmanaged memory so that translated code
/// reaches every field through one pointer. Slots 0-7 are the general
/// registers (x86 order); the slots after them are the micro-op temporaries of
/// the threaded backend, so that one indexed load serves both.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct CpuState
{
    /// <summary>General registers plus temporaries.</summary>
    public const int SlotCount = 64;

    public fixed uint Slots[SlotCount];
    public uint Eip;
    /// <summary>
    /// EFLAGS bits outside the lazy record (DF, ID, bit 1); when
    /// <see cref="CcOp"/> is <see cref="LazyOp.None"/>, also the arithmetic flags.
    /// </summary>
    public uint Flags;
    /// <summary><c>LazyOp | size &lt;&lt; 8</c>: how to compute the arithmetic flags.</summary>
    public uint CcOp;
    public uint CcA;
    public uint CcB;
    public uint CcRes;
    /// <summary>Carry-in for adc/sbb, the preserved CF for inc/dec.</summary>
    public uint CcCarry;

    public ref uint this[Gpr r] => ref Slots[(int)r];

    /// <summary>EFLAGS as the guest would read it (materializes the lazy record, leaves it in place).</summary>
    public uint GetEflags()
    {
        fixed (CpuState* self = &this)
            return LazyFlags.Materialize(self);
    }

    /// <summary>Sets EFLAGS outright (the arithmetic flags are then materialized).</summary>
    public void SetEflags(uint value)
    {
        Flags = (value & Cpu.Eflags.PopfWritable) | Cpu.Eflags.Reserved1;
        CcOp = (uint)LazyOp.None;
    }

    public void Reset()
    {
        fixed (CpuState* self = &this)
            Unsafe.InitBlockUnaligned(self, 0, (uint)sizeof(CpuState));
        Flags = Cpu.Eflags.Initial;
    }
}
