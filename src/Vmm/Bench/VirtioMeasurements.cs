using System.Runtime.InteropServices;
using System.Text;
using HdrHistogram;
using Sharpvisor.Devices.Virtio;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Native;
using Sharpvisor.Vmm.Devices;
using Sharpvisor.Vmm.Loader;

namespace Sharpvisor.Vmm.Bench;

/// <summary>The modes of guests/vblkbench.c, by its numbers.</summary>
internal enum VirtioGuestMode : uint
{
    Qd1 = 1,
    Qd32 = 2,
    DoorbellStore = 3,
    DoorbellNotify = 4,
    Bracket = 5,
    DoorbellNoQueue = 6,
}

/// <summary>The CPU clocks and the VM's counters, read at one of the guest's marks.</summary>
internal readonly record struct MarkSample(long ProcessNs, long VcpuNs, long DeviceNs, long Doorbells, long Interrupts)
{
    public static MarkSample operator -(MarkSample a, MarkSample b) =>
        new(a.ProcessNs - b.ProcessNs, a.VcpuNs - b.VcpuNs, a.DeviceNs - b.DeviceNs, a.Doorbells - b.Doorbells, a.Interrupts - b.Interrupts);
}

/// <summary>
/// One VM run of vblkbench.c: its timed samples (QD1: per request, the total
/// and its three parts; the doorbell modes: per bracket), its clock at the
/// start and end of the timed part, what it checked, what the device says it
/// served, and the CPU time and counters between its two marks.
/// </summary>
internal sealed record VirtioRun(
    VirtioGuestMode Mode, int Count, LongHistogram Samples, LongHistogram? Kick, LongHistogram? Wait, LongHistogram? AfterWake,
    long ElapsedNs, int Completed, int StatusErrors, int Mismatches, int FullChecks, int DeviceServed, int MaxInFlight, bool EventIdx,
    MarkSample Marked);

/// <summary>The QD1 floor of one round: latencies, and the CPU time of the process and of each of its two threads.</summary>
internal sealed record HostRoundTrip(LongHistogram Latency, long ProcessNs, long WakerNs, long ReaderNs);

/// <summary>The QD32 floor of one round: the preads' time and the thread's CPU time.</summary>
internal sealed record HostReadLoop(int Count, long ElapsedNs, long CpuNs);

/// <summary>
/// The measurements of <c>sharpvisor bench virtio</c>. The VM rows run
/// guests/vblkbench.c in an in-process <see cref="Machine"/> with one
/// virtio-blk device over the <see cref="BenchDisk"/>; the floors run on
/// plain host threads against the same file, reading the very blocks the
/// VM rows read (the same generator and seed).
/// </summary>
internal sealed class VirtioMeasurements(string guestPath, EngineKind engine, BenchDisk disk)
{
    // The parameter block and results of guests/vblkbench.c.
    private const uint Params = 0x8000, Results = 0x1000000;
    private const uint Mode = Params, Count = Params + 0x04, Warmup = Params + 0x08, Blocks = Params + 0x0c, Seed = Params + 0x10,
        Gap = Params + 0x14, CheckEvery = Params + 0x18, Mark = Params + 0x1c;
    private const uint Done = Params + 0x40, StatusErrors = Params + 0x44, Mismatches = Params + 0x48, FullChecks = Params + 0x4c,
        Completed = Params + 0x50, MaxInFlight = Params + 0x54, UsedIdxAt = Params + 0x58, EventIdx = Params + 0x5c,
        Start = Params + 0x60, End = Params + 0x68;
    private const uint DoneMagic = 0x600d;
    private const ulong RamSize = 64ul << 20;

    /// <summary>The notify value of the guest's marks, and the interrupt that answers them.</summary>
    private const uint MarkValue = 0x10;
    private const int MarkIrq = 5;

    /// <summary>Every this many reads are compared whole (every read's first and last words always).</summary>
    public const int FullCheckEvery = 16;

    /// <summary>Nanoseconds between two timed doorbells, in the guest and the floor: the queue's thread is asleep again when the next one rings, as when a QD1 request's does.</summary>
    public const int DoorbellGapNs = 50_000;

