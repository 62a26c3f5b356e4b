using System.Runtime.InteropServices;
using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.Threaded;
using Sharpvisor.Jit.Runtime;

namespace Sharpvisor.Jit.X64;

/// <summary>
/// What a vCPU's machine code reads and writes besides the guest state: one
/// per vCPU, in native memory right after its <see cref="CpuState"/>
/// (<see cref="OffsetFromState"/>), so that one register reaches both. The
/// field offsets are part of the code the compiler emits.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct X64Frame
{
    public CpuState* State;
    public byte* Mem;
    /// <summary>The vCPU's RCU kick word: set, a chained jump leaves instead.</summary>
    public int* Kick;
    /// <summary>The header of the block running now: the entry stub's caller sets it, a chained jump moves it on.</summary>
    public ThreadedHeader* Header;
    /// <summary>Chained block entries left (the threaded engine's budget, shared; in ebp while machine code runs).</summary>
    public int Budget;
    /// <summary>On <see cref="Resume"/>: the op of <see cref="Header"/>'s block where threaded code takes over.</summary>
    public int OpIndex;
    /// <summary>On <see cref="Exit"/>: the exit taken (BlockExit.Taken or Fallthrough) and its guest address.</summary>
    public BlockExit How;
    public uint Eip;
    /// <summary>The engine's entry stub: <c>int (X64Frame* frame, void* code)</c>.</summary>
    public delegate* unmanaged[SuppressGCTransition]<X64Frame*, void*, int> EntryStub;
    /// <summary>The engine's indirect-jump cache (<see cref="X64Tier.IndirectCache"/>), which entering a block fills.</summary>
    public X64Block** IndirectCache;

    /// <summary>Where the frame starts, counted from the start of its vCPU's <see cref="CpuState"/>.</summary>
    public const int OffsetFromState = 320;

    /// <summary>Return values of the machine code.</summary>
    public const int Resume = 0, Exit = 1;

    public const int StateOffset = 0, MemOffset = 8, KickOffset = 16, HeaderOffset = 24,
        BudgetOffset = 32, OpIndexOffset = 36, HowOffset = 40, EipOffset = 44, EntryStubOffset = 48, IndirectCacheOffset = 56;
}

/// <summary>
/// What an indirect jump in machine code needs to know of a block it may
/// jump to, kept in the code region itself, right before the block's code.
/// The code region is never freed while the engine lives, so a pointer to
/// one of these (the indirect-jump cache holds them) never dangles; the
/// header it names may be freed, but only after <see cref="Invalid"/> is set
/// and a grace period has passed, so code that read it as valid may use it.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct X64Block
{
    public ThreadedHeader* Header;
    public void* Code;
    public uint Start;
    /// <summary>Set (through the writable view) when the block is retired.</summary>
    public int Invalid;

    public const int HeaderOffset = 0, CodeOffset = 8, StartOffset = 16, InvalidOffset = 20;
}
