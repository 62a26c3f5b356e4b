using System.Globalization;
using System.Runtime.InteropServices;
using Sharpvisor.Native;

namespace Sharpvisor.Vmm.Listen;

/// <summary>
/// <c>sharpvisor listen</c>: a consumer of eventfds for shell users. It takes
/// the descriptors of the <c>sd_listen_fds</c> handshake (what an
/// <c>exec:</c> target's child gets), waits on all of them at once, and
/// prints one line per wakeup: <c>&lt;realtime seconds.micros&gt; &lt;name&gt; &lt;count&gt;</c>,
/// flushed per line so it can be piped on. With <c>--answer NAME=NAME2</c>
/// it also writes each count read from NAME to NAME2, which is how one shared
/// exec child answers a guest's notifications with interrupts.
/// </summary>
/// <remarks>
/// <para>
/// The descriptors are shared with the launcher: the same open file
/// descriptions, so their flags are too. O_NONBLOCK is never set (the
/// launcher reads interrupt eventfds and must find them as it made them).
/// A read is made only after epoll says the counter is nonzero, and for a
/// notify eventfd this process is the only reader, so that read never
/// blocks. An --answer destination is written, not watched: reading it
/// would take the interrupts the VM is waiting for.
/// </para>
/// <para>
/// An eventfd never hangs up, so listen runs until it is told to stop:
/// SIGTERM (which the launcher sends when the VM ends) or SIGINT. Then it
/// reads and prints what is still pending, without answering, and exits 0:
/// being told to stop is how it normally ends. <c>--exit-after N</c> ends
/// it, also with 0, once the counts read add up to N.
/// </para>
/// </remarks>
public static class Listener
{
    private const ulong StopToken = ulong.MaxValue;

    /// <summary>Takes this process's descriptors from the handshake in its environment and runs.</summary>
    public static int Execute(IReadOnlyList<string> answers, ulong? exitAfter, TextWriter output, TextWriter stderr, bool handleSignals)
    {
        if (!ListenFds.TryParse(Environment.GetEnvironmentVariable, Environment.ProcessId, out ListenedFd[] fds, out string error))
            return Fail(stderr, ExitStatus.Usage, error);
        return Run(fds, answers, exitAfter, output, stderr, handleSignals);
    }