    /// <summary>The queue's doorbell: its notify value, and the queue thread's name (QueueWorker names it device-qN).</summary>
    private static readonly uint Doorbell = DeviceWindows.Doorbell(0, 0);
    private static readonly int DeviceLine = DeviceWindows.Line(0);

    /// <summary>Runs vblkbench.c once in <paramref name="mode"/>: <paramref name="warmup"/> untimed rounds of its loop, then <paramref name="count"/> timed ones.</summary>
    /// <exception cref="InvalidOperationException">The guest, the device or the checks failed (the message says how).</exception>
    public VirtioRun Guest(VirtioGuestMode mode, int count, int warmup, uint seed)
    {
        var console = new MemoryStream();
        var reports = new StringWriter();
        GuestImage image = ImageLoader.Read(guestPath, RamSize, null);
        var spec = new DeviceSpec(DeviceKind.Block, disk.Path, ReadOnly: true, $"blk,path={disk.Path},readonly=on");
        using var noInput = new SafeFdHandle(); // a block device reads no stdin
        if (!DeviceFactory.TryOpen(spec, 0, noInput, out VirtioDevice? device, out string name, out _, out string error))
            throw new InvalidOperationException(error);
        string deviceThread = $"{name}-q0";
        using Machine m = new(new MachineConfig(RamSize, engine), image, console, [(device, name)], reports);
        using EventFd mark = EventFd.Create(), answer = EventFd.Create();
        m.Notifier.Attach(MarkValue, mark);
        m.Interrupts.Attach(MarkIrq, answer);
        m.Memory.TryWrite32(Mode, (uint)mode);
        m.Memory.TryWrite32(Count, (uint)count);
        m.Memory.TryWrite32(Warmup, (uint)warmup);
        m.Memory.TryWrite32(Blocks, disk.Blocks);
        m.Memory.TryWrite32(Seed, seed);
        m.Memory.TryWrite32(Gap, DoorbellGapNs);
        m.Memory.TryWrite32(CheckEvery, FullCheckEvery);
        m.Memory.TryWrite32(Mark, MarkValue);

        // The marks: the guest notifies and sleeps; this thread reads the
        // clocks while nothing of the VM runs, and answers with the interrupt.
        int vcpu = CpuTime.CurrentThreadId(); // vCPU 0 runs on the thread that calls Run
        var samples = new MarkSample[2];
        int marks = 0;
        bool stopping = false;
        Exception? failed = null;
        var monitor = new Thread(() =>
        {
            try
            {
                int deviceTid = 0;
                for (int k = 0; k < samples.Length; k++)
                {
                    mark.Read(); // a plain read(2); after the run a signal ends it
                    if (Volatile.Read(ref stopping)) return;
                    if (deviceTid == 0) deviceTid = m.Devices!.QueueThreadId(0, 0);
                    if (deviceTid == 0) throw new InvalidOperationException($"{deviceThread}, the device's queue thread, has not started");
                    samples[k] = Sample(m, vcpu, deviceTid);
                    marks = k + 1;
                    answer.Signal();
                }
            }
            catch (Exception e)
            {
                failed = e;
                m.RequestStop(new VcpuExit(StopReason.Error, $"reading the marks failed: {e.Message}"));
            }
        }) { Name = "bench-marks", IsBackground = true };
        monitor.Start();
        // Generous: a healthy run takes well under a millisecond per request on every engine.
        VcpuExit exit = m.Run(TimeSpan.FromSeconds(60) + TimeSpan.FromMilliseconds(count + warmup));
        Volatile.Write(ref stopping, true);
        mark.TrySignal();
        monitor.Join();
        if (failed != null) throw new InvalidOperationException($"reading the marks failed: {failed.Message}");
        string said = Said(console, reports);
        if (exit.Reason == StopReason.Timeout)
            throw new InvalidOperationException($"the vblkbench guest did not finish mode {mode} in time{said}");
        if (exit.Reason != StopReason.Shutdown || exit.GuestStatus != 0)
            throw new InvalidOperationException($"vblkbench guest, mode {mode}: {exit.Message}{said}");
        if (!m.Memory.TryRead32(Done, out uint done) || done != DoneMagic || marks != samples.Length)
            throw new InvalidOperationException($"{guestPath} is not the vblkbench guest, or it stopped before the end of its mode{said}");
        return Collect(m, mode, count, warmup, samples[1] - samples[0]);
    }

