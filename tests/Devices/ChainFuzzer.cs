using System.Buffers.Binary;
using Sharpvisor.Native;

namespace Sharpvisor.Tests.Devices;

/// <summary>What the fuzzer did to a request; every kind but None and Random makes the ring malformed for certain.</summary>
internal enum Mutation
{
    None,
    BufferOutsideRam,
    LengthPastRam,
    IndirectOutsideRam,
    IndirectLength,
    IndirectNotNegotiated,
    NestedIndirect,
    IndirectWithNext,
    IndirectNextPastTable,
    Loop,
    NextOutOfRange,
    HeadOutOfRange,
    AvailJump,
    ReadableAfterWritable,
    WrongDirection,
    LengthOverflow,
    TooLong,
    RingOutsideRam,
    /// <summary>Random bytes for a descriptor table: no expectation but that the device answers one way or the other.</summary>
    Random,
}

internal enum Shape { Direct, Indirect, Mixed }

/// <summary>What a fuzzing run saw.</summary>
internal sealed class FuzzResult
{
    public int Iterations;
    public int ValidServed;
    public int MalformedRejected;
    public readonly List<string> AcceptedMalformed = [];
    public readonly List<string> RejectedValid = [];
    public readonly List<string> WrongResults = [];
    public readonly Dictionary<Mutation, int> Seen = [];
    public readonly Dictionary<Shape, int> Shapes = [];

    public override string ToString() =>
        $"{Iterations} iterations, {ValidServed} valid served, {MalformedRejected} malformed rejected; " +
        $"accepted malformed: {AcceptedMalformed.Count} [{string.Join("; ", AcceptedMalformed.Take(3))}], " +
        $"rejected valid: {RejectedValid.Count} [{string.Join("; ", RejectedValid.Take(3))}], " +
        $"wrong results: {WrongResults.Count} [{string.Join("; ", WrongResults.Take(3))}]; " +
        $"mutations: {string.Join(", ", Seen.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key} {kv.Value}"))}; " +
        $"shapes: {string.Join(", ", Shapes.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key} {kv.Value}"))}";
}

/// <summary>
/// Feeds a device seeded random requests, each either well formed or broken
/// in one known way (<see cref="Mutation"/>), in every descriptor shape:
/// direct chains in scattered descriptor slots, indirect tables, direct
/// descriptors followed by a table, pieces of every size including zero. The
/// oracle: a well-formed request completes with the result the spec gives it
/// (for the block device, against a model of the disk that is compared with
/// the file at the end); a broken one leaves the used ring alone and puts the
/// device in DEVICE_NEEDS_RESET with one report line.
/// </summary>
internal sealed class ChainFuzzer
{
    public const ulong RamSize = 32 << 20;
    private const ulong RingBase = 0x10000, TableBase = 0x20000, DataBase = 0x100000;
    private const ulong BigBuffer = 0x100_0000, BigLength = 0x100_0000; // 16 MiB, ending at the end of RAM
    private static readonly int[] Sizes = [4, 8, 16, 64, 256];

    private readonly DeviceRig _rig;
    private readonly TempDisk? _disk;
    private readonly byte[]? _model;
    private readonly Random _rnd;
    private readonly GuestMemory _ram;
    private readonly ulong _capacity;

    private readonly int _queue;
    private readonly bool _transmit;
    private int _consoleSeen;

    /// <param name="disk">The block device's disk (its model's start), or null for a device without one.</param>
    /// <param name="transmitQueue">Fuzz this queue of a console, whose chains are all device-readable and go to its output, instead of queue 0.</param>
    public ChainFuzzer(DeviceRig rig, int seed, TempDisk? disk, int? transmitQueue = null)
    {
        _rig = rig;
        _disk = disk;
        _queue = transmitQueue ?? 0;
        _transmit = transmitQueue != null;
        _model = disk == null ? null : disk.ReadBack();
        _capacity = disk == null ? 0 : (ulong)_model!.Length / 512;
        _rnd = new Random(seed);
        _ram = rig.Ram;
    }

    private bool IsBlock => _disk != null;

    public byte[]? Model => _model;

    public FuzzResult Run(int iterations)
    {
        var result = new FuzzResult();
        for (int i = 0; i < iterations; i++)
        {
            Iterate(result, i);
            result.Iterations++;
        }
        return result;
    }

