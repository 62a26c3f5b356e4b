using System.Text;

namespace Sharpvisor.Native;

/// <summary>Who is at the other end of a Unix socket, as the kernel recorded it when the connection was made (SO_PEERCRED).</summary>
public readonly record struct PeerCredentials(int Pid, uint Uid, uint Gid);

/// <summary>
/// A Unix stream socket (AF_UNIX, SOCK_STREAM, close-on-exec) that can carry
/// descriptors (SCM_RIGHTS) along with its bytes: how one process hands
/// another an eventfd. It is a listener (<see cref="Listen"/>), or one end of
/// a connection (<see cref="Connect"/>, <see cref="Accept"/>). Paths only:
/// the abstract namespace (a leading NUL) is not supported.
/// </summary>
/// <example>
/// <code>
/// using var listener = UnixSocket.Listen("/tmp/sv.sock");
/// using (var client = UnixSocket.Connect("/tmp/sv.sock"))
/// using (var kick = EventFd.Create())
///     client.SendWithDescriptors("irq 1\n"u8, [kick.Handle]);   // the kernel queues both until accepted
/// using var server = listener.Accept();
/// var line = new byte[64];
/// int n = server.ReceiveWithDescriptors(line, out SafeFdHandle[] fds);   // "irq 1\n", one descriptor
/// foreach (SafeFdHandle fd in fds) fd.Dispose();
/// </code>
/// </example>
public sealed class UnixSocket : IDisposable
{
    /// <summary>The most descriptors <see cref="ReceiveWithDescriptors"/> accepts unless told otherwise.</summary>
    public const int DefaultMaxDescriptors = 16;

    private readonly SafeFdHandle _handle;
    // For a listener: the socket file bind created, so Dispose removes that
    // file and not one someone has put in its place since.
    private readonly (ulong Dev, ulong Ino)? _boundFile;

    private UnixSocket(SafeFdHandle handle, string? path, (ulong, ulong)? boundFile = null)
    {
        _handle = handle;
        Path = path;
        _boundFile = boundFile;
    }

    /// <summary>The owned descriptor (close-on-exec).</summary>
    public SafeFdHandle Handle => _handle;

    /// <summary>The path a listener is bound to, or a client connected to; null for an accepted connection.</summary>
    public string? Path { get; }

