using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Sharpvisor.Jit.Frontend;
using Sharpvisor.Jit.IR;
using Sharpvisor.Native;

namespace Sharpvisor.Jit.Runtime;

/// <summary>
/// One VM's translator state, shared by its vCPUs: guest memory, the chosen
/// backend, the block cache, and the two tables that stores check for
/// self-modifying code: a byte per page ("holds code") and a bit per byte
/// ("was translated").
/// </summary>
public sealed unsafe partial class ExecutionEngine : IDisposable
{
    private readonly ConcurrentDictionary<uint, Block> _blocks = new();
    private readonly Dictionary<uint, CodePage> _pages = new();
    private readonly object _pagesLock = new();
    private readonly long _tscOrigin = Stopwatch.GetTimestamp();
    private byte* _codePages;
    private byte* _codeBits;
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
        // One bit per byte of RAM, plus slack so that a store's two-byte read
        // of the bitmap (StoreHitsCode) never reads past it. Zeroed pages
        // cost no memory until a page of code sets bits in them.
        _codeBits = (byte*)NativeMemory.AllocZeroed((nuint)(memory.Size / 8 + 8));
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

    /// <summary>One bit per byte of guest RAM: set where a cached block was translated from (bit <c>a &amp; 7</c> of byte <c>a &gt;&gt; 3</c>).</summary>
    internal byte* CodeBits => _codeBits;