    // One request as the test means it: its buffers, and what a correct device answers.
    private sealed class Plan
    {
        public readonly List<Buf> Segments = [];
        public uint Type;
        public ulong Sector;
        public uint DataBytes;
        public byte[]? Payload;
        public bool LenientShape; // an unknown type or a flush: any extra buffers are fine
        public uint Writable => (uint)Segments.Where(s => s.Writable).Sum(s => (long)s.Length);
    }

    // A descriptor as it will be written: where, and its four fields.
    private sealed class Desc
    {
        public ulong At;
        public ulong Addr;
        public uint Len;
        public ushort Flags;
        public ushort Next;
        public bool InTable;
        public int TableIndex;
        public bool IsTablePointer;
    }

    private sealed class Placed
    {
        public ushort Head;
        public Shape Shape;
        public readonly List<Desc> Direct = [];
        public readonly List<Desc> Table = [];
        public Desc? Pointer;
    }

    private void Iterate(FuzzResult result, int iteration)
    {
        Mutation m = _rnd.Next(100) < 35 ? Mutation.None : (Mutation)(1 + _rnd.Next((int)Mutation.Random));
        int size = m switch
        {
            Mutation.LengthOverflow => 256,
            Mutation.TooLong => Sizes[_rnd.Next(3)],
            _ => Sizes[_rnd.Next(Sizes.Length)],
        };
        bool indirect = m != Mutation.IndirectNotNegotiated && _rnd.Next(8) != 0;
        // Without indirect tables every request must fit the descriptor table directly.
        if (!indirect && size < 16) size = 16;
        bool eventIdx = _rnd.Next(2) == 0;
        ulong features = TestDriver.Version1 | (indirect ? TestDriver.IndirectDesc : 0) | (eventIdx ? TestDriver.EventIdx : 0)
            | (IsBlock ? (1UL << 9) | (1UL << 2) | (1UL << 6) : 0);

        TestDriver d = _rig.Driver;
        Assert.NotNull(d.Negotiate(features));
        // Fresh rings: zeroed, so the driver's and the device's indices start at 0.
        Assert.True(_ram.TryGetSpan(RingBase, 0x3000, out Span<byte> rings));
        rings.Clear();
        int reportsBefore = _rig.Host.Reports.Count;
        string label = $"iteration {iteration} ({m}, queue size {size})";

        if (m == Mutation.RingOutsideRam)
        {
            ulong desc = RingBase, avail = RingBase + 0x1000, used = RingBase + 0x2000;
            switch (_rnd.Next(4))
            {
                case 0: desc = RamSize - 8; break;
                case 1: avail = RamSize + (ulong)_rnd.Next(0, 1 << 20) * 2; break;
                case 2: used = RingBase + 0x2000 + 2; break; // misaligned
                default: desc = RingBase + 8; break;         // misaligned
            }
            d.SetUpQueue(new DriverQueue(_ram, _queue, size, desc, avail, used));
            d.DriverReady();
            result.Seen[m] = result.Seen.GetValueOrDefault(m) + 1;
            ExpectReset(result, m, label, reportsBefore, null, 0);
            return;
        }

        var q = DriverQueue.At(_ram, _queue, size, RingBase);
        d.SetUpQueue(q);
        d.DriverReady();

        if (m == Mutation.Random)
        {
            RandomRing(result, q, label);
            return;
        }

        // Up to two well-formed requests first, then the one this iteration is about.
        var free = Enumerable.Range(0, size).OrderBy(_ => _rnd.Next()).ToList();
        // Well-formed requests ahead of it only where the table has room for three.
        int before = m is Mutation.None or Mutation.LengthOverflow or Mutation.TooLong || size < 64 ? 0 : _rnd.Next(3);
        ushort served = 0;
        for (int c = 0; c <= before; c++)
        {
            bool last = c == before;
            Mutation cm = last ? m : Mutation.None;
            Plan plan = cm == Mutation.LengthOverflow ? OverflowPlan(size) : MakePlan(c, size);
            if (cm == Mutation.ReadableAfterWritable) Reorder(plan);
            if (cm == Mutation.WrongDirection && !FlipDirection(plan)) cm = Mutation.None; // nothing to flip: serve it as it is
            if (cm == Mutation.TooLong) Pad(plan, size + 1 + _rnd.Next(4));
            Shape shape = ChooseShape(plan.Segments.Count, size, free.Count, cm, indirect);
            Placed placed = Place(plan, shape, free, c, size);
            result.Shapes[shape] = result.Shapes.GetValueOrDefault(shape) + 1;
            if (!Mutate(cm, placed, size)) cm = Mutation.None;
            foreach (Desc x in placed.Direct.Concat(placed.Table)) q.SetDescriptorAt(x.At, x.Addr, x.Len, x.Flags, x.Next);

            if (eventIdx) q.SetUsedEvent(q.UsedIdx); // ask for an interrupt for the next used entry
            ushort head = cm == Mutation.HeadOutOfRange ? (ushort)(size + _rnd.Next(0, 65536 - size)) : placed.Head;
            if (cm == Mutation.AvailJump) q.ForceAvailIdx((ushort)(q.AvailIdx + size + 1 + _rnd.Next(0, 65535 - size - 1)));
            else q.Offer(head);
            d.Notify(_queue);
            d.WaitUsedOrReset(q, (ushort)(served + 1));
            result.Seen[cm] = result.Seen.GetValueOrDefault(cm) + 1;
            string what = $"{label}, request {c}: {shape}, {plan.Segments.Count} buffers, type {plan.Type}";
            if (cm == Mutation.None)
            {
                if ((d.Status & TestDriver.NeedsReset) != 0)
                {
                    result.RejectedValid.Add($"{what}: {string.Join(" | ", _rig.Host.Reports.Skip(reportsBefore))}");
                    return;
                }
                CheckServed(result, q, served, placed.Head, plan, what);
                served++;
                continue;
            }
            ExpectReset(result, cm, what, reportsBefore, q, served);
            return;
        }
    }