    /// <summary>
    /// Connects to the listener at <paramref name="path"/>. The connection is
    /// made even before the listener accepts it (it waits in the listener's
    /// backlog), so sending right away works.
    /// </summary>
    /// <exception cref="ErrnoException">
    /// From connect: ENOENT (no such socket), ECONNREFUSED (the path is not a
    /// socket, or nothing listens on it), EACCES, ENAMETOOLONG (more than 107
    /// bytes), EINVAL (empty, or a NUL in it).
    /// </exception>
    public static unsafe UnixSocket Connect(string path)
    {
        Interop.SockaddrUn address = Address(path, "connect", out uint length);
        SafeFdHandle handle = NewSocket();
        try
        {
            while (Interop.Connect(handle, &address, length) != 0)
            {
                Errno e = Interop.LastErrno;
                if (e == Errno.EINTR) continue;
                ThrowHelper.ThrowErrno("connect", e, e switch
                {
                    Errno.ENOENT => $"no such socket: {path}",
                    // Linux refuses a path that is not a socket with
                    // ECONNREFUSED too; tell the two apart for the user.
                    Errno.ECONNREFUSED => KindOf(path, follow: true) is string kind && kind != "a socket"
                        ? $"{path} is {kind}, not a socket"
                        : $"nothing listens on {path}",
                    _ => $"{e.Describe()}: {path}",
                });
            }
            return new UnixSocket(handle, path);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Binds a new socket to <paramref name="path"/> and listens on it. The file
    /// gets <paramref name="mode"/> (default 0600, owner only) before the socket
    /// listens, so nobody else can connect in between. A socket file already at
    /// the path that nothing listens on (left by a process that died) is
    /// removed and replaced; anything else there (a live listener, a regular
    /// file, a directory) is left alone and is an error. <see cref="Dispose"/>
    /// removes the socket file again, if it is still the one bound here.
    /// </summary>
    /// <exception cref="ErrnoException">From bind: EADDRINUSE (something is at the path), EACCES, ENOENT (no such directory), ENAMETOOLONG, EINVAL.</exception>
    public static unsafe UnixSocket Listen(string path, int backlog = 16,
        UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite)
    {
        Interop.SockaddrUn address = Address(path, "bind", out uint length);
        SafeFdHandle handle = NewSocket();
        try
        {
            if (Interop.Bind(handle, &address, length) != 0)
            {
                Errno e = Interop.LastErrno;
                if (e != Errno.EADDRINUSE) ThrowHelper.ThrowErrno("bind", e, $"{e.Describe()}: {path}");
                RemoveIfStale(path);
                if (Interop.Bind(handle, &address, length) != 0)
                    ThrowHelper.ThrowErrno("bind", Interop.LastErrno, $"{Interop.LastErrno.Describe()}: {path}");
            }
            Interop.Stat st;
            if (Interop.LStat(path, &st) != 0) ThrowHelper.ThrowErrno("lstat", Interop.LastErrno, path);
            var bound = (st.Dev, st.Ino);
            try
            {
                if (Interop.Chmod(path, (uint)mode) != 0) ThrowHelper.ThrowErrno("chmod", Interop.LastErrno, path);
                if (Interop.Listen(handle, backlog) != 0) ThrowHelper.ThrowLastErrno("listen");
            }
            catch
            {
                Interop.Unlink(path);
                throw;
            }
            return new UnixSocket(handle, path, bound);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// bind found something at <paramref name="path"/>. A socket that refuses
    /// a connection has no listener: it is stale, and is removed. Anything else
    /// is the EADDRINUSE error, saying what is there.
    /// </summary>
    private static void RemoveIfStale(string path)
    {
        string? kind = KindOf(path, follow: false);
        if (kind != "a socket")
            ThrowHelper.ThrowErrno("bind", Errno.EADDRINUSE, $"{path} exists and is {kind ?? "unreadable"}, not a socket; it was left alone");
        try
        {
            using UnixSocket probe = Connect(path);
        }
        catch (ErrnoException e) when (e.Errno == Errno.ECONNREFUSED)
        {
            if (Interop.Unlink(path) != 0 && Interop.LastErrno != Errno.ENOENT)
                ThrowHelper.ThrowErrno("unlink", Interop.LastErrno, $"the stale socket {path}");
            return;
        }
        ThrowHelper.ThrowErrno("bind", Errno.EADDRINUSE, $"a process already listens on {path}");
    }

    /// <summary>Waits for the next connection (blocking) and returns its end, close-on-exec.</summary>
    public unsafe UnixSocket Accept()
    {
        while (true)
        {
            int fd = Interop.Accept4(_handle, null, null, Interop.SOCK_CLOEXEC);
            if (fd >= 0) return new UnixSocket(new SafeFdHandle(fd, ownsHandle: true), null);
            Errno e = Interop.LastErrno;
            if (e != Errno.EINTR) ThrowHelper.ThrowErrno("accept4", e);
        }
    }

    /// <summary>
    /// Waits up to <paramref name="timeout"/> until the socket is readable: for
    /// a listener, a connection is waiting to be accepted; for a connection,
    /// bytes or the peer's close. Throws OperationCanceledException if cancelled.
    /// </summary>
    public bool WaitReadable(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        Poll.WaitOne(_handle, Interop.POLLIN, Poll.ToMilliseconds(timeout), cancellationToken, "poll(socket)");

    /// <summary>
    /// Sends all of <paramref name="payload"/>, with <paramref name="fds"/>
    /// (at most 253) attached to its first byte as one SCM_RIGHTS message: the
    /// receiver gets its own descriptors for the same open files. Ours stay
    /// open. A peer that has gone is EPIPE, never SIGPIPE.
    /// </summary>
    /// <exception cref="ArgumentException">Descriptors with an empty payload (a stream socket cannot carry them alone), or more than 253.</exception>
    /// <exception cref="ErrnoException">From sendmsg: EPIPE, ECONNRESET, EBADF...</exception>
    public unsafe void SendWithDescriptors(ReadOnlySpan<byte> payload, ReadOnlySpan<SafeFdHandle> fds)
    {
        if (fds.Length > 0 && payload.IsEmpty)
            throw new ArgumentException("descriptors travel with at least one byte of payload", nameof(payload));
        if (fds.Length > Interop.SCM_MAX_FD)
            throw new ArgumentException($"at most {Interop.SCM_MAX_FD} descriptors go in one message, not {fds.Length}", nameof(fds));

        // SAFETY: at most 253 descriptors, so space is about 1 KiB of stack.
        // One cmsghdr at its start, then fds.Length ints from CMSG_DATA
        // (CmsgLen(0)): CmsgLen(n * 4) <= CmsgSpace(n * 4) = space bytes.
        int space = fds.Length == 0 ? 0 : Interop.CmsgSpace(fds.Length * sizeof(int));
        byte* control = stackalloc byte[Math.Max(space, 1)];
        new Span<byte>(control, space).Clear();
        int added = 0;
        try
        {
            if (fds.Length > 0)
            {
                var header = (Interop.Cmsghdr*)control;
                header->Length = (nuint)Interop.CmsgLen(fds.Length * sizeof(int));
                header->Level = Interop.SOL_SOCKET;
                header->Type = Interop.SCM_RIGHTS;
                int* data = (int*)(control + Interop.CmsgLen(0));
                for (; added < fds.Length; added++)
                {
                    bool ok = false;
                    fds[added].DangerousAddRef(ref ok); // kept open until the kernel has taken its references
                    data[added] = fds[added].Fd;
                }
            }

            fixed (byte* bytes = payload)
            {
                int sent = 0;
                while (sent < payload.Length)
                {
                    var iov = new Interop.Iovec { Base = bytes + sent, Length = (nuint)(payload.Length - sent) };
                    var message = new Interop.Msghdr { Iov = &iov, IovLength = 1 };
                    if (sent == 0 && space > 0)
                    {
                        message.Control = control;
                        message.ControlLength = (nuint)space;
                    }
                    nint n = Interop.SendMsg(_handle, &message, Interop.MSG_NOSIGNAL);
                    if (n < 0)
                    {
                        Errno e = Interop.LastErrno;
                        if (e == Errno.EINTR) continue; // nothing was sent
                        ThrowHelper.ThrowErrno("sendmsg", e);
                    }
                    // A short send carried the descriptors with its first
                    // bytes; the rest goes without them.
                    sent += (int)n;
                }
            }
        }
        finally
        {
            for (int i = 0; i < added; i++) fds[i].DangerousRelease();
        }
    }

    /// <summary>
    /// Receives bytes into <paramref name="buffer"/> and the descriptors that
    /// came with them, each wrapped in its own handle at once (close-on-exec,
    /// MSG_CMSG_CLOEXEC) so that none can leak: the caller owns and disposes
    /// every one in <paramref name="fds"/>. Returns the byte count; 0 is the
    /// peer's orderly close. On a stream socket the kernel never joins two
    /// sends that carry descriptors into one receive.
    /// </summary>
    /// <param name="maxDescriptors">
    /// How many descriptors to make room for (1 to 253). If more came, the
    /// kernel reports truncated control data (MSG_CTRUNC) and has already
    /// closed the ones that did not fit; the ones that did are closed here,
    /// and the call fails with EMSGSIZE.
    /// </param>
    /// <exception cref="ErrnoException">From recvmsg, or EMSGSIZE for too many descriptors.</exception>
    public unsafe int ReceiveWithDescriptors(Span<byte> buffer, out SafeFdHandle[] fds, int maxDescriptors = DefaultMaxDescriptors)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxDescriptors, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxDescriptors, Interop.SCM_MAX_FD);
        int space = Interop.CmsgSpace(maxDescriptors * sizeof(int));
        byte* control = stackalloc byte[space];
        var received = new List<SafeFdHandle>();
        try
        {
            nint n;
            int flags;
            fixed (byte* bytes = buffer)
            {
                var iov = new Interop.Iovec { Base = bytes, Length = (nuint)buffer.Length };
                var message = new Interop.Msghdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = (nuint)space };
                while (true)
                {
                    n = Interop.RecvMsg(_handle, &message, Interop.MSG_CMSG_CLOEXEC);
                    if (n >= 0) break;
                    Errno e = Interop.LastErrno;
                    if (e != Errno.EINTR) ThrowHelper.ThrowErrno("recvmsg", e);
                    message.ControlLength = (nuint)space; // the kernel may have shrunk it
                }
                flags = message.Flags;
                // The kernel sets ControlLength to what it wrote, never more
                // than it was given; the Min keeps Collect inside our buffer
                // even so.
                Collect(control, (int)Math.Min(message.ControlLength, (nuint)space), received);
            }
            if ((flags & Interop.MSG_CTRUNC) != 0)
                ThrowHelper.ThrowErrno("recvmsg", Errno.EMSGSIZE,
                    $"more descriptors came than the {maxDescriptors} expected; every one of them was closed");
            fds = [.. received];
            return (int)n;
        }
        catch
        {
            foreach (SafeFdHandle fd in received) fd.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Walks the control messages the kernel wrote (CMSG_FIRSTHDR,
    /// CMSG_NXTHDR) and wraps every descriptor of every SCM_RIGHTS message.
    /// </summary>
    private static unsafe void Collect(byte* control, int length, List<SafeFdHandle> into)
    {
        // SAFETY: every read lies in [control, control + length): a header is
        // read only when offset + sizeof(cmsghdr) <= length, its data only when
        // its whole cmsg_len fits (offset + cmsgLength <= length), and a length
        // that does not fit, or is too small to move on (< CMSG_LEN(0)), ends
        // the walk. offset stays 8-aligned (CMSG_ALIGN), as the header wants.
        int offset = 0;
        while (offset + sizeof(Interop.Cmsghdr) <= length)
        {
            var header = (Interop.Cmsghdr*)(control + offset);
            int cmsgLength = (int)header->Length;
            if (cmsgLength < Interop.CmsgLen(0) || offset + cmsgLength > length) break;
            if (header->Level == Interop.SOL_SOCKET && header->Type == Interop.SCM_RIGHTS)
            {
                int count = (cmsgLength - Interop.CmsgLen(0)) / sizeof(int);
                int* data = (int*)(control + offset + Interop.CmsgLen(0));
                for (int i = 0; i < count; i++) into.Add(new SafeFdHandle(data[i], ownsHandle: true));
            }
            offset += Interop.CmsgAlign(cmsgLength);
        }
    }

    /// <summary>The process at the other end (SO_PEERCRED), as it was when it connected or listened.</summary>
    public unsafe PeerCredentials PeerCredentials()
    {
        Interop.Ucred cred;
        uint size = (uint)sizeof(Interop.Ucred);
        if (Interop.GetSockOpt(_handle, Interop.SOL_SOCKET, Interop.SO_PEERCRED, &cred, &size) != 0)
            ThrowHelper.ThrowLastErrno("getsockopt(SO_PEERCRED)");
        return new PeerCredentials(cred.Pid, cred.Uid, cred.Gid);
    }

    /// <summary>This process's effective user id, to compare with <see cref="PeerCredentials"/>' Uid.</summary>
    public static uint CurrentUid => Interop.GetEuid();

    /// <summary>Closes the socket; a listener also removes its socket file, if that is still the one it bound.</summary>
    public unsafe void Dispose()
    {
        if (_boundFile is (ulong dev, ulong ino) && Path is string path && !_handle.IsClosed)
        {
            Interop.Stat st;
            if (Interop.LStat(path, &st) == 0 && st.Dev == dev && st.Ino == ino)
                Interop.Unlink(path);
        }
        _handle.Dispose();
    }

    private static SafeFdHandle NewSocket()
    {
        int fd = Interop.Socket(Interop.AF_UNIX, Interop.SOCK_STREAM | Interop.SOCK_CLOEXEC, 0);
        if (fd < 0) ThrowHelper.ThrowLastErrno("socket");
        return new SafeFdHandle(fd, ownsHandle: true);
    }

    /// <summary>sockaddr_un for a path; its length counts the path's NUL, as the kernel's own getsockname does.</summary>
    private static unsafe Interop.SockaddrUn Address(string path, string operation, out uint length)
    {
        if (path.Length == 0 || path.Contains('\0'))
            ThrowHelper.ThrowErrno(operation, Errno.EINVAL, path.Length == 0 ? "an empty socket path" : "a NUL in the socket path");
        int bytes = Encoding.UTF8.GetByteCount(path);
        if (bytes >= Interop.SunPathSize)
            ThrowHelper.ThrowErrno(operation, Errno.ENAMETOOLONG, $"a socket path has at most {Interop.SunPathSize - 1} bytes, not {bytes}: {path}");
        var address = new Interop.SockaddrUn { Family = Interop.AF_UNIX };
        Encoding.UTF8.GetBytes(path, new Span<byte>(address.Path, Interop.SunPathSize));
        length = (uint)(sizeof(ushort) + bytes + 1);
        return address;
    }

    /// <summary>What is at <paramref name="path"/>, in words ("a socket", "a regular file"...); null if nothing can be found there.</summary>
    private static unsafe string? KindOf(string path, bool follow)
    {
        Interop.Stat st;
        if ((follow ? Interop.StatPath(path, &st) : Interop.LStat(path, &st)) != 0) return null;
        return (st.Mode & Interop.S_IFMT) switch
        {
            Interop.S_IFSOCK => "a socket",
            Interop.S_IFREG => "a regular file",
            Interop.S_IFDIR => "a directory",
            Interop.S_IFLNK => "a symbolic link",
            Interop.S_IFIFO => "a FIFO",
            Interop.S_IFCHR => "a character device",
            Interop.S_IFBLK => "a block device",
            _ => "of an unknown kind",
        };
    }
}
