using System.Runtime.InteropServices;
using HdrHistogram;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Native;
using Sharpvisor.Vmm.Loader;

namespace Sharpvisor.Vmm.Bench;

/// <summary>How the receiving thread waits for a notification.</summary>
public enum ReaderKind { Read, Epoll, BusyPoll }

/// <summary>
/// The measurements of <c>sharpvisor bench notify</c>, each one histogram of
/// nanoseconds. The floors run on plain threads; the rest run
/// guests/notifybench.c in an in-process <see cref="Machine"/>.
/// </summary>
/// <remarks>
/// One clock for both sides of a one-way figure: the guest's rdtsc is
/// <see cref="ExecutionEngine.ReadTsc"/>, nanoseconds of the monotonic
/// Stopwatch since the engine was made, and the host's reader reads the very
/// same function after it wakes. The guest stores its send time in RAM before
/// the notify; the hypercall's eventfd write is a full barrier, so the reader
/// sees it. Between sends both senders (guest and floor thread) spin for a
/// gap, so that the reader is back asleep when the next one comes.
/// </remarks>
internal sealed class NotifyMeasurements(string guestPath, int iterations, int gapNs, CancellationToken cancel)
{
    /// <summary>Samples each measurement takes.</summary>
    public int Iterations => iterations;

    // The parameter block and results of guests/notifybench.c.
    private const uint Params = 0x8000, Send = Params + 0x10, Ack = Params + 0x18, Results = 0x1000000;
    private const uint Start = Params + 0x20, End = Params + 0x28, DeliveredAt = Params + 0x30, Done = Params + 0x34, Chunk = Params + 0x38;
    private const uint DoneMagic = 0x600d;
    private const uint Value = 0x10;
    private const int PongIrq = 5;
    private const ulong RamSize = 64ul << 20;

    private static LongHistogram NewHistogram() => BenchReport.NewHistogram();

    private static long NowNs() => BenchReport.NowNs();

    private static void SpinFor(long ns, Func<long> now) => BenchReport.SpinFor(ns, now);

    private static EventFd ReaderFd(ReaderKind kind) =>
        EventFd.Create(kind == ReaderKind.BusyPoll ? EventFdFlags.NonBlocking : EventFdFlags.None);

    /// <summary>The receiving side of a one-way run: wait, read the clock, record, acknowledge.</summary>
    private static void Receive(ReaderKind kind, EventFd fd, Func<long> now, Func<long> sendTime, Action<int> ack, LongHistogram h, int count, CancellationToken cancel)
    {
        using Epoll? epoll = kind == ReaderKind.Epoll ? new Epoll() : null;
        epoll?.Add(fd.Handle, 1);
        Span<EpollReady> ready = stackalloc EpollReady[1];
        for (int i = 0; i < count; i++)
        {
            switch (kind)
            {
                case ReaderKind.Read:
                    // A plain read(2), as the row's name says, in the floor and the
                    // guest rows alike. Read(token) would poll first and, with a
                    // cancellable token, register a callback: work after the
                    // wakeup and before the clock, and only where cancellable.
                    // Whoever cancels signals the eventfd to end the read.
                    fd.Read();
                    cancel.ThrowIfCancellationRequested();
                    break;
                case ReaderKind.Epoll:
                    while (epoll!.Wait(ready, 100) == 0) cancel.ThrowIfCancellationRequested();
                    break;
                case ReaderKind.BusyPoll:
                    while (!fd.TryRead(out _)) cancel.ThrowIfCancellationRequested();
                    break;
            }
            long t = now();
            if (kind == ReaderKind.Epoll) fd.Read(cancel); // the count, after the clock
            h.RecordValue(Math.Max(0, t - sendTime()));
            ack(i + 1);
        }
    }

    /// <summary>The floor, one way: a thread stores a timestamp and writes an eventfd; another waits and subtracts.</summary>
    public LongHistogram RawOneWay(ReaderKind kind)
    {
        var h = NewHistogram();
        using EventFd fd = ReaderFd(kind);
        long sent = 0;
        int acked = 0;
        var sender = new Thread(() =>
        {
            for (int i = 0; i < iterations && !cancel.IsCancellationRequested; i++)
            {
                SpinFor(gapNs, NowNs);
                Volatile.Write(ref sent, NowNs());
                fd.Signal();
                while (Volatile.Read(ref acked) != i + 1 && !cancel.IsCancellationRequested) Thread.SpinWait(1);
            }
        }) { Name = "bench-sender", IsBackground = true };
        sender.Start();
        Receive(kind, fd, NowNs, () => Volatile.Read(ref sent), i => Volatile.Write(ref acked, i), h, iterations, cancel);
        sender.Join();
        return h;
    }

