using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Native;

namespace Sharpvisor.Jit.Threaded;

// The threaded code of the blocks, and the raw links between it: who may
// write them, and when the code may be freed. Everything here runs under the
// engine's lock (ExecutionEngine.Lock); the handlers only read.
//
// A block's threaded code lives in native memory, headed by the links its
// exits follow. Those links are raw pointers into other blocks' code, so that
// a chained exit touches no managed object. Two rules keep every such pointer
// valid for whoever reads it:
//   1. Retiring a block clears every link into it first (each block keeps a
//      list of the headers that link to it), then frees its code only after a
//      QSBR grace period.
//   2. A vCPU reports a quiescent state only in the dispatcher, between
//      chains. So a vCPU that read a link, or a jump-cache entry it saw valid,
//      before the block was retired is still inside the grace period that
//      holds the code back, and one that reads later finds the link cleared or
//      the block marked invalid.
internal sealed unsafe class ThreadedCodeStore : IDisposable
{
    private readonly object _lock;
    private readonly Qsbr _qsbr;
    /// <summary>The x64 tier, whose counting handler heads every block's code and whose machine code a retired block drops; or null.</summary>
    private readonly X64.X64Tier? _x64;

    /// <summary>Blocks that have threaded code not yet retired (freed at <see cref="Dispose"/>).</summary>
    private readonly HashSet<Block> _withCode = new();

    public ThreadedCodeStore(ExecutionEngine engine, X64.X64Tier? x64)
    {
        _lock = engine.Lock;
        _qsbr = engine.Qsbr;
        _x64 = x64;
    }

    /// <summary>The store of <paramref name="engine"/>'s backend (every backend runs cold code threaded).</summary>
    public static ThreadedCodeStore Of(ExecutionEngine engine) => ((IThreadedBackend)engine.Backend).Store;

    private long _codeCreated, _codeRetired, _codeFreed;

    /// <summary>Threaded code made, retired (its block invalidated) and freed so far: tests check nothing leaks.</summary>
    internal (long Created, long Retired, long Freed) Counts =>
        (Interlocked.Read(ref _codeCreated), Interlocked.Read(ref _codeRetired), Interlocked.Read(ref _codeFreed));

    /// <summary>Makes <paramref name="block"/>'s threaded code (another vCPU may have just made it).</summary>
    internal ThreadedOp* Create(Block block)
    {
        lock (_lock) return CreateLocked(block);
    }

    private ThreadedOp* CreateLocked(Block block)
    {
        if (block.ThreadedEntry != null)
            return block.ThreadedEntry;
        ThreadedOp* entry = ThreadedCode.Compile(block, countEntries: _x64 != null);
        // Nothing links into an invalid block; its code runs only for the vCPU
        // that already holds it, and is freed with the engine.
        ThreadedHeader.Of(entry)->Invalid = block.Invalid ? 1 : 0;
        // The code is complete before another vCPU can see the pointer to it.
        Interlocked.MemoryBarrier();
        block.ThreadedEntry = entry;
        _withCode.Add(block);
        Interlocked.Increment(ref _codeCreated);
        return entry;
    }

    /// <summary>
    /// Records that exit <paramref name="how"/> of <paramref name="from"/>
    /// leads to <paramref name="to"/>,
    /// as a raw link threaded code can follow. The dispatcher calls this when
    /// it sets the managed link; both then name the same block.
    /// </summary>
    internal void Link(Block from, BlockExit how, Block to)
    {
        lock (_lock)
        {
            ThreadedOp* fromEntry = from.ThreadedEntry;
            if (from.Invalid || to.Invalid || fromEntry == null)
                return;
            ThreadedOp* toEntry = CreateLocked(to);
            ThreadedHeader* h = ThreadedHeader.Of(fromEntry);
            ThreadedOp* old = how switch
            {
                BlockExit.Taken => h->Taken,
                BlockExit.Fallthrough => h->Fallthrough,
                _ => h->Indirect,
            };
            if (old == toEntry)
                return;
            if (old != null)
                ForgetIncoming(from, old);
            // SAFETY: h heads from's code, live (ThreadedEntry is non-null under
            // the lock, and code is freed only after RetireLocked and a grace
            // period); toEntry is live the same way. Handlers read the link
            // without the lock: an aligned pointer store is single-copy
            // atomic, so they follow the old link or the new, both valid (rule 1).
            switch (how)
            {
                case BlockExit.Taken: h->Taken = toEntry; break;
                case BlockExit.Fallthrough: h->Fallthrough = toEntry; break;
                default: h->Indirect = toEntry; break;
            }
            (to.Incoming ??= new List<Block>()).Add(from);
        }
    }

    /// <summary>
    /// The threaded side of invalidating <paramref name="block"/>: no header
    /// links to its code any more, and the code is freed after a grace period.
    /// </summary>
    internal void RetireLocked(Block block)
    {
        ThreadedOp* entry = block.ThreadedEntry;
        if (entry == null)
            return;
        // SAFETY: entry is this block's live code (freed only by the deferral
        // below), and every from.ThreadedEntry in the loop is live the same
        // way; the stores are aligned words that handlers read without the
        // lock, seeing the link or null (rule 1).
        ThreadedHeader* h = ThreadedHeader.Of(entry);
        Volatile.Write(ref h->Invalid, 1);
        if (h->X64Block != null)
            _x64!.Invalidate(h->X64Block);
        if (block.Incoming != null)
        {
            foreach (var from in block.Incoming)
            {
                if (from.ThreadedEntry == null) continue;
                ThreadedHeader* fh = ThreadedHeader.Of(from.ThreadedEntry);
                if (fh->Taken == entry) fh->Taken = null;
                if (fh->Fallthrough == entry) fh->Fallthrough = null;
                if (fh->Indirect == entry) fh->Indirect = null;
            }
            block.Incoming = null;
        }
        // Its own links out: it no longer counts among its successors' predecessors.
        if (h->Taken != null) ForgetIncoming(block, h->Taken);
        if (h->Fallthrough != null) ForgetIncoming(block, h->Fallthrough);
        if (h->Indirect != null) ForgetIncoming(block, h->Indirect);
        h->Taken = h->Fallthrough = h->Indirect = null;
        _withCode.Remove(block);
        Interlocked.Increment(ref _codeRetired);
        nint code = (nint)entry;
        _qsbr.Defer(() =>
        {
            block.ThreadedEntry = null;
            ThreadedCode.Free((ThreadedOp*)code);
            Interlocked.Increment(ref _codeFreed);
        });
    }

    /// <summary>Drops one link of <paramref name="from"/> from the incoming list of the block whose code starts at <paramref name="target"/>.</summary>
    private static void ForgetIncoming(Block from, ThreadedOp* target) =>
        ThreadedHeader.BlockOf(ThreadedHeader.Of(target)).Incoming?.Remove(from);

    /// <summary>Frees the code of every block not retired (the vCPUs have stopped).</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var block in _withCode)
            {
                ThreadedCode.Free(block.ThreadedEntry);
                block.ThreadedEntry = null;
                Interlocked.Increment(ref _codeFreed);
            }
            _withCode.Clear();
        }
    }
}
