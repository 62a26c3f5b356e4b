using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.Frontend;
using Sharpvisor.Jit.IR;
using Sharpvisor.Native;

namespace Sharpvisor.Jit.Runtime;

/// <summary>
/// One virtual CPU: its registers and the dispatch loop that runs translated
/// blocks on the calling thread until the guest stops or the host asks it to.
/// </summary>
public sealed unsafe partial class Vcpu : IDisposable
{
    /// <summary>Slots in the jump cache, a power of two; the x64 tier's indirect cache has as many, indexed by the same <see cref="JumpSlot"/>.</summary>
    internal const int JumpCacheSize = 4096;

    private CpuState* _state;
    private readonly Translator _translator;
    private readonly Block?[] _jumpCache = new Block?[JumpCacheSize];
    private VcpuExit? _exit;
    private VcpuExit? _stopRequest;
    internal VcpuStats _stats;
    /// <summary>True when the block the dispatcher ran last ran as a compiled region (its exits may come from any of the region's blocks).</summary>
    internal bool PrevRanRegion;

    public Vcpu(ExecutionEngine engine, int index, IVcpuHost host)
    {
        Engine = engine;
        Index = index;
        Host = host;
        // A backend's frame (the x64 tier's) lives right after the registers (one base register reaches both).
        int frameOffset = engine.Backend.FrameOffset;
        if (frameOffset != 0 && sizeof(CpuState) > frameOffset)
            throw new InvalidOperationException("CpuState grew into the x64 tier's frame: raise X64Frame.OffsetFromState");
        // SAFETY: the registers and the backend's frame in one allocation (the
        // check above keeps them apart), this vCPU's alone: only its own
        // thread runs guest code with it, and Dispose frees it after that
        // thread has left Run. Reset zeroes it before anything reads it.
        _state = (CpuState*)NativeMemory.AlignedAlloc((nuint)(frameOffset != 0 ? frameOffset + engine.Backend.FrameSize : sizeof(CpuState)), 64);
        _state->Reset();
        _translator = new Translator(engine.Memory);
        MemoryBase = engine.Memory.Base;
        MemorySize = engine.Memory.Size;
        if (frameOffset != 0)
        {
            BackendFrame = (byte*)_state + frameOffset;
            engine.Backend.InitFrame(this, BackendFrame);
        }
    }

    /// <summary>The decoder <see cref="MmioAccess"/> reads device accesses with, made at the first one (only this vCPU's thread uses it).</summary>
    internal (Frontend.GuestCodeReader Reader, Iced.Intel.Decoder Decoder)? MmioDecoder;

    /// <summary>What this vCPU's machine code works with (the x64 tier's frame), else null.</summary>
    internal readonly void* BackendFrame;

    public ExecutionEngine Engine { get; }
    public int Index { get; }
    public IVcpuHost Host { get; }

    /// <summary>The registers. Only the vCPU's thread touches them while <see cref="Run"/> runs.</summary>
    public ref CpuState State => ref *_state;

    internal CpuState* StatePointer => _state;
    internal readonly byte* MemoryBase;
    internal readonly ulong MemorySize;
    internal byte* CodePages => Engine.CodePages;

    /// <summary>Dispatcher figures: how block exits found their next block.</summary>
    public VcpuStats Stats => _stats;

    /// <summary>The QSBR registration of the thread inside <see cref="Run"/>, if the engine has a domain.</summary>
    public QsbrThread? Qsbr { get; private set; }

    /// <summary>Asks a running vCPU to stop at the next block boundary (any thread may call; the first request wins).</summary>
    public void RequestStop(VcpuExit exit) => Interlocked.CompareExchange(ref _stopRequest, exit, null);

    /// <summary>True once a stop was requested (a host blocking in Halt polls this).</summary>
    public bool StopRequested => Volatile.Read(ref _stopRequest) != null;