    /// <summary>The floor, round trip: write A, block in read on B; the other thread reads A and writes B.</summary>
    public LongHistogram RawRoundTrip()
    {
        var h = NewHistogram();
        using EventFd ping = EventFd.Create(), pong = EventFd.Create();
        var responder = new Thread(() =>
        {
            try
            {
                for (int i = 0; i < iterations; i++) { ping.Read(); pong.Signal(); } // plain read(2), as in the guest row
            }
            catch (OperationCanceledException) { }
        }) { Name = "bench-responder", IsBackground = true };
        responder.Start();
        for (int i = 0; i < iterations; i++)
        {
            SpinFor(gapNs, NowNs);
            long t0 = NowNs();
            ping.Signal();
            pong.Read();
            h.RecordValue(NowNs() - t0);
        }
        responder.Join();
        return h;
    }

    /// <summary>
    /// The baseline of the vCPU-side cost: one bare eventfd write, between two
    /// clock readings; the very P/Invoke the notify path makes, on the raw
    /// descriptor number, so that nothing but the hypercall and the lookup
    /// separates the two.
    /// </summary>
    public LongHistogram BareWrite()
    {
        var h = NewHistogram();
        using EventFd fd = EventFd.Create();
        for (int i = 0; i < iterations; i++)
        {
            long t0 = NowNs();
            bool written = fd.SignalRaw();
            h.RecordValue(NowNs() - t0);
            if (!written) throw new InvalidOperationException("bare eventfd write failed");
        }
        return h;
    }

    /// <summary>The clock alone: two readings back to back, on a host thread.</summary>
    public LongHistogram HostBracket()
    {
        var h = NewHistogram();
        for (int i = 0; i < iterations; i++)
        {
            long t0 = NowNs();
            h.RecordValue(NowNs() - t0);
        }
        return h;
    }

