using System.Globalization;
using System.Text;
using Sharpvisor.Native;
using Sharpvisor.Vmm.Interrupts;
using Sharpvisor.Vmm.Notify;

namespace Sharpvisor.Vmm.Control;

// Journey: control
/// <summary>
/// <c>--control PATH</c>: a Unix socket (mode 0600, removed at exit) on
/// which another process of the same user attaches and detaches
/// notification values and interrupt lines while the VM runs, handing over
/// each eventfd with SCM_RIGHTS. One text line per request, one per reply; the protocol is in
/// docs/control-socket.md.
/// </summary>
/// <remarks>
/// The server is one thread, not a vCPU: in RCU terms it is an updater, and
/// the map's updates never wait for the vCPUs (deferred reclaim), so a
/// request is answered at once however busy the guest is. An interrupt
/// line attached or detached kicks every vCPU, so a halted one rebuilds its
/// poll set (see <see cref="InterruptController.Attach"/>). It serves one
/// connection at a time; the next one waits in the listen backlog. Nothing a
/// client sends can stop the VM or this thread: a bad request gets an
/// <c>error</c> line, binary bytes or an overlong line also close the
/// connection, and every descriptor received is closed on every path.
/// </remarks>
public sealed class ControlServer : IDisposable
{
    /// <summary>The longest request line, newline included; a longer one closes the connection.</summary>
    public const int MaxLineLength = 256;

    private readonly UnixSocket _listener;
    private readonly Notifier _notifier;
    private readonly InterruptController _interrupts;
    private readonly uint _uid;
    private readonly CancellationTokenSource _stop = new();
    private Thread? _thread;
    private readonly Dictionary<int, EventFd> _irqFds = []; // the irq eventfds attached here; the control thread's alone
    private int _disposed;

    private ControlServer(UnixSocket listener, Notifier notifier, InterruptController interrupts)
    {
        _listener = listener;
        _notifier = notifier;
        _interrupts = interrupts;
        _uid = UnixSocket.CurrentUid;
    }

    /// <summary>Listens on <paramref name="path"/> (mode 0600); <see cref="Start"/> serves it.</summary>
    /// <exception cref="ErrnoException">From bind or listen: EADDRINUSE, EACCES, ENOENT...</exception>
    public static ControlServer Listen(string path, Notifier notifier, InterruptController interrupts) =>
        new(UnixSocket.Listen(path), notifier, interrupts);

    /// <summary>The socket's path.</summary>
    public string Path => _listener.Path!;

    /// <summary>Starts the control thread.</summary>
    public void Start()
    {
        _thread = new Thread(Serve) { Name = "control", IsBackground = true };
        _thread.Start();
    }