    // Journey: dispatch
    /// <summary>
    /// Runs guest code from <c>State.Eip</c> until the vCPU stops. This is the
    /// heart of every hypervisor, the loop that KVM users know as "ioctl
    /// KVM_RUN, look at the exit reason, go again"; ours runs one translated
    /// block at a time instead. Between two blocks the vCPU is at a clean
    /// point: it holds no pointer into shared data (so it reports a quiescent
    /// state for RCU), and its registers are exact (so it can honour a stop
    /// request). Then it finds the next block, cheapest way first: the link
    /// the previous block's exit already has, else a lookup, and remembers
    /// the answer as that exit's link. Never throws for anything the guest
    /// does: a fault is an exit with a reason.
    /// </summary>
    public VcpuExit Run()
    {
        Qsbr = Engine.Qsbr?.Register($"vcpu{Index}");
        try
        {
            return Engine.Backend.Run(this);
        }
        catch (Exception e)
        {
            // A bug of ours, not the guest's: report it as data, keep the host up.
            return _exit = new VcpuExit(StopReason.Error, $"internal error at eip 0x{_state->Eip:x8}: {e.GetType().Name}: {e.Message}");
        }
        finally
        {
            Qsbr?.Dispose();
            Qsbr = null;
        }
    }

    /// <summary>
    /// The dispatch loop of <see cref="Run"/>, made once per backend: the
    /// backend calls it with its <typeparamref name="TRunner"/>, a struct, so
    /// the JIT (and native AOT) compile one copy of the loop per backend with
    /// the runner's calls direct and inlined. Choosing the backend costs one
    /// interface call per <see cref="Run"/>, not one per block.
    /// </summary>
    internal VcpuExit Dispatch<TRunner>() where TRunner : struct, IBlockRunner
    {
        CpuState* s = _state;
        Block? prev = null;
        BlockExit how = BlockExit.Continue;
        while (true)
        {
            // Between two blocks this vCPU holds no pointer into RCU-protected
            // data: a quiescent state, one load and one store.
            Qsbr?.QuiescentState();
            if (Volatile.Read(ref _stopRequest) is { } request)
                return _exit = request;

            uint eip = s->Eip;
            Block? block = how switch
            {
                BlockExit.Taken => prev!.Taken,
                BlockExit.Fallthrough => prev!.Fallthrough,
                _ => prev?.Indirect is { } indirect && indirect.Start == eip ? indirect : null,
            };
            if (block != null && !block.Invalid)
            {
                _stats.Linked++;
            }
            else
            {
                block = Lookup(eip);
                if (block == null)
                    return _exit = VcpuExit.Of(NewFault(FaultKind.FetchOutsideRam, eip, address: eip));
                if (how == BlockExit.Taken) prev!.Taken = block;
                else if (how == BlockExit.Fallthrough) prev!.Fallthrough = block;
                else if (how == BlockExit.Continue && prev != null) prev.Indirect = block;
                if (prev != null && how != BlockExit.Stop)
                    TRunner.Linked(this, prev, how, block);
            }

            how = TRunner.Execute(this, s, prev, how, ref block);
            if (how == BlockExit.Stop)
                return _exit!;
            prev = block;
        }
    }

    // Journey: block-lookup
    /// <summary>
    /// Jump cache, then the engine's block cache, then the translator. The
    /// jump cache is a small per-vCPU array indexed by a hash of EIP (QEMU's
    /// tb_jmp_cache), so the common indirect jump, a return, costs one load
    /// and a compare, without the shared dictionary.
    /// </summary>
    private Block? Lookup(uint eip)
    {
        int slot = JumpSlot(eip);
        var cached = _jumpCache[slot];
        if (cached != null && cached.Start == eip && !cached.Invalid)
        {
            _stats.JumpCacheHits++;
            return cached;
        }
        if (eip >= MemorySize)
            return null;
        _stats.Lookups++;
        var block = Engine.GetBlock(eip, _translator);
        _jumpCache[slot] = block;
        return block;
    }

    /// <summary>The jump cache's slot for <paramref name="eip"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int JumpSlot(uint eip) => (int)((eip ^ (eip >> 12)) & (JumpCacheSize - 1));

    /// <summary>The jump cache itself: threaded code looks up indirect targets in it without returning here.</summary>
    internal Block?[] JumpCache => _jumpCache;