    private void ExpectReset(FuzzResult result, Mutation m, string what, int reportsBefore, DriverQueue? q, ushort served)
    {
        TestDriver d = _rig.Driver;
        if ((d.Status & TestDriver.NeedsReset) == 0 || (q != null && q.UsedIdx != served))
        {
            result.AcceptedMalformed.Add(what);
            // A wrongly accepted request may have changed the disk: the model follows the file from here.
            if (_model != null) _disk!.ReadBack().CopyTo(_model, 0);
            return;
        }
        if (_transmit && _rig.Host.ConsoleBytes().Length != _consoleSeen)
            result.WrongResults.Add($"{what}: a malformed chain reached the console's output");
        int lines = _rig.Host.Reports.Count - reportsBefore;
        if ((d.Read(0x060) & 2) == 0 || lines != 1)
            result.WrongResults.Add($"{what}: InterruptStatus 0x{d.Read(0x060):x}, {lines} report lines");
        if (_rig.Host.Reports.Skip(reportsBefore).Any(l => l.Contains("internal error")))
            result.WrongResults.Add($"{what}: {string.Join(" | ", _rig.Host.Reports.Skip(reportsBefore))}");
        result.MalformedRejected++;
    }

    private void CheckServed(FuzzResult result, DriverQueue q, ushort slot, ushort head, Plan plan, string what)
    {
        (uint id, uint len) = q.UsedEntry(slot);
        _rig.Driver.TakeInterrupt();
        if (id != head || len != plan.Writable)
        {
            result.WrongResults.Add($"{what}: used entry ({id}, {len}), expected ({head}, {plan.Writable})");
            return;
        }
        if (_transmit)
        {
            // The oracle: the console's output grew by exactly the readable bytes, in order.
            byte[] output = _rig.Host.ConsoleBytes();
            byte[] sent = Gather(plan, writable: false);
            if (!output.AsSpan(_consoleSeen).SequenceEqual(sent))
                result.WrongResults.Add($"{what}: the console wrote {output.Length - _consoleSeen} bytes, not the chain's {sent.Length}");
            _consoleSeen = output.Length;
            result.ValidServed++;
            return;
        }
        byte[] written = Gather(plan, writable: true);
        if (!IsBlock)
        {
            if (written.Length >= 16 && written.All(b => b == 0xcc))
                result.WrongResults.Add($"{what}: the entropy buffers were not written");
            result.ValidServed++;
            return;
        }
        byte status = written[^1];
        byte[] data = written[..^1];
        (byte expectedStatus, byte[] expectedData) = BlockOracle(plan);
        if (status != expectedStatus || !data.AsSpan().SequenceEqual(expectedData))
            result.WrongResults.Add($"{what}: status {status}, expected {expectedStatus}; data {(data.AsSpan().SequenceEqual(expectedData) ? "as expected" : "differs")}");
        result.ValidServed++;
    }

