using System.Diagnostics;
using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Runtime;

namespace Sharpvisor.Jit.Threaded;

/// <summary>A backend whose cold code is threaded code: the store of that code and its links.</summary>
internal interface IThreadedBackend : IBackend
{
    ThreadedCodeStore Store { get; }
}

/// <summary>
/// The threaded engine, and the x64 engine (the same, with
/// <see cref="X64.X64Tier"/> compiling hot blocks to machine code).
/// Blocks run back to back through their links (<see cref="ChainRunner"/>).
/// </summary>
internal sealed unsafe class ThreadedBackend : IThreadedBackend
{
    private readonly ExecutionEngine _engine;
    private readonly X64.X64Tier? _x64;
    private readonly string? _x64Problem;
    private long _x64Ticks;

    /// <param name="x64">Whether to try the x64 tier; <paramref name="x64CodeBytes"/> is its code region.</param>
    public ThreadedBackend(ExecutionEngine engine, bool x64, int x64CodeBytes)
    {
        _engine = engine;
        if (x64)
            _x64 = X64.X64Tier.TryCreate(engine.Memory.Size, engine.CodePages, engine.CodeBits, x64CodeBytes, out _x64Problem);
        Store = new ThreadedCodeStore(engine, _x64);
    }

    public ThreadedCodeStore Store { get; }

    public static ThreadedBackend Of(ExecutionEngine engine) => (ThreadedBackend)engine.Backend;

    public VcpuExit Run(Vcpu vcpu) => vcpu.Dispatch<ChainRunner>();

    public void Retire(Block block) => Store.RetireLocked(block);

    public int FrameOffset => _x64 != null ? X64.X64Frame.OffsetFromState : 0;

    public int FrameSize => sizeof(X64.X64Frame);

    public void InitFrame(Vcpu vcpu, void* frame)
    {
        var f = (X64.X64Frame*)frame;
        *f = default;
        f->State = vcpu.StatePointer;
        f->Mem = vcpu.MemoryBase;
        f->EntryStub = _x64!.EntryStub;
        f->IndirectCache = _x64.IndirectCache;
    }

    public string? X64TierProblem => _x64Problem;

    public X64TierStats X64Stats
    {
        get
        {
            lock (_engine.Lock)
                return _x64 == null ? default : new(_x64.Compiled, _x64.Bytes, _x64.Refused, Stopwatch.GetElapsedTime(0, _x64Ticks));
        }
    }

    /// <summary>
    /// Gives a hot block machine code (once; another vCPU may have been
    /// first), and puts the handler that runs it, or if it cannot be
    /// compiled the block's own first handler, in place of the counting one.
    /// </summary>
    internal void CompileX64(ThreadedHeader* h)
    {
        lock (_engine.Lock)
        {
            // SAFETY: h is the header of a block's live threaded code: the
            // handler calling this runs that code, and code is freed only after
            // a grace period that this vCPU's being here holds back. Other
            // vCPUs run op0 meanwhile, so its handler changes by one aligned,
            // released pointer store: they call the old handler or the new.
            var op0 = (ThreadedOp*)(h + 1);
            if (h->Tiered != 0)
                return;
            h->Tiered = 1;
            Block block = ThreadedHeader.BlockOf(h);
            long t0 = Stopwatch.GetTimestamp();
            X64.X64Block* code = _x64 != null && !block.Invalid ? _x64.Compile(block, h) : null;
            _x64Ticks += Stopwatch.GetTimestamp() - t0;
            if (code != null)
            {
                h->X64Block = code;
                h->X64Code = code->Code;
                // The code and the header's pointer to it are in place before any vCPU can take the new handler.
                Interlocked.MemoryBarrier();
                Volatile.Write(ref *(nint*)&op0->Fn, (nint)(delegate*<ref ThreadedContext, ThreadedOp*, BlockExit>)&X64.X64Handlers.Enter);
            }
            else
            {
                Volatile.Write(ref *(nint*)&op0->Fn, (nint)h->FirstFn);
            }
        }
    }

    public void Dispose()
    {
        Store.Dispose();
        _x64?.Dispose();
    }

    /// <summary>Each block and its linked successors as one chain of threaded code; links are threaded links too.</summary>
    private struct ChainRunner : IBlockRunner
    {
        public static BlockExit Execute(Vcpu vcpu, CpuState* s, Block? prev, BlockExit how, ref Block block)
        {
            vcpu._stats.Blocks++;
            return ThreadedCode.Run(vcpu, s, ref block, chain: true);
        }

        // The same link for threaded code to follow without coming back to the dispatcher.
        public static void Linked(Vcpu vcpu, Block from, BlockExit how, Block to) =>
            ThreadedCodeStore.Of(vcpu.Engine).Link(from, how, to);
    }
}
