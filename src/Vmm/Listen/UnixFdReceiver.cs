using Sharpvisor.Native;
using Sharpvisor.Vmm.Launcher;

namespace Sharpvisor.Vmm.Listen;

/// <summary>One eventfd a <c>unix:</c> target handed over: its name (<c>notify-0x10</c>, <c>irq-5</c>) and who sent it.</summary>
public sealed record ReceivedEventFd(string Name, EventFd EventFd, PeerCredentials From) : IDisposable
{
    public void Dispose() => EventFd.Dispose();
}

/// <summary>
/// The listening side of <c>unix:PATH</c> targets (<see cref="UnixTarget"/>
/// has the wire format): a socket at PATH, owner-only (0600), on which every
/// connection brings one line and one eventfd. <see cref="Receive"/> takes
/// one connection, checks what it brought and closes it. Anything else than
/// one well-formed line with exactly one eventfd is refused with a one-line
/// <see cref="InvalidDataException"/>, after every descriptor that came with
/// it has been closed; the receiver then takes the next connection as usual.
/// </summary>
/// <example>
/// <code>
/// using var receiver = UnixFdReceiver.Listen("/tmp/ping.sock");
/// // sharpvisor run guests/build/pingpong.elf --notify 0x10=unix:/tmp/ping.sock ...
/// using ReceivedEventFd ping = receiver.Receive();    // ping.Name == "notify-0x10"
/// ulong count = ping.EventFd.Read();                   // what the guest has sent so far
/// </code>
/// </example>
public sealed class UnixFdReceiver : IDisposable
{
    private readonly UnixSocket _listener;

    private UnixFdReceiver(UnixSocket listener) => _listener = listener;

    /// <summary>
    /// Listens on <paramref name="path"/>, mode 0600. A stale socket file there
    /// is replaced; anything else is an error (see <see cref="UnixSocket.Listen"/>).
    /// </summary>
    /// <exception cref="ErrnoException">From bind or listen: EADDRINUSE, EACCES, ENOENT...</exception>
    public static UnixFdReceiver Listen(string path, int backlog = 16) => new(UnixSocket.Listen(path, backlog));

    /// <summary>The socket's path.</summary>
    public string Path => _listener.Path!;

    /// <summary>How long a connection may take to send its message once accepted; 10 s unless set.</summary>
    public TimeSpan MessageTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Waits for the next connection and returns the eventfd it brought; the caller owns it.</summary>
    /// <exception cref="InvalidDataException">The connection brought something else; its descriptors are closed.</exception>
    public ReceivedEventFd Receive(CancellationToken cancellationToken = default)
    {
        TryReceive(Timeout.InfiniteTimeSpan, out ReceivedEventFd? received, cancellationToken);
        return received!;
    }

    /// <summary>Like <see cref="Receive"/>, but false if no connection came within <paramref name="timeout"/>.</summary>
    public bool TryReceive(TimeSpan timeout, out ReceivedEventFd? received, CancellationToken cancellationToken = default)
    {
        received = null;
        if (!_listener.WaitReadable(timeout, cancellationToken)) return false;
        using UnixSocket connection = _listener.Accept();
        PeerCredentials from = connection.PeerCredentials();
        string who = $"unix:{Path}: from pid {from.Pid}";
        if (!connection.WaitReadable(MessageTimeout, cancellationToken))
            throw new InvalidDataException($"{who}: nothing sent within {MessageTimeout.TotalSeconds:0.###} s");

        // One message: the kernel never joins it with another that carries
        // descriptors, but a sender may split its bytes, so a line that came
        // without its newline is read on, never past the longest line there is.
        var buffer = new byte[UnixTarget.MaxLineLength + 1];
        var fds = new List<SafeFdHandle>();
        try
        {
            int length = 0;
            while (length < buffer.Length && Array.IndexOf(buffer, (byte)'\n', 0, length) < 0)
            {
                if (length > 0 && !connection.WaitReadable(MessageTimeout, cancellationToken)) break;
                int n;
                try
                {
                    n = connection.ReceiveWithDescriptors(buffer.AsSpan(length), out SafeFdHandle[] more);
                    fds.AddRange(more);
                }
                catch (ErrnoException e)
                {
                    throw new InvalidDataException($"{who}: {e.Message}");
                }
                if (n == 0) break;
                length += n;
            }
            if (!UnixTarget.TryParseLine(buffer.AsSpan(0, length), out string name, out string error))
                throw new InvalidDataException($"{who}: {error}; {Closed(fds.Count)}");
            if (fds.Count != 1)
                throw new InvalidDataException($"{who}: '{UnixTarget.Shown(buffer.AsSpan(0, length))}' came with {fds.Count} descriptors, not 1; {Closed(fds.Count)}");
            EventFd eventFd;
            try
            {
                // The duplicate is checked, not the number we were given.
                eventFd = EventFd.DuplicateFrom(fds[0].Fd);
            }
            catch (ErrnoException e) when (e.Errno == Errno.EINVAL)
            {
                string kind = FdKind(fds[0]);
                throw new InvalidDataException($"{who}: '{UnixTarget.Shown(buffer.AsSpan(0, length))}' came with {kind}, not an eventfd; {Closed(1)}");
            }
            received = new ReceivedEventFd(name, eventFd, from);
            return true;
        }
        finally
        {
            foreach (SafeFdHandle fd in fds) fd.Dispose();
        }
    }

    private static string Closed(int count) => count == 0 ? "nothing to close" : count == 1 ? "its descriptor was closed" : "its descriptors were closed";

    /// <summary>What the kernel calls the file (<c>pipe:[1234]</c>, <c>anon_inode:[timerfd]</c>), for the message.</summary>
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

    /// <summary>Stops listening and removes the socket file (if it is still ours).</summary>
    public void Dispose() => _listener.Dispose();
}
