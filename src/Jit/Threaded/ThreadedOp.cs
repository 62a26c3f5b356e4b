using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Runtime;

namespace Sharpvisor.Jit.Threaded;

/// <summary>
/// A micro-op in threaded form: the address of its handler, specialised at
/// translation for the op's operand shape (immediate or register, flags
/// recorded or not), plus the operands. Each handler does its work and calls
/// the next op's handler in tail position (the JIT turns that into a jump),
/// so there is no dispatch loop: direct threaded code, the classic fastest
/// interpreter layout, and small handlers keep their values in registers.
/// </summary>
internal unsafe struct ThreadedOp
{
    public delegate*<ref ThreadedContext, ThreadedOp*, int> Fn;
    public byte D, A, B, Base, Index, Scale, Size, Cc;
    public UopFlags Flags;
    public uint Imm, Disp, Eip, Next;
    /// <summary>The op's index in <see cref="Block.Ops"/>, for ops run by the switch interpreter.</summary>
    public int OpIndex;
}

/// <summary>What every handler needs, passed by reference down the chain of handlers.</summary>
internal unsafe struct ThreadedContext
{
    public uint* R;
    public byte* Mem;
    public ulong MemSize;
    public byte* Code;
    public CpuState* S;
    public Vcpu V;
    /// <summary>The block running now (a chained jump moves it on).</summary>
    public Block Block;
    /// <summary>Blocks that may still be entered by a chained jump before returning to the dispatcher (what was spent is the count of chained entries).</summary>
    public int Budget;
    /// <summary>The vCPU's jump cache (<see cref="Vcpu.JumpSlot"/>), where indirect exits find their targets.</summary>
    public Block?[] JumpCache;
    /// <summary>The vCPU's RCU kick word: set, chaining stops at the next block end.</summary>
    public int* Kick;
}
