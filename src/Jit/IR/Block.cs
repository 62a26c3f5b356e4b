namespace Sharpvisor.Jit.IR;

/// <summary>
/// A translated basic block: guest code from <see cref="Start"/> up to a
/// control transfer, a page boundary or the length cap, as micro-ops.
/// Immutable once published, except for the execution counters and the
/// links the dispatcher caches.
/// </summary>
public sealed class Block
{
    public Block(uint start, uint end, MicroOp[] ops, Runtime.GuestFault[] faults, int guestInstructions)
    {
        Start = start;
        End = end;
        Ops = ops;
        Faults = faults;
        GuestInstructions = guestInstructions;
    }

    public uint Start { get; }
    /// <summary>One past the last byte of guest code the block was translated from.</summary>
    public uint End { get; }
    public MicroOp[] Ops { get; }
    /// <summary>The faults this block's <see cref="Uop.Fault"/> ops raise, indexed by their Imm.</summary>
    public Runtime.GuestFault[] Faults { get; }
    public int GuestInstructions { get; }

    /// <summary>Set when the guest wrote to the code it came from; jump caches and links check it.</summary>
    public volatile bool Invalid;

    /// <summary>Times the dispatcher entered this block (tiering input).</summary>
    public int Executions;

    /// <summary>Successor links (taken, fallthrough) the dispatcher follows without a lookup.</summary>
    public Block? Taken, Fallthrough;

    /// <summary>
    /// The block an indirect exit (ret, call through a pointer) went to last
    /// time: followed only when its start matches the new target, which for a
    /// function called from one hot loop is nearly always.
    /// </summary>
    public Block? Indirect;

    /// <summary>
    /// The block as threaded code (its first op, in native memory after a
    /// <see cref="Threaded.ThreadedHeader"/>), made on first run; the engine
    /// owns it and frees it through QSBR once the block is invalid.
    /// </summary>
    internal unsafe Threaded.ThreadedOp* ThreadedEntry;

    /// <summary>
    /// Blocks whose threaded headers link to this block's code, one entry per
    /// link (the engine's lock guards it): retiring this block clears them.
    /// </summary>
    internal List<Block>? Incoming;

    /// <summary>Most distinct targets <see cref="NoteIndirectTarget"/> keeps.</summary>
    public const int MaxIndirectTargets = 16;

    private uint[]? _indirectTargets;
    private int _indirectTargetCount;

    /// <summary>
    /// Remembers where this block's indirect exit (a jump table, a ret, a call
    /// through a pointer) went, while the block runs in the cold tier: a
    /// region that holds the block also holds those targets, and branches to
    /// them inside the region instead of leaving (see RegionCompiler).
    /// </summary>
    public void NoteIndirectTarget(uint target)
    {
        uint[] targets = _indirectTargets ?? Interlocked.CompareExchange(ref _indirectTargets, new uint[MaxIndirectTargets], null) ?? _indirectTargets!;
        lock (targets)
        {
            for (int i = 0; i < _indirectTargetCount; i++)
                if (targets[i] == target)
                    return;
            if (_indirectTargetCount < MaxIndirectTargets)
                targets[_indirectTargetCount++] = target;
        }
    }

    /// <summary>The indirect targets seen so far (a copy).</summary>
    public uint[] IndirectTargets
    {
        get
        {
            uint[]? targets = Volatile.Read(ref _indirectTargets);
            if (targets == null)
                return [];
            lock (targets)
                return targets.AsSpan(0, _indirectTargetCount).ToArray();
        }
    }

    /// <summary>Compiled code covering this block, if it is the head of a compiled region.</summary>
    public CompiledRegion? Region;

    /// <summary>True once a region compile has been tried from here (succeeded or not).</summary>
    public bool RegionTried;

    /// <summary>Heads of the compiled regions that contain this block (to drop them if it is invalidated).</summary>
    public List<Block>? MemberOf;

    public override string ToString() => $"block {Start:x8}-{End:x8} ({GuestInstructions} insns, {Ops.Length} uops)";
}

/// <summary>Entry of a compiled region: returns 0 to continue at <c>state->Eip</c>, nonzero to stop.</summary>
public unsafe delegate Runtime.BlockExit RegionEntry(Cpu.CpuState* state, Runtime.Vcpu vcpu);

/// <summary>A hot region compiled into one method (IL backend).</summary>
public sealed class CompiledRegion
{
    public CompiledRegion(RegionEntry entry, Block[] blocks)
    {
        Entry = entry;
        Blocks = blocks;
    }

    public RegionEntry Entry { get; }
    public Block[] Blocks { get; }
}
