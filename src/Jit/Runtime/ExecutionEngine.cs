using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Sharpvisor.Jit.Frontend;
using Sharpvisor.Jit.IR;
using Sharpvisor.Native;

namespace Sharpvisor.Jit.Runtime;

/// <summary>
/// One VM's translator state, shared by its vCPUs: guest memory, the chosen
/// backend, the block cache and the per-page "holds code" table that stores
/// check for self-modifying code.
/// </summary>
public sealed unsafe partial class ExecutionEngine : IDisposable
{
    /// <summary>A page invalidated this often while holding code switches to fine (64-byte) tracking.</summary>
    internal const int FineTrackingAfter = 4;

    private readonly ConcurrentDictionary<uint, Block> _blocks = new();
    private readonly Dictionary<uint, CodePage> _pages = new();
    private readonly object _pagesLock = new();
    private readonly long _tscOrigin = Stopwatch.GetTimestamp();
    private byte* _codePages;
    private readonly uint _pageCount;

    public ExecutionEngine(GuestMemory memory, EngineKind kind, Qsbr? qsbr = null)
        : this(memory, kind, qsbr, X64.X64Tier.RegionSize)
    {
    }

    /// <param name="x64CodeBytes">The x64 tier's code region (tests make it small to see what happens when it fills).</param>
    internal ExecutionEngine(GuestMemory memory, EngineKind kind, Qsbr? qsbr, int x64CodeBytes)
    {
        if (kind == EngineKind.Il && !Engines.IsIlAvailable)
            throw new PlatformNotSupportedException("the IL engine needs dynamic code, which this build (native AOT) does not have; use --engine x64 or threaded");
        Memory = memory;
        Kind = kind;
        // Retired threaded code waits for a grace period, so there is always a
        // domain: the VM's, or one of the engine's own.
        Qsbr = qsbr ?? (_ownQsbr = new Qsbr());
        // One byte per page, plus one so that a store's last byte never indexes past the table.
        _pageCount = (uint)(memory.Size / GuestMemory.PageSize) + 1;
        _codePages = (byte*)NativeMemory.AllocZeroed(_pageCount);
        Backend = Backends.Create(this, kind, x64CodeBytes);
    }

    /// <summary>What runs the translated blocks (the dispatcher runs it without asking which).</summary>
    internal IBackend Backend { get; }

    /// <summary>The engine's lock: the block cache, the page table, and the backends' code and links change under it.</summary>
    internal object Lock => _pagesLock;

    /// <summary>Why the x64 engine runs without machine code (it then runs as the threaded engine), or null.</summary>
    public string? X64TierProblem => Backend.X64TierProblem;

    /// <summary>The x64 tier's figures (zeros for the other engines).</summary>
    public X64TierStats X64Stats => Backend.X64Stats;

    public GuestMemory Memory { get; }
    public EngineKind Kind { get; }
    /// <summary>The RCU domain the vCPUs report quiescent states to (the engine's own if none was given).</summary>
    public Qsbr Qsbr { get; }
    private readonly Qsbr? _ownQsbr;

    /// <summary>Blocks executed before the IL engine compiles a region starting at one.</summary>
    public int HotThreshold { get; init; } = 64;

    internal byte* CodePages => _codePages;

    // Counters (Interlocked: several vCPUs add to them).
    private long _translations, _translatedInstructions, _translationTicks, _invalidations, _codeWrites;
    internal long _regions, _regionTicks, _regionFailures;

    /// <summary>Why the last region compile failed (diagnostics; such regions keep running threaded).</summary>
    public string? LastRegionFailure { get; internal set; }