    /// <summary>
    /// <c>listen --unix PATH</c>: listens on the Unix socket at PATH (mode
    /// 0600, removed at exit) for the eventfds of <c>unix:PATH</c> targets,
    /// takes <paramref name="expect"/> of them (named <c>notify-0x10</c>,
    /// <c>irq-5</c> by the line each came with), then runs as with the
    /// handshake. A connection that brings anything else is reported in one
    /// line and the next one is served. SIGTERM or SIGINT while waiting for
    /// them ends it with 0, like any other stop.
    /// </summary>
    public static int ExecuteUnix(string path, int expect, IReadOnlyList<string> answers, ulong? exitAfter,
        TextWriter output, TextWriter stderr, bool handleSignals)
    {
        UnixFdReceiver receiver;
        try
        {
            receiver = UnixFdReceiver.Listen(path);
        }
        catch (ErrnoException e)
        {
            return Fail(stderr, ExitStatus.Unavailable, $"--unix {path}: {e.Message}");
        }
        var received = new List<ReceivedEventFd>();
        using var stopping = new CancellationTokenSource();
        using PosixSignalRegistration? sigterm = handleSignals ? PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stopping.Cancel(); }) : null;
        using PosixSignalRegistration? sigint = handleSignals ? PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stopping.Cancel(); }) : null;
        try
        {
            using (receiver)
            {
                while (received.Count < expect)
                {
                    try
                    {
                        received.Add(receiver.Receive(stopping.Token));
                    }
                    catch (InvalidDataException e)
                    {
                        stderr.WriteLine($"sharpvisor listen: {e.Message}");
                    }
                }
            }
            if (received.Select(r => r.Name).Distinct(StringComparer.Ordinal).Count() != received.Count)
                return Fail(stderr, ExitStatus.Usage, $"--unix {path}: one name came twice ({string.Join(", ", received.Select(r => r.Name))})");
            var fds = received.Select(r => new ListenedFd(r.EventFd.Handle.Fd, r.Name)).ToList();
            // The signal handlers above are dropped first: Run installs its own.
            sigterm?.Dispose();
            sigint?.Dispose();
            return Run(fds, answers, exitAfter, output, stderr, handleSignals);
        }
        catch (OperationCanceledException)
        {
            return 0; // told to stop before every eventfd came
        }
        finally
        {
            foreach (ReceivedEventFd r in received) r.Dispose();
        }
    }

    /// <summary>
    /// Waits on <paramref name="fds"/> (used through duplicates: the numbers
    /// stay open) until a signal, <paramref name="exitAfter"/>, or
    /// <paramref name="cancel"/>. Returns the exit status: 0, 64 for a bad
    /// --answer, 69 for a descriptor that is not an open eventfd.
    /// </summary>
    public static int Run(IReadOnlyList<ListenedFd> fds, IReadOnlyList<string> answers, ulong? exitAfter,
        TextWriter output, TextWriter stderr, bool handleSignals, CancellationToken cancel = default)
    {
        // --answer NAME=NAME2: index of NAME -> index of NAME2.
        var answerOf = new Dictionary<int, int>();
        foreach (string answer in answers)
        {
            int eq = answer.IndexOf('=');
            int from = eq < 0 ? -1 : IndexOf(fds, answer[..eq]);
            int to = eq < 0 ? -1 : IndexOf(fds, answer[(eq + 1)..]);
            if (from < 0 || to < 0 || from == to)
                return Fail(stderr, ExitStatus.Usage, $"--answer '{answer}' must be NAME=NAME2, two different names of {Names(fds)}");
            if (!answerOf.TryAdd(from, to))
                return Fail(stderr, ExitStatus.Usage, $"--answer {fds[from].Name} is given twice");
        }
        var watched = Enumerable.Range(0, fds.Count).Where(i => !answerOf.ContainsValue(i)).ToList();
        if (watched.Count == 0)
            return Fail(stderr, ExitStatus.Usage, "nothing to watch: every descriptor is an --answer destination");

        var events = new EventFd?[fds.Count];
        try
        {
            for (int i = 0; i < fds.Count; i++)
            {
                try
                {
                    events[i] = EventFd.DuplicateFrom(fds[i].Fd);
                }
                catch (ErrnoException e)
                {
                    string why = e.Message.StartsWith(e.Operation + ": ", StringComparison.Ordinal) ? e.Message[(e.Operation.Length + 2)..] : e.Message;
                    return Fail(stderr, ExitStatus.Unavailable, $"descriptor {fds[i].Fd} ({fds[i].Name}): {why}");
                }
            }

            using var stop = EventFd.Create(EventFdFlags.NonBlocking);
            using var epoll = new Epoll();
            epoll.Add(stop.Handle, StopToken);
            foreach (int i in watched) epoll.Add(events[i]!.Handle, (ulong)i);
            using PosixSignalRegistration? sigterm = handleSignals ? StopOn(PosixSignal.SIGTERM, stop) : null;
            using PosixSignalRegistration? sigint = handleSignals ? StopOn(PosixSignal.SIGINT, stop) : null;
            using CancellationTokenRegistration cancelled = cancel.UnsafeRegister(static s => ((EventFd)s!).TrySignal(), stop);

            Span<EpollReady> ready = stackalloc EpollReady[16];
            ulong total = 0;
            while (true)
            {
                int n = epoll.Wait(ready, -1);
                bool stopping = false;
                for (int k = 0; k < n; k++)
                {
                    if (ready[k].Token == StopToken)
                    {
                        stopping = true;
                        continue;
                    }
                    int i = (int)ready[k].Token;
                    if (!Take(i, answer: true)) return 0;
                    if (exitAfter is ulong limit && total >= limit) return 0;
                }
                if (stopping)
                {
                    // What arrived before the stop still counts: the VM has
                    // ended, so nothing is answered, only printed.
                    foreach (int i in watched)
                        if (!Take(i, answer: false)) return 0;
                    return 0;
                }
            }

            // Reads descriptor i if its counter is nonzero: answer first (a
            // waiting guest should not wait for our printing), then one line.
            // False once stdout is gone (a closed pipe): nobody is listening.
            bool Take(int i, bool answer)
            {
                if (!events[i]!.TryRead(out ulong count)) return true;
                if (answer && answerOf.TryGetValue(i, out int to)) events[to]!.Signal(count);
                total += count;
                try
                {
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{Timestamp()} {fds[i].Name} {count}"));
                    return true;
                }
                catch (IOException)
                {
                    return false;
                }
            }
        }
        finally
        {
            foreach (EventFd? e in events) e?.Dispose();
        }
    }

    /// <summary>Wall-clock time as Unix seconds with six decimals (<c>1764531234.123456</c>), for lining up with other logs.</summary>
    internal static string Timestamp()
    {
        long micros = (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / 10;
        return string.Create(CultureInfo.InvariantCulture, $"{micros / 1_000_000}.{micros % 1_000_000:D6}");
    }

    private static PosixSignalRegistration StopOn(PosixSignal signal, EventFd stop) =>
        PosixSignalRegistration.Create(signal, context =>
        {
            context.Cancel = true; // we exit ourselves, after printing what is pending
            stop.TrySignal();
        });

    private static int IndexOf(IReadOnlyList<ListenedFd> fds, string name)
    {
        for (int i = 0; i < fds.Count; i++)
            if (fds[i].Name == name) return i;
        return -1;
    }

    private static string Names(IReadOnlyList<ListenedFd> fds) => string.Join(", ", fds.Select(f => f.Name));

    private static int Fail(TextWriter stderr, ExitStatus status, string message)
    {
        stderr.WriteLine($"sharpvisor: listen: {message.ReplaceLineEndings(" ")}");
        return (int)status;
    }
}