    /// <summary>One way through the VM: guest notify to a host thread waiting as <paramref name="kind"/> says.</summary>
    public LongHistogram GuestOneWay(ReaderKind kind)
    {
        var h = NewHistogram();
        using EventFd fd = ReaderFd(kind);
        using Machine m = NewMachine(mode: 1, Value);
        m.Notifier.Attach(Value, fd);
        Exception? failed = null;
        // The guest ends only after the last acknowledgement, so cancelling
        // the reader once the VM has stopped cuts nothing short; it frees the
        // reader when the guest stopped early.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var reader = new Thread(() =>
        {
            try
            {
                Receive(kind, fd, () => (long)m.Engine.ReadTsc(), () => Read64(m, Send), i => m.Memory.TryWrite32(Ack, (uint)i), h, iterations, stop.Token);
            }
            catch (Exception e) { failed = e; }
        }) { Name = "bench-reader", IsBackground = true };
        reader.Start();
        RunGuest(m, () => { stop.Cancel(); fd.TrySignal(); reader.Join(); });
        if (failed is not null and not OperationCanceledException) throw failed;
        return h;
    }

    /// <summary>
    /// One way through the VM to another process: <c>sharpvisor bench
    /// notify-peer</c>, started with the notify eventfd as descriptor 3 and an
    /// answer eventfd as 4, reads 3, reads CLOCK_MONOTONIC (Stopwatch, the
    /// clock of every process) and writes that time to 4. A thread here maps
    /// it onto the guest's clock and acknowledges to the guest.
    /// </summary>
    public LongHistogram GuestOtherProcess(string launcher)
    {
        var h = NewHistogram();
        using EventFd fd = EventFd.Create(), answer = EventFd.Create();
        using Machine m = NewMachine(mode: 1, Value);
        m.Notifier.Attach(Value, fd);
        // The guest's clock is the Stopwatch's minus the engine's origin: one
        // constant, read here to within the two calls' distance (~30 ns).
        long origin = NowNs() - (long)m.Engine.ReadTsc();
        using ChildProcess peer = ChildProcess.Spawn(launcher, [launcher, "bench", "notify-peer", "--iterations", iterations.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            null, [fd.Handle, answer.Handle]);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        Exception? failed = null;
        var reader = new Thread(() =>
        {
            try
            {
                for (int i = 0; i < iterations; i++)
                {
                    long woke = (long)answer.Read(stop.Token) - origin;
                    h.RecordValue(Math.Max(0, woke - Read64(m, Send)));
                    m.Memory.TryWrite32(Ack, (uint)(i + 1));
                }
            }
            catch (Exception e) { failed = e; }
        }) { Name = "bench-peer-answers", IsBackground = true };
        reader.Start();
        RunGuest(m, () => { stop.Cancel(); reader.Join(); peer.Stop(TimeSpan.FromSeconds(1)); });
        if (failed is not null and not OperationCanceledException) throw failed;
        return h;
    }

    /// <summary>The other process of <see cref="GuestOtherProcess"/>: answers each notification on 3 with its wake time on 4.</summary>
    public static int Peer(int iterations)
    {
        using EventFd notified = EventFd.FromInherited(3), answer = EventFd.FromInherited(4);
        for (int i = 0; i < iterations; i++)
        {
            notified.Read();
            answer.Signal((ulong)NowNs());
        }
        return 0;
    }

    /// <summary>A program that runs this launcher: this executable, or the apphost beside sharpvisor.dll; null if neither.</summary>
    public static string? Launcher()
    {
        string? process = Environment.ProcessPath;
        if (process is not null && Path.GetFileName(process) is "sharpvisor" or "sharpvisor-jit") return process;
        string apphost = Path.Combine(AppContext.BaseDirectory, "sharpvisor");
        return ProgramPath.IsExecutableFile(apphost) ? apphost : null;
    }

    /// <summary>Round trip through the VM: guest notify, a host thread answers with an interrupt, the guest wakes from LHCALL_HALT.</summary>
    public LongHistogram GuestRoundTrip()
    {
        using EventFd ping = EventFd.Create(), pong = EventFd.Create();
        using Machine m = NewMachine(mode: 2, Value);
        m.Notifier.Attach(Value, ping);
        m.Interrupts.Attach(PongIrq, pong);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var responder = new Thread(() =>
        {
            try
            {
                // A plain read(2), as the floor's responder; ended by a signal after the cancel.
                for (int i = 0; i < iterations; i++)
                {
                    ping.Read();
                    stop.Token.ThrowIfCancellationRequested();
                    pong.Signal();
                }
            }
            catch (OperationCanceledException) { }
        }) { Name = "bench-responder", IsBackground = true };
        responder.Start();
        RunGuest(m, () => { stop.Cancel(); ping.TrySignal(); responder.Join(); });
        return GuestResults(m);
    }

    /// <summary>
    /// The vCPU-side cost of a notify (hypercall, map lookup, eventfd write)
    /// with <paramref name="attached"/> values attached, the one notified
    /// attached last (so a scan sees every entry); or, with 0, the guest's two
    /// rdtsc alone.
    /// </summary>
    public LongHistogram GuestNotifyCost(int attached)
    {
        using EventFd fd = EventFd.Create();
        uint notified = Value + (uint)Math.Max(0, attached - 1);
        using Machine m = NewMachine(mode: attached == 0 ? 4u : 3u, notified);
        for (uint v = 0; v < attached; v++) m.Notifier.Attach(Value + v, fd);
        RunGuest(m, () => { });
        // The guest keeps no result inside its bracket: the count says whether every notify arrived.
        ulong expected = attached == 0 ? 0 : (ulong)iterations;
        ulong counted = fd.TryRead(out ulong n) ? n : 0;
        if (counted != expected)
            throw new InvalidOperationException($"notify cost: the eventfd counted {counted} of {expected} notifications");
        return GuestResults(m);
    }

    /// <summary>
    /// One vCPU notifies <paramref name="count"/> times back to back, timing
    /// each chunk of <paramref name="chunk"/>, while a host thread alternates
    /// phases of <paramref name="phaseNs"/>: quiet (asleep), then attaching
    /// and detaching other values as fast as it can, and so on. Also whether
    /// every notification arrived: the eventfd's count against what the guest
    /// saw delivered and what the notifier counted.
    /// </summary>
    /// <remarks>
    /// Alternating within one run, rather than comparing a quiet run with a
    /// churned one, puts both kinds of chunk in the same seconds of a shared
    /// machine, whose speed drifts by more than the 5% asked for.
    /// </remarks>
    public ChurnRun Churn(int count, int chunk, long phaseNs)
    {
        using EventFd fd = EventFd.Create(EventFdFlags.NonBlocking), other = EventFd.Create();
        using Machine m = NewMachine(mode: 5, Value, count);
        m.Memory.TryWrite32(Chunk, (uint)chunk);
        m.Notifier.Attach(Value, fd);
        var phases = new List<ChurnPhase>();
        long updates = 0;
        using var done = new ManualResetEventSlim();
        var churner = new Thread(() =>
        {
            uint k = 0;
            for (bool busy = false; !done.IsSet; busy = !busy)
            {
                long from = (long)m.Engine.ReadTsc(), until = from + phaseNs;
                if (!busy) done.Wait(TimeSpan.FromTicks(phaseNs / 100));
                else
                {
                    while ((long)m.Engine.ReadTsc() < until && !done.IsSet)
                    {
                        uint v = 0x1000 + (k++ % 8);
                        m.Notifier.Attach(v, other);
                        m.Notifier.Detach(v);
                        updates += 2;
                    }
                }
                phases.Add(new ChurnPhase(from, (long)m.Engine.ReadTsc(), busy));
            }
        }) { Name = "bench-churn", IsBackground = true };
        churner.Start();
        RunGuest(m, () => { done.Set(); churner.Join(); });

        if (!m.Memory.TryGetSpan(Results, (count / chunk + 1) * 8, out Span<byte> bytes))
            throw new InvalidOperationException("results outside guest RAM");
        long[] stamps = [.. MemoryMarshal.Cast<byte, long>(bytes)];
        m.Memory.TryRead32(DeliveredAt, out uint delivered);
        long received = fd.TryRead(out ulong n) ? (long)n : 0;
        long counted = m.Notifier.Delivered().Single(kv => kv.Key == Value).Value;
        long lost = count - Math.Min(delivered, Math.Min(received, counted));
        return new ChurnRun(count, chunk, stamps, phases, updates, lost);
    }

    private Machine NewMachine(uint mode, uint value) => NewMachine(mode, value, iterations);

    private Machine NewMachine(uint mode, uint value, int count)
    {
        GuestImage image = ImageLoader.Read(guestPath, RamSize, null);
        var m = new Machine(new MachineConfig(RamSize, Engines.Default), image, Stream.Null);
        m.Memory.TryWrite32(Params, mode);
        m.Memory.TryWrite32(Params + 4, (uint)count);
        m.Memory.TryWrite32(Params + 8, value);
        m.Memory.TryWrite32(Params + 12, (uint)gapNs);
        return m;
    }

    private void RunGuest(Machine m, Action after)
    {
        using CancellationTokenRegistration r = cancel.Register(() => m.RequestStop(new VcpuExit(StopReason.Signal, "bench cancelled")));
        VcpuExit exit = m.Run();
        after();
        cancel.ThrowIfCancellationRequested();
        if (exit.Reason != StopReason.Shutdown || exit.GuestStatus != 0)
            throw new InvalidOperationException($"notifybench guest: {exit.Message}");
        // Any other image that shuts down with 0 would leave empty histograms.
        if (!m.Memory.TryRead32(Done, out uint done) || done != DoneMagic)
            throw new InvalidOperationException($"{guestPath} is not the notifybench guest, or it stopped before the end of its mode");
    }

    private static long Read64(Machine m, uint address) => m.Memory.TryRead64(address, out ulong v) ? (long)v : 0;

    private LongHistogram GuestResults(Machine m)
    {
        var h = NewHistogram();
        if (!m.Memory.TryGetSpan(Results, iterations * 4, out Span<byte> bytes))
            throw new InvalidOperationException("results outside guest RAM");
        foreach (uint ns in MemoryMarshal.Cast<byte, uint>(bytes)) h.RecordValue(ns);
        return h;
    }
}