    // The spec's answer to a well-formed block request, and its effect on the model disk.
    private (byte Status, byte[] Data) BlockOracle(Plan p)
    {
        uint dataLen = p.Writable - 1;
        bool inRange = p.DataBytes % 512 == 0 && p.Sector <= _capacity && p.DataBytes / 512 <= _capacity - p.Sector;
        switch (p.Type)
        {
            case 0:
                return inRange ? ((byte)0, _model!.AsSpan((int)(p.Sector * 512), (int)dataLen).ToArray()) : ((byte)1, new byte[dataLen]);
            case 1:
                if (!inRange) return (1, []);
                p.Payload!.CopyTo(_model!, (int)(p.Sector * 512));
                return (0, []);
            case 4:
                return (0, new byte[dataLen]);
            case 8:
                byte[] id = new byte[dataLen];
                BlockId().AsSpan(0, (int)Math.Min(20, dataLen)).CopyTo(id);
                return (0, id);
            default:
                return (2, new byte[dataLen]);
        }
    }

    private byte[]? _id;

    // The fuzzed device holds the file's exclusive lock, so the id comes from
    // the same file facts (stat's device and inode), not a second open.
    private unsafe byte[] BlockId()
    {
        if (_id != null) return _id;
        Interop.Stat st;
        Assert.Equal(0, Interop.StatPath(_disk!.Path, &st));
        _id = Sharpvisor.Devices.Block.BlockDevice.DeviceIdString(st.Dev, st.Ino);
        return _id;
    }

    private byte[] Gather(Plan plan, bool writable)
    {
        var bytes = new List<byte>();
        foreach (Buf b in plan.Segments.Where(s => s.Writable == writable))
            bytes.AddRange(Requests.ReadRam(_ram, b.Address, (int)b.Length));
        return [.. bytes];
    }

