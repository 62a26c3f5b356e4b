using System.Runtime.CompilerServices;
using Sharpvisor.Jit.Threaded;
using Sharpvisor.Jit.Runtime;

namespace Sharpvisor.Jit.X64;

/// <summary>
/// The two threaded handlers the x64 tier puts in place of a block's first
/// op: one that counts entries until the block is hot, and one that runs its
/// machine code.
/// </summary>
internal static unsafe class X64Handlers
{
    /// <summary>Counts an entry; at the threshold, compiles the block. Then runs the block's own first op.</summary>
    public static BlockExit CountEntry(ref ThreadedContext c, ThreadedOp* o)
    {
        ThreadedHeader* h = c.Current;
        if (++h->Executions >= c.V.Engine.HotThreshold)
            return TierUp(ref c, o);
        return h->FirstFn(ref c, o);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static BlockExit TierUp(ref ThreadedContext c, ThreadedOp* o)
    {
        ThreadedBackend.Of(c.V.Engine).CompileX64(c.Current);
        return o->Fn(ref c, o); // Enter if it compiled, else the op's own handler
    }

    // Journey: x64-enter
    /// <summary>
    /// Runs the block's machine code, and whatever it chains into, then
    /// carries on in threaded code where it stopped: at an op it left to the
    /// threaded engine, or at an exit whose successor has no machine code.
    /// The call makes no GC transition (the code touches no managed object
    /// and returns within the chain budget), so entering costs about as much
    /// as an ordinary call.
    /// </summary>
    public static BlockExit Enter(ref ThreadedContext c, ThreadedOp* o)
    {
        X64Frame* f = c.Frame;
        ThreadedHeader* h = c.Current;
        f->Header = h;
        f->Budget = c.Budget;
        // Machine code that jumps here indirectly next time finds this block without leaving.
        // SAFETY: JumpSlot masks to JumpCacheSize - 1, and the cache has
        // IndirectCacheSize = JumpCacheSize slots (X64Tier), live with the
        // engine. Other vCPUs read the slot without a lock: the aligned
        // pointer store is single-copy atomic, and a stale descriptor is
        // marked invalid before its block is retired.
        f->IndirectCache[Runtime.Vcpu.JumpSlot(h->Start)] = h->X64Block;
        int result = f->EntryStub(f, h->X64Code);
        c.Budget = f->Budget;
        c.Current = h = f->Header;
        if (result == X64Frame.Resume)
        {
            ThreadedOp* at = (ThreadedOp*)(h + 1) + f->OpIndex;
            return (f->OpIndex == 0 ? h->FirstFn : at->Fn)(ref c, at);
        }
        return Handlers.ExitTo(ref c, f->How, f->Eip);
    }
}
