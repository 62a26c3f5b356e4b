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
/// <see cref="X64.NativeTier"/> compiling hot blocks to machine code).
/// Blocks run back to back through their links (<see cref="ChainRunner"/>).
/// </summary>
internal sealed unsafe class ThreadedBackend : IThreadedBackend
{
    private readonly ExecutionEngine _engine;
    private readonly X64.NativeTier? _native;
    private readonly string? _nativeProblem;
    private long _nativeTicks;

    /// <param name="x64">Whether to try the x64 tier; <paramref name="nativeCodeBytes"/> is its code region.</param>
    public ThreadedBackend(ExecutionEngine engine, bool x64, int nativeCodeBytes)
    {
        _engine = engine;
        if (x64)
            _native = X64.NativeTier.TryCreate(engine.Memory.Size, engine.CodePages, nativeCodeBytes, out _nativeProblem);
        Store = new ThreadedCodeStore(engine, _native);
    }

    public ThreadedCodeStore Store { get; }

    public static ThreadedBackend Of(ExecutionEngine engine) => (ThreadedBackend)engine.Backend;

    public VcpuExit Run(Vcpu vcpu) => vcpu.Dispatch<ChainRunner>();

    public void Retire(Block block) => Store.RetireLocked(block);

    public int FrameOffset => _native != null ? X64.NativeFrame.OffsetFromState : 0;

    public int FrameSize => sizeof(X64.NativeFrame);

    public void InitFrame(Vcpu vcpu, void* frame)
    {
        var f = (X64.NativeFrame*)frame;
        *f = default;
        f->State = vcpu.StatePointer;
        f->Mem = vcpu.MemoryBase;
        f->EntryStub = _native!.EntryStub;
        f->IndirectCache = _native.IndirectCache;
    }

    public string? NativeTierProblem => _nativeProblem;

    public NativeTierStats NativeStats
    {
        get
        {
            lock (_engine.Lock)
                return _native == null ? default : new(_native.Compiled, _native.Bytes, _native.Refused, Stopwatch.GetElapsedTime(0, _nativeTicks));
        }
    }

    /// <summary>
    /// Gives a hot block machine code (once; another vCPU may have been
    /// first), and puts the handler that runs it, or if it cannot be
    /// compiled the block's own first handler, in place of the counting one.
    /// </summary>
    internal void CompileNative(ThreadedHeader* h)
    {
        lock (_engine.Lock)
        {
            var op0 = (ThreadedOp*)(h + 1);
            if (h->Tiered != 0)
                return;
            h->Tiered = 1;
            Block block = ThreadedHeader.BlockOf(h);
            long t0 = Stopwatch.GetTimestamp();
            X64.NativeBlock* code = _native != null && !block.Invalid ? _native.Compile(block, h) : null;
            _nativeTicks += Stopwatch.GetTimestamp() - t0;
            if (code != null)
            {
                h->NativeBlock = code;
                h->Native = code->Code;
                // The code and the header's pointer to it are in place before any vCPU can take the new handler.
                Interlocked.MemoryBarrier();
                Volatile.Write(ref *(nint*)&op0->Fn, (nint)(delegate*<ref ThreadedContext, ThreadedOp*, BlockExit>)&X64.NativeHandlers.Enter);
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
        _native?.Dispose();
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