    private Plan MakePlan(int chain, int size)
    {
        ulong readAt = DataBase + (ulong)chain * 0x20000, writeAt = readAt + 0x10000;
        var p = new Plan();
        var readable = new List<byte>();
        uint writable;
        if (IsBlock)
        {
            int pick = _rnd.Next(100);
            p.Type = pick < 35 ? 0u : pick < 70 ? 1u : pick < 75 ? 4u : pick < 85 ? 8u : (uint)_rnd.Next(9, 1000);
            // A flush or an unknown type is lenient about extra buffers: flipping them proves nothing.
            p.LenientShape = p.Type is 4 or >= 9;
            int sectors = _rnd.Next(0, 9);
            p.Sector = _rnd.Next(10) == 0 ? _capacity - (ulong)_rnd.Next(0, 4) : (ulong)_rnd.Next(0, (int)_capacity - sectors + 1);
            if (_rnd.Next(50) == 0) p.Sector = ulong.MaxValue - (ulong)_rnd.Next(0, 4);
            p.DataBytes = (uint)(sectors * 512) + (_rnd.Next(20) == 0 ? (uint)_rnd.Next(1, 512) : 0);
            if (p.Type == 4) p.Sector = 0;
            byte[] header = new byte[16];
            BinaryPrimitives.WriteUInt32LittleEndian(header, p.Type);
            BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(8), p.Sector);
            readable.AddRange(header);
            switch (p.Type)
            {
                case 0: writable = p.DataBytes + 1; break;
                case 1:
                    p.Payload = new byte[p.DataBytes];
                    _rnd.NextBytes(p.Payload);
                    readable.AddRange(p.Payload);
                    writable = 1;
                    break;
                case 4: p.DataBytes = 0; writable = 1; break;
                case 8: writable = (_rnd.Next(4) == 0 ? (uint)_rnd.Next(0, 40) : 20) + 1; break;
                default:
                    readable.AddRange(new byte[_rnd.Next(0, 64)]);
                    writable = (uint)_rnd.Next(1, 100);
                    break;
            }
        }
        else if (_transmit)
        {
            byte[] data = new byte[_rnd.Next(1, 2000)];
            _rnd.NextBytes(data);
            readable.AddRange(data);
            writable = 0;
        }
        else
        {
            writable = (uint)_rnd.Next(1, 2000);
        }
        Requests.WriteRam(_ram, readAt, readable.ToArray());
        byte[] fill = new byte[writable];
        Array.Fill(fill, (byte)0xcc);
        Requests.WriteRam(_ram, writeAt, fill);
        // At most size / 2 pieces each way, so a well-formed request fits the queue.
        Split(p, readAt, (uint)readable.Count, false, size / 2);
        Split(p, writeAt, writable, true, size / 2);
        return p;
    }

    // Cuts a contiguous run into 1 to 4 pieces (some possibly empty), at most max.
    private void Split(Plan p, ulong at, uint length, bool writable, int max)
    {
        if (length == 0) return;
        int pieces = _rnd.Next(1, Math.Min(4, max) + 1);
        var cuts = Enumerable.Range(0, pieces - 1).Select(_ => (uint)_rnd.Next(0, (int)length + 1)).Order().ToList();
        uint start = 0;
        foreach (uint cut in cuts.Append(length))
        {
            p.Segments.Add(new Buf(at + start, cut - start, writable));
            start = cut;
        }
    }

    // 256 buffers of 16 MiB each: all inside RAM, 2^32 bytes together.
    private static Plan OverflowPlan(int size)
    {
        var p = new Plan();
        for (int i = 0; i < size; i++) p.Segments.Add(new Buf(BigBuffer, (uint)BigLength, true));
        return p;
    }

    private void Reorder(Plan p)
    {
        List<Buf> s = p.Segments;
        int firstWritable = s.FindIndex(b => b.Writable);
        if (_transmit)
        {
            // Only readable buffers (a transmitq): a writable one in front of them.
            s.Insert(0, new Buf(DataBase + 0x80000, (uint)_rnd.Next(0, 64), true));
        }
        else if (s.Any(b => !b.Writable))
        {
            // Move a writable buffer in front of every readable one.
            int w = s.FindIndex(firstWritable, b => b.Writable) + _rnd.Next(s.Count(b => b.Writable));
            Buf moved = s[w];
            s.RemoveAt(w);
            s.Insert(0, moved);
        }
        else
        {
            // Only writable buffers (entropy): a readable one after one of them.
            s.Insert(_rnd.Next(1, s.Count + 1), new Buf(DataBase + 0x80000, (uint)_rnd.Next(0, 64), false));
        }
    }

    private bool FlipDirection(Plan p)
    {
        if (IsBlock && p.LenientShape) return false;
        var candidates = Enumerable.Range(0, p.Segments.Count).Where(i => !IsBlock || p.Segments[i].Length != 0).ToList();
        if (candidates.Count == 0) return false;
        int at = candidates[_rnd.Next(candidates.Count)];
        Buf b = p.Segments[at];
        p.Segments[at] = b with { Writable = !b.Writable };
        return true;
    }

    private static void Pad(Plan p, int count)
    {
        ulong at = p.Segments[^1].Address;
        while (p.Segments.Count < count) p.Segments.Add(new Buf(at, 0, true));
    }

    private Shape ChooseShape(int n, int size, int free, Mutation m, bool indirect)
    {
        bool directFits = n <= size && n <= free;
        bool mixedFits = indirect && n >= 2 && free >= 2;
        bool tableFits = indirect && free >= 1 && n <= 256;
        switch (m)
        {
            case Mutation.IndirectOutsideRam or Mutation.IndirectLength or Mutation.NestedIndirect
                or Mutation.IndirectWithNext or Mutation.IndirectNextPastTable or Mutation.IndirectNotNegotiated:
                return mixedFits && _rnd.Next(3) == 0 ? Shape.Mixed : Shape.Indirect;
            case Mutation.NextOutOfRange:
                return directFits ? Shape.Direct : Shape.Mixed;
            case Mutation.TooLong:
                return mixedFits && _rnd.Next(2) == 0 ? Shape.Mixed : Shape.Indirect;
        }
        var options = new List<Shape>();
        if (directFits) options.Add(Shape.Direct);
        if (tableFits && n <= size) options.Add(Shape.Indirect);
        if (mixedFits && n <= size) options.Add(Shape.Mixed);
        Assert.NotEmpty(options);
        return options[_rnd.Next(options.Count)];
    }

    private Placed Place(Plan plan, Shape shape, List<int> free, int chain, int size)
    {
        var placed = new Placed { Shape = shape };
        List<Buf> segs = plan.Segments;
        // Mixed: 1 to n - 1 direct buffers, then the table, within the free slots.
        int directCount = shape switch
        {
            Shape.Direct => segs.Count,
            Shape.Indirect => 0,
            _ => _rnd.Next(1, Math.Min(segs.Count - 1, Math.Min(free.Count, size) - 1) + 1),
        };
        var slots = new List<int>();
        for (int i = 0; i < directCount + (shape == Shape.Direct ? 0 : 1); i++)
        {
            slots.Add(free[^1]);
            free.RemoveAt(free.Count - 1);
        }
        for (int i = 0; i < directCount; i++)
        {
            Buf b = segs[i];
            bool more = i + 1 < slots.Count;
            placed.Direct.Add(new Desc
            {
                At = RingBase + (ulong)slots[i] * 16, Addr = b.Address, Len = b.Length,
                Flags = (ushort)((b.Writable ? TestDriver.DescWrite : 0) | (more ? TestDriver.DescNext : 0)),
                Next = (ushort)(more ? slots[i + 1] : 0),
            });
        }
        if (shape != Shape.Direct)
        {
            ulong table = TableBase + (ulong)chain * 0x1000;
            int entries = segs.Count - directCount;
            for (int i = 0; i < entries; i++)
            {
                Buf b = segs[directCount + i];
                bool more = i + 1 < entries;
                placed.Table.Add(new Desc
                {
                    At = table + (ulong)i * 16, Addr = b.Address, Len = b.Length, InTable = true, TableIndex = i,
                    Flags = (ushort)((b.Writable ? TestDriver.DescWrite : 0) | (more ? TestDriver.DescNext : 0)),
                    Next = (ushort)(more ? i + 1 : 0),
                });
            }
            placed.Pointer = new Desc
            {
                At = RingBase + (ulong)slots[^1] * 16, Addr = table, Len = (uint)(entries * 16),
                Flags = (ushort)(TestDriver.DescIndirect | (_rnd.Next(2) == 0 ? TestDriver.DescWrite : 0)), // WRITE is ignored here
                IsTablePointer = true,
            };
            placed.Direct.Add(placed.Pointer);
        }
        placed.Head = (ushort)slots[0];
        return placed;
    }

    private static ushort SlotOf(Desc d) => (ushort)((d.At - RingBase) / 16);

    /// <summary>Breaks the placed chain as <paramref name="m"/> says; false if this chain has nothing to break that way.</summary>
    private bool Mutate(Mutation m, Placed p, int size)
    {
        var buffers = p.Direct.Where(x => !x.IsTablePointer).Concat(p.Table).ToList();
        switch (m)
        {
            case Mutation.None or Mutation.HeadOutOfRange or Mutation.AvailJump or Mutation.ReadableAfterWritable
                or Mutation.WrongDirection or Mutation.LengthOverflow or Mutation.TooLong or Mutation.IndirectNotNegotiated:
                return m != Mutation.IndirectNotNegotiated || p.Pointer != null;
            case Mutation.BufferOutsideRam:
            {
                Desc b = buffers[_rnd.Next(buffers.Count)];
                if (b.Len == 0) b.Addr = RamSize + 1 + (ulong)_rnd.Next(0, 1 << 20);
                else b.Addr = _rnd.Next(3) switch
                {
                    0 => RamSize - b.Len + 1 + (ulong)_rnd.Next(0, (int)Math.Min(b.Len, 1 << 20)), // crosses the end
                    1 => ulong.MaxValue - (ulong)_rnd.Next(0, (int)Math.Min(b.Len, 1 << 20)),      // wraps around
                    _ => 0x1_0000_0000UL + (ulong)_rnd.Next(),                                      // above 4 GiB
                };
                return true;
            }
            case Mutation.LengthPastRam:
            {
                Desc b = buffers[_rnd.Next(buffers.Count)];
                b.Len = (uint)(RamSize - b.Addr + 1 + (ulong)_rnd.Next(0, 1 << 20));
                return true;
            }
            case Mutation.IndirectOutsideRam:
                if (p.Pointer == null) return false;
                p.Pointer.Addr = _rnd.Next(2) == 0 ? RamSize - p.Pointer.Len + 1 + (ulong)_rnd.Next(0, (int)p.Pointer.Len) : ulong.MaxValue - 15;
                return true;
            case Mutation.IndirectLength:
                if (p.Pointer == null) return false;
                p.Pointer.Len = _rnd.Next(3) switch
                {
                    0 => 0,
                    1 => p.Pointer.Len + (uint)_rnd.Next(1, 16),
                    _ => p.Pointer.Len - (uint)_rnd.Next(1, 16),
                };
                return true;
            case Mutation.NestedIndirect:
                if (p.Table.Count == 0) return false;
                p.Table[_rnd.Next(p.Table.Count)].Flags |= TestDriver.DescIndirect;
                return true;
            case Mutation.IndirectWithNext:
                if (p.Pointer == null) return false;
                p.Pointer.Flags |= TestDriver.DescNext;
                p.Pointer.Next = (ushort)_rnd.Next(size);
                return true;
            case Mutation.IndirectNextPastTable:
            {
                if (p.Table.Count == 0) return false;
                Desc e = p.Table[_rnd.Next(p.Table.Count)];
                e.Flags |= TestDriver.DescNext;
                e.Next = (ushort)(p.Table.Count + _rnd.Next(0, 300));
                return true;
            }
            case Mutation.Loop:
            {
                if (p.Table.Count > 0 && (p.Shape != Shape.Mixed || _rnd.Next(2) == 0))
                {
                    Desc last = p.Table[^1];
                    last.Flags |= TestDriver.DescNext;
                    last.Next = (ushort)_rnd.Next(p.Table.Count);
                    return true;
                }
                var direct = p.Direct.Where(x => !x.IsTablePointer).ToList();
                if (direct.Count == 0) return false;
                // The last direct buffer points back into the chain (or at itself).
                Desc tail = direct[^1];
                if (p.Pointer != null) return false; // its next is the table pointer; covered by the table case
                tail.Flags |= TestDriver.DescNext;
                tail.Next = SlotOf(direct[_rnd.Next(direct.Count)]);
                return true;
            }
            case Mutation.NextOutOfRange:
            {
                var direct = p.Direct.Where(x => !x.IsTablePointer).ToList();
                if (direct.Count == 0) return false;
                Desc b = direct[_rnd.Next(direct.Count)];
                b.Flags |= TestDriver.DescNext;
                b.Next = (ushort)(size + _rnd.Next(0, 65536 - size));
                return true;
            }
        }
        return false;
    }

    private void RandomRing(FuzzResult result, DriverQueue q, string label)
    {
        // Random descriptors, half of them aimed inside RAM with small lengths.
        for (int i = 0; i < q.Size; i++)
        {
            bool near = _rnd.Next(2) == 0;
            ulong addr = near ? DataBase + (ulong)_rnd.Next(0, 0x40000) : (ulong)_rnd.NextInt64();
            uint len = near ? (uint)_rnd.Next(0, 4096) : (uint)_rnd.NextInt64(0, 1L << 32);
            q.SetDescriptor(i, addr, len, (ushort)_rnd.Next(0, 16), (ushort)(_rnd.Next(4) == 0 ? _rnd.Next(0, 65536) : _rnd.Next(0, q.Size)));
        }
        // Tables for any indirect descriptor that lands on one, and request bytes for the block device.
        Assert.True(_ram.TryGetSpan(DataBase, 0x40000, out Span<byte> data));
        _rnd.NextBytes(data);
        q.SetUsedEvent(0);
        q.Offer((ushort)_rnd.Next(0, q.Size));
        _rig.Driver.Notify(_queue);
        _rig.Driver.WaitUsedOrReset(q, 1);
        result.Seen[Mutation.Random] = result.Seen.GetValueOrDefault(Mutation.Random) + 1;
        if (_rig.Host.Reports.Any(l => l.Contains("internal error")))
            result.WrongResults.Add($"{label}: {_rig.Host.Reports.Last()}");
        // Whatever a random request did to the disk (or the console's output) is the disk now.
        if (_model != null) _disk!.ReadBack().CopyTo(_model, 0);
        if (_transmit) _consoleSeen = _rig.Host.ConsoleBytes().Length;
    }
}