    /// <summary>Finds or translates the block at <paramref name="eip"/> (region formation uses it).</summary>
    internal Block? BlockAt(uint eip) => eip < MemorySize ? Engine.GetBlock(eip, _translator) : null;

    /// <summary>
    /// Stops the vCPU with <paramref name="exit"/>; EIP is set to <paramref name="eip"/>,
    /// or for a fault to the faulting instruction's (a hypercall's fault names
    /// the <c>int $0x1f</c>, though the host ran after it).
    /// </summary>
    internal BlockExit Stop(CpuState* s, VcpuExit exit, uint eip)
    {
        s->Eip = exit.Fault?.Eip ?? eip;
        _exit = exit;
        return BlockExit.Stop;
    }

    /// <summary>Stops the vCPU with a fault of the instruction at <paramref name="eip"/>.</summary>
    internal BlockExit Fault(CpuState* s, FaultKind kind, uint eip) => Stop(s, VcpuExit.Of(NewFault(kind, eip)), eip);

    /// <summary>Stops the vCPU with an access of <paramref name="size"/> bytes at <paramref name="address"/> outside RAM.</summary>
    /// <remarks>An access a device claims is no fault: the instruction is emulated
    /// (<see cref="MmioAccess"/>) and the vCPU goes on after it.</remarks>
    internal BlockExit MemoryFault(CpuState* s, uint address, uint size, FaultKind kind, uint eip) =>
        Host.ClaimsMmio(address)
            ? MmioAccess.Run(this, s, address, eip)
            : Stop(s, VcpuExit.Of(NewFault(kind, eip, address, size)), eip);

    /// <summary>Stops the vCPU with a device-access fault: <paramref name="detail"/> is the device's line.</summary>
    internal BlockExit DeviceFault(CpuState* s, uint address, uint? size, uint eip, string detail) =>
        Stop(s, VcpuExit.Of(NewFault(FaultKind.DeviceAccess, eip, address, size) with { Detail = detail }), eip);

    /// <summary>A fault record with the instruction's bytes as guest RAM holds them now.</summary>
    private GuestFault NewFault(FaultKind kind, uint eip, uint? address = null, uint? size = null) =>
        GuestFault.At(kind, eip, MemoryBase, MemorySize, address, size);

    // ---- called from compiled regions ----

    private static readonly int* s_noKick = (int*)NativeMemory.AllocZeroed(sizeof(int));

    /// <summary>The word an RCU updater sets to ask this vCPU for a quiescent state (a zero word without a domain).</summary>
    internal int* KickPointer => Qsbr != null ? Qsbr.KickAddress : s_noKick;

    internal BlockExit RegionMemoryFault(CpuState* s, uint address, uint size, int kind, uint eip) =>
        MemoryFault(s, address, size, kind switch { 0 => FaultKind.ReadOutsideRam, 1 => FaultKind.WriteOutsideRam, _ => FaultKind.AccessOutsideRam }, eip);

    internal bool RegionCodeWrite(uint address, int size, uint value) => Engine.OnCodeWrite(address, size, value);

    internal void AddRegionBranches(int count) => _stats.RegionInternalBranches += count;


    public void Dispose()
    {
        if (_state != null)
        {
            NativeMemory.AlignedFree(_state); // and the frame after it
            _state = null;
        }
    }
}

/// <summary>
/// How block exits found their successor: a cached link, the jump cache, a
/// compiled region entry, or a full lookup (cache or translation).
/// </summary>
public struct VcpuStats
{
    public long Blocks;
    public long Linked;
    public long JumpCacheHits;
    public long Lookups;
    public long RegionEntries;
    /// <summary>Exits taken inside compiled regions without returning to the dispatcher.</summary>
    public long RegionInternalBranches;

    /// <summary>Share of block exits served by a link, the jump cache or a region (not a full lookup).</summary>
    public readonly double FastExitShare
    {
        get
        {
            double total = Blocks + RegionInternalBranches;
            return total == 0 ? 0 : 1 - Lookups / total;
        }
    }
}