    /// <summary>
    /// True if a store of <paramref name="size"/> (1, 2 or 4) bytes at
    /// <paramref name="ea"/> (in RAM) overwrites translated code. Every
    /// engine's stores ask this, in line: the page byte first (most stores
    /// are to pages without code), then the bits of the bytes written. Only
    /// then is the store the slow path's business, so data that shares a
    /// page with code costs a few instructions per store, not a retranslation.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool StoreHitsCode(byte* pages, byte* bits, uint ea, int size)
    {
        // SAFETY: ea + size <= RAM size (the caller checked), so both page
        // numbers are at most (size - 1) >> 12, inside the table's
        // Size / PageSize + 1 bytes.
        if ((pages[ea >> 12] | pages[(ea + (uint)size - 1) >> 12]) == 0)
            return false;
        // SAFETY: ea + size <= RAM size (the caller checked), so the two bytes
        // at ea >> 3 lie in the bitmap or its slack; a store of at most four
        // bytes spans at most 3 + 4 bits of them.
        uint window = Unsafe.ReadUnaligned<ushort>(bits + (ea >> 3));
        return ((window >> (int)(ea & 7)) & ((1u << size) - 1)) != 0;
    }

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
            // The bits before the page byte: a store that sees the page byte sees them.
            MarkLocked(block.Start, block.End);
            for (uint page = eip >> 12; page <= (block.End - 1) >> 12; page++)
            {
                if (!_pages.TryGetValue(page, out var info))
                    _pages[page] = info = new CodePage();
                info.Blocks.Add(block);
                // SAFETY: a block's bytes were fetched from RAM, so its last
                // page is inside the table of Size / PageSize + 1 bytes.
                _codePages[page] = 1;
            }
            _blocks[eip] = block;
        }
        return block;
    }

    /// <summary>Start addresses of the blocks in the cache (benchmarks replay their translation).</summary>
    internal IEnumerable<uint> BlockStarts => _blocks.Keys;

    /// <summary>True if [address, address + length) overlaps translated code (string stores ask before a bulk copy).</summary>
    internal bool TouchesCode(uint address, ulong length)
    {
        if (length == 0) return false;
        ulong end = Math.Min((ulong)address + length, Memory.Size);
        // SAFETY: every a read below is < end <= RAM size: inside both tables.
        for (ulong a = address; a < end;)
        {
            if (_codePages[a >> 12] == 0)
            {
                a = (a | 0xFFF) + 1;
                continue;
            }
            if ((a & 7) == 0 && a + 8 <= end)
            {
                if (_codeBits[a >> 3] != 0) return true;
                a += 8;
            }
            else
            {
                if (((_codeBits[a >> 3] >> (int)(a & 7)) & 1) != 0) return true;
                a++;
            }
        }
        return false;
    }

    // Journey: smc
    /// <summary>
    /// A store is about to write <paramref name="value"/> to a page that holds
    /// code. Invalidates the blocks whose bytes the write changes; returns
    /// true if any was invalidated (the writer then leaves its block after
    /// the instruction).
    /// </summary>
    /// <remarks>
    /// Only blocks the store overlaps byte for byte are dropped (QEMU keeps
    /// the same bitmap of code bytes per page): data next to code, in the
    /// same page, costs no invalidation. Writing the bytes that are already
    /// there changes nothing and costs none either.
    /// </remarks>
    internal bool OnCodeWrite(uint address, int size, uint value)
    {
        if (!StoreHitsCode(_codePages, _codeBits, address, size))
            return false;
        Interlocked.Increment(ref _codeWrites);
        // StoreHitsCode's precondition is the caller's bounds check, which is
        // also the read's: [address, address + size) lies in RAM.
        byte* ram = Memory.Base;
        uint current = size switch
        {
            1 => GuestMemory.ReadUnchecked8(ram, address),
            2 => GuestMemory.ReadUnchecked16(ram, address),
            _ => GuestMemory.ReadUnchecked32(ram, address),
        };
        uint mask = size == 4 ? uint.MaxValue : (1u << (size * 8)) - 1;
        if ((current & mask) == (value & mask))
            return false;
        lock (_pagesLock)
            return DropOverlappingLocked(address, (ulong)address + (uint)size) > 0;
    }

    /// <summary>
    /// Drops every translated block that overlaps [<paramref name="address"/>,
    /// address + <paramref name="length"/>): a device wrote guest RAM there,
    /// past the engines' store path (its DMA). Any thread; the device calls it
    /// after writing and before it tells the guest, so a guest that then runs
    /// the new bytes finds no stale translation. Returns the blocks dropped.
    /// </summary>
    public int DropCode(ulong address, ulong length)
    {
        ulong end = Math.Min(address + length, Memory.Size);
        if (address >= end || !TouchesCode((uint)address, end - address))
            return 0;
        lock (_pagesLock)
            return DropOverlappingLocked(address, end);
    }

    /// <summary>Invalidates the cached blocks that overlap [start, end) (end &gt; start); returns how many.</summary>
    private int DropOverlappingLocked(ulong start, ulong end)
    {
        int dropped = 0;
        for (ulong page = start >> 12; page <= (end - 1) >> 12; page++)
        {
            if (!_pages.TryGetValue((uint)page, out var info))
                continue;
            foreach (var block in info.Blocks.ToArray())
                if (block.Start < end && start < block.End)
                {
                    InvalidateLocked(block);
                    dropped++;
                }
        }
        return dropped;
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
            // The page's bits again from the blocks left in it (blocks may overlap).
            uint pageStart = page << 12;
            ClearLocked(pageStart, pageStart + (uint)GuestMemory.PageSize);
            foreach (var b in info.Blocks)
                MarkLocked(Math.Max(b.Start, pageStart), (uint)Math.Min(b.End, (ulong)pageStart + (uint)GuestMemory.PageSize));
            _codePages[page] = info.Blocks.Count > 0 ? (byte)1 : (byte)0;
        }
        if (block.MemberOf != null)
            foreach (var head in block.MemberOf)
                head.Region = null;
        Backend.Retire(block);
    }

    /// <summary>Sets the code bits of [start, end) (clipped to RAM).</summary>
    private void MarkLocked(uint start, uint end)
    {
        ulong to = Math.Min(end, Memory.Size);
        // SAFETY: a < RAM size, so a >> 3 < Size / 8 + 8, the bitmap's length;
        // writers hold the lock, and readers (StoreHitsCode) only read bytes.
        for (ulong a = start; a < to; a++)
            _codeBits[a >> 3] |= (byte)(1 << (int)(a & 7));
    }

    /// <summary>Clears the code bits of [start, end), a whole page (8-aligned).</summary>
    private void ClearLocked(uint start, ulong end)
    {
        ulong to = Math.Min(end, Memory.Size);
        // SAFETY: start is 8-aligned and to <= RAM size, so the bytes cleared,
        // [start / 8, (to + 7) / 8), lie in the bitmap's Size / 8 + 8.
        if (to > start)
            NativeMemory.Clear(_codeBits + (start >> 3), (nuint)((to - start + 7) >> 3));
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
        if (_codeBits != null)
        {
            NativeMemory.Free(_codeBits);
            _codeBits = null;
        }
    }

    private sealed class CodePage
    {
        public readonly List<Block> Blocks = new();
    }
}

/// <summary>The x64 tier's figures: blocks given machine code, its bytes, blocks left threaded (not even their first op compiles, or the code region is full), and the time spent compiling.</summary>
public readonly record struct X64TierStats(long Compiled, long Bytes, long Refused, TimeSpan CompileTime);

/// <summary>Translator and tiering figures for one VM.</summary>
public readonly record struct EngineStats(
    long Translations, long TranslatedInstructions, TimeSpan TranslationTime,
    long Regions, TimeSpan RegionCompileTime, long RegionFailures,
    long Invalidations, long CodeWrites);
