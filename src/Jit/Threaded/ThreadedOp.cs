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
    public delegate*<ref ThreadedContext, ThreadedOp*, BlockExit> Fn;
    public byte D, A, B, Base, Index, Scale, Size, Cc;
    public UopFlags Flags;
    public uint Imm, Disp, Eip, Next;
    /// <summary>The op's index in <see cref="Block.Ops"/>, for ops run by the switch interpreter.</summary>
    public int OpIndex;
}

/// <summary>
/// What precedes a block's threaded code in the same native allocation: the
/// links that chained exits follow, read without touching a managed object,
/// so that a block-to-block jump makes no managed store (no GC write barrier,
/// whose helper call would make every handler that can end a block save
/// registers). The engine writes the links under its lock and clears those
/// into a block before it retires the block's code (see ThreadedCodeStore.cs).
/// </summary>
internal unsafe struct ThreadedHeader
{
    /// <summary>First op of the successor reached by the taken / fallthrough exit, or null.</summary>
    public ThreadedOp* Taken, Fallthrough;
    /// <summary>First op of the block an indirect exit reached last time (followed when that block's <see cref="Start"/> is the target).</summary>
    public ThreadedOp* Indirect;
    /// <summary>This block's guest address (<see cref="Block.Start"/>).</summary>
    public uint Start;
    /// <summary>Nonzero once the block is invalid: a chained exit no longer enters it.</summary>
    public int Invalid;
    /// <summary>A GCHandle to the <see cref="Block"/>, for the rare paths that need the managed block.</summary>
    public nint Block;
    /// <summary>The x64 tier's machine code for this block, or null (see X64/X64Tier.cs).</summary>
    public void* X64Code;
    /// <summary>The x64 tier's descriptor of that code, which indirect jumps in machine code find it by (see <see cref="X64.X64Block"/>).</summary>
    public X64.X64Block* X64Block;
    /// <summary>The first op's own handler, when the x64 tier put its counting or entering handler in its place.</summary>
    public delegate*<ref ThreadedContext, ThreadedOp*, BlockExit> FirstFn;
    /// <summary>Entries counted towards the x64 tier's threshold.</summary>
    public int Executions;
    /// <summary>Nonzero once the x64 tier has decided about this block (compiled it or left it threaded).</summary>
    public int Tiered;

    /// <summary>The header of the block whose first op is <paramref name="entry"/>.</summary>
    public static ThreadedHeader* Of(ThreadedOp* entry) => (ThreadedHeader*)entry - 1;

    /// <summary>The block a header belongs to.</summary>
    public static Block BlockOf(ThreadedHeader* h) => (Block)System.Runtime.InteropServices.GCHandle.FromIntPtr(h->Block).Target!;
}

/// <summary>What every handler needs, passed by reference down the chain of handlers.</summary>
internal unsafe struct ThreadedContext
{
    public uint* R;
    public byte* Mem;
    public ulong MemSize;
    /// <summary>The engine's byte per page holding code, and its bit per translated byte (<see cref="ExecutionEngine.StoreHitsCode"/>).</summary>
    public byte* Code, CodeBits;
    public CpuState* S;
    public Vcpu V;
    /// <summary>The header of the block running now (a chained jump moves it on).</summary>
    public ThreadedHeader* Current;
    /// <summary>Blocks that may still be entered by a chained jump before returning to the dispatcher (what was spent is the count of chained entries).</summary>
    public int Budget;
    /// <summary>The vCPU's jump cache (<see cref="Vcpu.JumpSlot"/>), where indirect exits find their targets.</summary>
    public Block?[] JumpCache;
    /// <summary>The vCPU's RCU kick word: set, chaining stops at the next block end.</summary>
    public int* Kick;
    /// <summary>The vCPU's frame for the x64 tier's machine code (null for the other engines).</summary>
    public X64.X64Frame* Frame;
}