    private static string Said(MemoryStream console, StringWriter reports)
    {
        string text = (Encoding.UTF8.GetString(console.ToArray()) + reports).Trim();
        return text.Length == 0 ? "" : $" ({text.ReplaceLineEndings("; ")})";
    }

    private static MarkSample Sample(Machine m, int vcpu, int device)
    {
        long process = CpuTime.Process();
        if (!CpuTime.TryThread(vcpu, out long v) || !CpuTime.TryThread(device, out long d))
            throw new InvalidOperationException("the vCPU's or the device's thread is gone");
        long doorbells = m.Notifier.Delivered().FirstOrDefault(kv => kv.Key == Doorbell).Value;
        return new MarkSample(process, v, d, doorbells, m.Interrupts.Raised(DeviceLine));
    }

    private VirtioRun Collect(Machine m, VirtioGuestMode mode, int count, int warmup, MarkSample marked)
    {
        uint Read32(uint at) => m.Memory.TryRead32(at, out uint v) ? v : 0;
        long Read64(uint at) => m.Memory.TryRead64(at, out ulong v) ? (long)v : 0;
        bool qd1 = mode == VirtioGuestMode.Qd1;
        // Each array holds warm-up and timed results alike, the timed from index warmup on.
        int total = warmup + count;
        if (mode != VirtioGuestMode.Qd32 && !m.Memory.TryGetSpan(Results, total * (qd1 ? 4 : 1) * 4, out _))
            throw new InvalidOperationException("results outside guest RAM");
        LongHistogram Array(int k)
        {
            LongHistogram h = BenchReport.NewHistogram();
            if (m.Memory.TryGetSpan(Results + (uint)((k * total + warmup) * 4), count * 4, out Span<byte> b))
                foreach (uint ns in MemoryMarshal.Cast<byte, uint>(b)) h.RecordValue(ns);
            return h;
        }
        // The device's own count of what it served: the used ring's idx, which
        // only the device writes, past the block-0 read and the warm-up (mod
        // 2^16, as the ring counts; a round serves fewer than that).
        int served = 0;
        if (mode is VirtioGuestMode.Qd1 or VirtioGuestMode.Qd32 && m.Memory.TryRead16(Read32(UsedIdxAt), out ushort usedIdx))
            served = (ushort)(usedIdx - 1 - warmup);
        var run = new VirtioRun(mode, count,
            mode == VirtioGuestMode.Qd32 ? BenchReport.NewHistogram() : Array(0),
            qd1 ? Array(1) : null, qd1 ? Array(2) : null, qd1 ? Array(3) : null,
            Read64(End) - Read64(Start), (int)Read32(Completed), (int)Read32(StatusErrors), (int)Read32(Mismatches),
            (int)Read32(FullChecks), served, (int)Read32(MaxInFlight), Read32(EventIdx) != 0, marked);
        // Every doorbell the guest rang in the timed part went through the map.
        long expected = mode is VirtioGuestMode.DoorbellStore or VirtioGuestMode.DoorbellNotify ? count : mode is VirtioGuestMode.Bracket or VirtioGuestMode.DoorbellNoQueue ? 0 : -1;
        if (expected >= 0 && marked.Doorbells != expected)
            throw new InvalidOperationException($"mode {mode}: the doorbell counted {marked.Doorbells} of {expected} rings");
        return run;
    }