/// <summary>A phase of the churn thread, on the guest's clock: asleep, or attaching and detaching.</summary>
internal readonly record struct ChurnPhase(long From, long To, bool Busy);

/// <summary>
/// One churn run: the guest's clock before the first chunk and after each,
/// the churn thread's phases, the map updates it made, and notifications lost
/// (sent, less the least of the guest's, the eventfd's and the notifier's counts).
/// </summary>
internal sealed record ChurnRun(int Sent, int Chunk, long[] Stamps, IReadOnlyList<ChurnPhase> Phases, long Updates, long Lost)
{
    /// <summary>
    /// Chunk rates (notifies per second) of the chunks that lie wholly inside
    /// a phase of the given kind, at least <paramref name="settleNs"/> after
    /// it began (the reclaimer finishes the last busy phase's work early in a
    /// quiet one).
    /// </summary>
    public List<double> Rates(bool busy, long settleNs)
    {
        var rates = new List<double>();
        for (int c = 0; c + 1 < Stamps.Length; c++)
        {
            long s = Stamps[c], e = Stamps[c + 1];
            if (e <= s) continue;
            foreach (ChurnPhase p in Phases)
            {
                if (p.Busy == busy && s >= p.From + settleNs && e <= p.To)
                {
                    rates.Add(Chunk * 1e9 / (e - s));
                    break;
                }
            }
        }
        return rates;
    }
}