    public EngineStats Stats => new(
        Interlocked.Read(ref _translations), Interlocked.Read(ref _translatedInstructions),
        Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _translationTicks)),
        Interlocked.Read(ref _regions),
        Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _regionTicks)),
        Interlocked.Read(ref _regionFailures),
        Interlocked.Read(ref _invalidations), Interlocked.Read(ref _codeWrites));

    /// <summary>rdtsc: nanoseconds since the VM started (the documented 1 GHz rate). Public so host threads can read the guest's clock (bench notify timestamps against it).</summary>
    /// <remarks>
    /// From the raw monotonic timestamp, not a TimeSpan: TimeSpan counts in
    /// 100 ns ticks, which would make the guest's nanosecond clock jump by 100.
    /// </remarks>
    public ulong ReadTsc()
    {
        long elapsed = Stopwatch.GetTimestamp() - _tscOrigin;
        return Stopwatch.Frequency == 1_000_000_000
            ? (ulong)elapsed
            : (ulong)((UInt128)(ulong)elapsed * 1_000_000_000 / (ulong)Stopwatch.Frequency);
    }

    // Journey: block-cache
    /// <summary>
    /// The block at <paramref name="eip"/>, translating it on a miss. The
    /// cache is per VM, not per vCPU: all vCPUs run the same guest code, so a
    /// block translated once serves them all. Each new block is also entered
    /// in the pages it covers, which is what lets a store find the blocks it
    /// overwrites (next step).
    /// </summary>
    internal Block GetBlock(uint eip, Translator translator)
    {
        if (_blocks.TryGetValue(eip, out var block))
            return block;
        long t0 = Stopwatch.GetTimestamp();
        block = translator.Translate(eip);
        Interlocked.Add(ref _translationTicks, Stopwatch.GetTimestamp() - t0);
        Interlocked.Add(ref _translatedInstructions, block.GuestInstructions);
        Interlocked.Increment(ref _translations);
        lock (_pagesLock)
        {
            // Another vCPU may have translated the same block meanwhile: keep one.
            if (_blocks.TryGetValue(eip, out var other))
                return other;
            for (uint page = eip >> 12; page <= (block.End - 1) >> 12; page++)
            {
                if (!_pages.TryGetValue(page, out var info))
                    _pages[page] = info = new CodePage();
                info.Blocks.Add(block);
                info.Mask |= GranuleMask(page, block.Start, block.End);
                _codePages[page] = 1;
            }
            _blocks[eip] = block;
        }
        return block;
    }

    /// <summary>Start addresses of the blocks in the cache (benchmarks replay their translation).</summary>
    internal IEnumerable<uint> BlockStarts => _blocks.Keys;

    /// <summary>True if [address, address + length) overlaps a page holding translated code.</summary>
    internal bool TouchesCode(uint address, ulong length)
    {
        if (length == 0) return false;
        ulong last = Math.Min(((ulong)address + length - 1) >> 12, _pageCount - 1);
        for (ulong p = address >> 12; p <= last; p++)
            if (_codePages[p] != 0)
                return true;
        return false;
    }

    // Journey: smc
    /// <summary>
    /// A store is about to write <paramref name="value"/> to a page that holds
    /// code. Invalidates what the write changes; returns true if any block was
    /// invalidated (the writer then leaves its block after the instruction).
    /// </summary>
    /// <remarks>
    /// Writing the bytes that are already there changes nothing and costs no
    /// invalidation. A page that is invalidated again and again (code and data
    /// sharing a page) switches to 64-byte granules, so that data writes next
    /// to code stop costing retranslations.
    /// </remarks>
    internal bool OnCodeWrite(uint address, int size, uint value)
    {
        Interlocked.Increment(ref _codeWrites);
        byte* p = Memory.Base + address;
        uint current = size switch { 1 => *p, 2 => *(ushort*)p, _ => *(uint*)p };
        uint mask = size == 4 ? uint.MaxValue : (1u << (size * 8)) - 1;
        if ((current & mask) == (value & mask))
            return false;
        bool any = false;
        lock (_pagesLock)
        {
            for (uint page = address >> 12; page <= (address + (uint)size - 1) >> 12; page++)
            {
                if (!_pages.TryGetValue(page, out var info))
                    continue;
                if (info.Fine)
                {
                    if ((info.Mask & GranuleMask(page, address, address + (uint)size)) == 0)
                        continue;
                    uint end = address + (uint)size;
                    foreach (var block in info.Blocks.ToArray())
                        if (block.Start < end && address < block.End)
                        {
                            InvalidateLocked(block);
                            any = true;
                        }
                }
                else
                {
                    foreach (var block in info.Blocks.ToArray())
                        InvalidateLocked(block);
                    any = true;
                    if (++info.Invalidations >= FineTrackingAfter)
                        info.Fine = true;
                }
            }
        }
        return any;
    }

    /// <summary>
    /// Makes <paramref name="region"/> the compiled code of <paramref name="head"/>,
    /// unless the guest rewrote one of its blocks while it was being compiled.
    /// </summary>
    internal bool AttachRegion(Block head, CompiledRegion region)
    {
        lock (_pagesLock)
        {
            foreach (var b in region.Blocks)
                if (b.Invalid)
                    return false;
            foreach (var b in region.Blocks)
                (b.MemberOf ??= new List<Block>()).Add(head);
            head.Region = region;
            return true;
        }
    }

    /// <summary>Drops a block: out of the cache and the page lists; vCPUs see <see cref="Block.Invalid"/>.</summary>
    /// <remarks>
    /// Another vCPU may still be running the block or a region holding it. Its
    /// threaded code is native memory, freed through QSBR once no vCPU can be
    /// inside it (Threaded/ThreadedCodeStore.cs); regions are managed objects, which
    /// the collector keeps alive for as long. That vCPU finishes the stale
    /// block, as a real CPU may finish instructions it fetched before another
    /// CPU's write.
    /// </remarks>
    private void InvalidateLocked(Block block)
    {
        if (block.Invalid) return;
        block.Invalid = true;
        Interlocked.Increment(ref _invalidations);
        _blocks.TryRemove(new KeyValuePair<uint, Block>(block.Start, block));
        for (uint page = block.Start >> 12; page <= (block.End - 1) >> 12; page++)
        {
            if (!_pages.TryGetValue(page, out var info)) continue;
            info.Blocks.Remove(block);
            info.Mask = 0;
            foreach (var b in info.Blocks)
                info.Mask |= GranuleMask(page, b.Start, b.End);
            _codePages[page] = info.Blocks.Count > 0 ? (byte)1 : (byte)0;
        }
        if (block.MemberOf != null)
            foreach (var head in block.MemberOf)
                head.Region = null;
        Backend.Retire(block);
    }

    /// <summary>Bits of the 64-byte granules of <paramref name="page"/> that [start, end) covers.</summary>
    private static ulong GranuleMask(uint page, uint start, uint end)
    {
        uint pageStart = page << 12;
        uint from = Math.Max(start, pageStart) - pageStart;
        uint to = (uint)(Math.Min((ulong)end, (ulong)pageStart + 4096) - pageStart);
        if (to <= from) return 0;
        int first = (int)(from >> 6), last = (int)((to - 1) >> 6);
        ulong mask = 0;
        for (int g = first; g <= last; g++) mask |= 1UL << g;
        return mask;
    }

    public void Dispose()
    {
        // The engine's own domain frees what is still waiting for a grace
        // period as it closes; a shared one frees it on its reclaimer thread.
        _ownQsbr?.Dispose();
        Backend.Dispose();
        if (_codePages != null)
        {
            NativeMemory.Free(_codePages);
            _codePages = null;
        }
    }

    private sealed class CodePage
    {
        public readonly List<Block> Blocks = new();
        public ulong Mask;
        public int Invalidations;
        public bool Fine;
    }
}

/// <summary>The x64 tier's figures: blocks given machine code, its bytes, blocks left threaded (not even their first op compiles, or the code region is full), and the time spent compiling.</summary>
public readonly record struct X64TierStats(long Compiled, long Bytes, long Refused, TimeSpan CompileTime);

/// <summary>Translator and tiering figures for one VM.</summary>
public readonly record struct EngineStats(
    long Translations, long TranslatedInstructions, TimeSpan TranslationTime,
    long Regions, TimeSpan RegionCompileTime, long RegionFailures,
    long Invalidations, long CodeWrites);