    /// <summary>
    /// The QD1 floor: this thread writes an eventfd; another, blocked in
    /// read(2) on it, wakes, reads a random 4 KiB block of the image and
    /// writes a second eventfd, on which this one blocks. Per iteration, the
    /// time from before the first write to after the wake.
    /// </summary>
    public HostRoundTrip RoundTrip(int count, int warmup, uint seed)
    {
        LongHistogram h = BenchReport.NewHistogram();
        using EventFd ping = EventFd.Create(), pong = EventFd.Create();
        long readerStart = 0, readerEnd = 0;
        Exception? failed = null;
        var reader = new Thread(() =>
        {
            try
            {
                using var buffer = new AlignedBuffer(BenchDisk.BlockBytes, BenchDisk.BlockBytes);
                var random = new GuestRandom(seed);
                for (int i = 0; i < warmup + count; i++)
                {
                    if (i == warmup) readerStart = CpuTime.CurrentThread();
                    ping.Read();
                    disk.ReadBlock(random.NextBlock(disk.Blocks), buffer.Span);
                    pong.Signal();
                }
                readerEnd = CpuTime.CurrentThread();
            }
            catch (Exception e)
            {
                failed = e;
                pong.TrySignal(1 << 20); // the waker's reads end
            }
        }) { Name = "bench-reader", IsBackground = true };
        reader.Start();
        long wakerStart = 0, processStart = 0;
        for (int i = 0; i < warmup + count && failed == null; i++)
        {
            if (i == warmup) (wakerStart, processStart) = (CpuTime.CurrentThread(), CpuTime.Process());
            long t0 = BenchReport.NowNs();
            ping.Signal();
            pong.Read();
            long t1 = BenchReport.NowNs();
            if (i >= warmup) h.RecordValue(t1 - t0);
        }
        long wakerEnd = CpuTime.CurrentThread(), processEnd = CpuTime.Process();
        reader.Join();
        if (failed != null) throw new InvalidOperationException($"the host round trip's reader failed: {failed.Message}");
        return new HostRoundTrip(h, processEnd - processStart, wakerEnd - wakerStart, readerEnd - readerStart);
    }

    /// <summary>The QD32 floor: this thread reads random 4 KiB blocks of the image, one after the other.</summary>
    public HostReadLoop ReadLoop(int count, int warmup, uint seed)
    {
        using var buffer = new AlignedBuffer(BenchDisk.BlockBytes, BenchDisk.BlockBytes);
        var random = new GuestRandom(seed);
        for (int i = 0; i < warmup; i++) disk.ReadBlock(random.NextBlock(disk.Blocks), buffer.Span);
        long cpu = CpuTime.CurrentThread(), t0 = BenchReport.NowNs();
        for (int i = 0; i < count; i++) disk.ReadBlock(random.NextBlock(disk.Blocks), buffer.Span);
        long t1 = BenchReport.NowNs();
        return new HostReadLoop(count, t1 - t0, CpuTime.CurrentThread() - cpu);
    }

    /// <summary>
    /// A doorbell floor: one eventfd write between two clock readings, to an
    /// eventfd another thread sleeps on exactly as a queue's thread does (one
    /// poll on it and a stop eventfd, then a read), with the doorbell rows'
    /// gap between writes so that it is asleep again each time.
    /// </summary>
    public LongHistogram WriteToSleeper(int count, int warmup)
    {
        LongHistogram h = BenchReport.NewHistogram();
        using EventFd fd = EventFd.Create(), stop = EventFd.Create(EventFdFlags.NonBlocking);
        using var set = new EventFdPollSet([fd.Handle, stop.Handle]);
        var sleeper = new Thread(() =>
        {
            while (true)
            {
                ulong ready = set.Wait(-1);
                if ((ready & 2) != 0) return;
                if ((ready & 1) != 0) set.TryRead(0, out _);
            }
        }) { Name = "bench-sleeper", IsBackground = true };
        sleeper.Start();
        try
        {
            for (int i = 0; i < warmup + count; i++)
            {
                if (i >= warmup) BenchReport.SpinFor(DoorbellGapNs, BenchReport.NowNs);
                long t0 = BenchReport.NowNs();
                bool written = fd.SignalRaw();
                long t1 = BenchReport.NowNs();
                if (!written) throw new InvalidOperationException("eventfd write failed");
                if (i >= warmup) h.RecordValue(t1 - t0);
            }
        }
        finally
        {
            stop.Signal();
            sleeper.Join();
        }
        return h;
    }
}