    private void Serve()
    {
        CancellationToken stop = _stop.Token;
        try
        {
            while (true)
            {
                _listener.WaitReadable(Timeout.InfiniteTimeSpan, stop);
                using UnixSocket connection = _listener.Accept();
                try
                {
                    ServeConnection(connection, stop);
                }
                catch (ErrnoException)
                {
                    // The client went away mid-request (EPIPE, ECONNRESET):
                    // its connection ends, the server carries on.
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception)
        {
            // Our bug or the host's trouble (EMFILE on accept): the control
            // socket stops answering, and the VM runs on regardless.
        }
    }

    private void ServeConnection(UnixSocket connection, CancellationToken stop)
    {
        PeerCredentials peer = connection.PeerCredentials();
        if (peer.Uid != _uid)
        {
            Reply(connection, $"error permission denied: uid {peer.Uid} is not this VM's user (uid {_uid})");
            return;
        }
        var buffer = new byte[MaxLineLength];
        int length = 0;
        var fds = new List<SafeFdHandle>();
        try
        {
            while (true)
            {
                int newline = Array.IndexOf(buffer, (byte)'\n', 0, length);
                if (newline < 0)
                {
                    if (length == buffer.Length)
                    {
                        Refuse(connection, $"error a request line has at most {MaxLineLength} bytes, newline included; closing");
                        return;
                    }
                    connection.WaitReadable(Timeout.InfiniteTimeSpan, stop);
                    int n;
                    try
                    {
                        n = connection.ReceiveWithDescriptors(buffer.AsSpan(length), out SafeFdHandle[] more);
                        fds.AddRange(more);
                    }
                    catch (ErrnoException e) when (e.Errno == Errno.EMSGSIZE)
                    {
                        Refuse(connection, "error too many descriptors in one message (all were closed); closing");
                        return;
                    }
                    if (n == 0) return; // the client closed
                    length += n;
                    continue;
                }
                ReadOnlySpan<byte> line = buffer.AsSpan(0, newline);
                if (line.EndsWith("\r"u8)) line = line[..^1];
                if (!IsText(line))
                {
                    Refuse(connection, "error binary data in a request; closing");
                    return;
                }
                // The descriptors that came so far go with this line; whatever it does not take is closed.
                string reply = Handle(Encoding.ASCII.GetString(line), fds);
                foreach (SafeFdHandle fd in fds) fd.Dispose();
                fds.Clear();
                Reply(connection, reply);
                length -= newline + 1;
                buffer.AsSpan(newline + 1, length).CopyTo(buffer);
            }
        }
        finally
        {
            foreach (SafeFdHandle fd in fds) fd.Dispose();
        }
    }

    private static bool IsText(ReadOnlySpan<byte> line)
    {
        foreach (byte b in line)
            if (b is < 0x20 and not (byte)'\t' or >= 0x7f) return false;
        return true;
    }

    /// <summary>
    /// The last reply on a connection that is closed after it. What the client
    /// sent and we did not read is read first (descriptors closed): a close
    /// with unread data is a reset for the client, which could lose the reply.
    /// </summary>
    private static void Refuse(UnixSocket connection, string line)
    {
        Reply(connection, line);
        var discard = new byte[4096];
        for (int i = 0; i < 64 && connection.WaitReadable(TimeSpan.Zero); i++)
        {
            int n = connection.ReceiveWithDescriptors(discard, out SafeFdHandle[] fds);
            foreach (SafeFdHandle fd in fds) fd.Dispose();
            if (n == 0) break;
        }
    }

    private static void Reply(UnixSocket connection, string line) =>
        connection.SendWithDescriptors(Encoding.ASCII.GetBytes(line + "\n"), []);

    /// <summary>One request, one reply line (without its newline). The caller closes <paramref name="fds"/>.</summary>
    internal string Handle(string request, IReadOnlyList<SafeFdHandle> fds)
    {
        string[] words = request.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        switch (words)
        {
            case []:
                return "error an empty request; expected attach, detach or list";
            case ["list"]:
                return List();
            case ["list", ..]:
                return "error list takes no arguments";
            case ["attach" or "detach", "notify", string value]:
                if (!TryParseValue(value, out uint v, out string error)) return $"error {error}";
                return words[0] == "attach" ? AttachNotify(v, fds) : DetachNotify(v, fds);
            case ["attach" or "detach", "irq", string line]:
                if (!TryParseLine(line, out int n, out string irqError)) return $"error {irqError}";
                return words[0] == "attach" ? AttachIrq(n, fds) : DetachIrq(n, fds);
            case ["attach" or "detach", "notify" or "irq"]:
                return $"error {words[0]} {words[1]} needs a {(words[1] == "notify" ? "value" : "line number")}";
            case ["attach" or "detach", "notify" or "irq", ..]:
                return $"error too many words: {words[0]} {words[1]} takes one argument";
            case ["attach" or "detach", ..]:
                return $"error {words[0]} what? expected '{words[0]} notify VALUE' or '{words[0]} irq N'";
            default:
                return $"error unknown request '{Shown(words[0])}'; expected attach, detach or list";
        }
    }

    /// <summary>
    /// The one eventfd an attach must come with, as our own duplicate; or the
    /// error reply when there is not exactly one, or it is no eventfd.
    /// </summary>
    private static string? TakeEventFd(string request, IReadOnlyList<SafeFdHandle> fds, out EventFd eventFd)
    {
        eventFd = null!;
        if (fds.Count != 1)
            return $"error {request} needs exactly one eventfd sent with it (SCM_RIGHTS), not {fds.Count}";
        try
        {
            // The duplicate is checked, not the number we were given.
            eventFd = EventFd.DuplicateFrom(fds[0].Fd);
            return null;
        }
        catch (ErrnoException e) when (e.Errno == Errno.EINVAL)
        {
            return $"error the descriptor sent is {FdKind(fds[0])}, not an eventfd";
        }
    }

    private string AttachNotify(uint value, IReadOnlyList<SafeFdHandle> fds)
    {
        if (TakeEventFd($"attach notify {Notifier.Name(value)}", fds, out EventFd eventFd) is string error)
            return error;
        using (eventFd)
        {
            try
            {
                _notifier.Attach(value, eventFd); // checked by TakeEventFd; the map keeps its own duplicate
            }
            catch (ErrnoException e) when (e.Errno == Errno.EEXIST)
            {
                return $"error {Notifier.Name(value)} is already attached";
            }
            catch (ErrnoException e) when (e.Errno == Errno.ENOSPC)
            {
                return $"error the map is full ({EventfdMap.MaxEntries} values)";
            }
        }
        return "ok";
    }

    private string AttachIrq(int line, IReadOnlyList<SafeFdHandle> fds)
    {
        if (TakeEventFd($"attach irq {line}", fds, out EventFd eventFd) is string error)
            return error;
        try
        {
            _interrupts.Attach(line, eventFd); // the controller waits on our duplicate; we close it after the detach
        }
        catch (InvalidOperationException)
        {
            eventFd.Dispose();
            return $"error interrupt {line} is already attached";
        }
        _irqFds[line] = eventFd;
        return "ok";
    }

    private string DetachIrq(int line, IReadOnlyList<SafeFdHandle> fds)
    {
        if (fds.Count != 0)
            return $"error detach irq {line} takes no descriptor; {fds.Count} came, and were closed";
        // Any line, also one given with --irq (whose owner closes it at exit),
        // but a device's: the device is part of the machine.
        if (_interrupts.IsDeviceLine(line)) return $"error interrupt {line} is a device's";
        if (!_interrupts.Detach(line)) return $"error interrupt {line} is not attached";
        if (_irqFds.Remove(line, out EventFd? ours)) ours.Dispose(); // a vCPU's poll set may keep it open a little longer
        return "ok";
    }

    private string DetachNotify(uint value, IReadOnlyList<SafeFdHandle> fds)
    {
        if (fds.Count != 0)
            return $"error detach notify {Notifier.Name(value)} takes no descriptor; {fds.Count} came, and were closed";
        if (_notifier.IsDoorbell(value)) return $"error {Notifier.Name(value)} is a device's doorbell";
        return _notifier.Detach(value) ? "ok" : $"error {Notifier.Name(value)} is not attached";
    }

    /// <summary><c>notify V...</c> (ascending, canonical), then <c>irq N...</c> if any lines are attached; <c>notify</c> alone when nothing is.</summary>
    private string List()
    {
        var text = new StringBuilder("notify");
        foreach (uint v in _notifier.Attached.Order()) text.Append(' ').Append(Notifier.Name(v));
        int[] lines = _interrupts.AttachedLines;
        if (lines.Length > 0)
        {
            text.Append(" irq");
            foreach (int n in lines) text.Append(' ').Append(n.ToString(CultureInfo.InvariantCulture));
        }
        return text.ToString();
    }

    private static bool TryParseValue(string text, out uint value, out string error)
    {
        bool ok = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? uint.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value)
            : uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
        if (ok && value == 0)
        {
            error = "value 0 is reserved: it means nothing is pending";
            return false;
        }
        error = ok ? "" : $"'{Shown(text)}' is not a notify value (nonzero, decimal or 0x-hex, 32 bits)";
        return ok;
    }

    private static bool TryParseLine(string text, out int line, out string error)
    {
        bool ok = int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out line) && line is >= 1 and <= InterruptController.MaxLine;
        error = ok ? "" : $"'{Shown(text)}' is not an interrupt line (1 to {InterruptController.MaxLine})";
        return ok;
    }

    private static string Shown(string text) => text.Length <= 40 ? text : text[..40] + "...";

    /// <summary>What the kernel calls the file (<c>pipe:[1234]</c>), for the message.</summary>
    private static string FdKind(SafeFdHandle fd)
    {
        try
        {
            return new FileInfo($"/proc/self/fd/{fd.Fd}").LinkTarget ?? "a descriptor of an unknown kind";
        }
        catch (IOException)
        {
            return "a descriptor of an unknown kind";
        }
    }

    /// <summary>Stops the control thread, waits for it, then closes the socket and removes its file. Once; later calls do nothing.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stop.Cancel();
        _thread?.Join();
        foreach ((int line, EventFd fd) in _irqFds)
        {
            _interrupts.Detach(line);
            fd.Dispose();
        }
        _irqFds.Clear();
        _listener.Dispose();
        _stop.Dispose();
    }
}
