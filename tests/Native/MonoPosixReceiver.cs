using System.Runtime.InteropServices;
using System.Text;
using Mono.Unix.Native;

namespace Sharpvisor.Tests.Native;

/// <summary>
/// The receiving side of a <c>unix:</c> target written with Mono.Posix
/// (Mono.Unix.Native: socket, bind, listen, poll, accept4, recvmsg and the
/// CMSG_* helpers, through libMonoPosixHelper.so), not with our interop: an
/// implementation of SCM_RIGHTS nobody here wrote, to check ours against.
/// Descriptors are plain ints here, as Mono.Posix gives them.
/// </summary>
internal sealed class MonoPosixReceiver : IDisposable
{
    private readonly int _listener;

    public MonoPosixReceiver(string path)
    {
        Path = path;
        _listener = Check(Syscall.socket(UnixAddressFamily.AF_UNIX, UnixSocketType.SOCK_STREAM, UnixSocketFlags.SOCK_CLOEXEC, 0), "socket");
        try
        {
            Check(Syscall.bind(_listener, new SockaddrUn(path)), "bind");
            Check(Syscall.listen(_listener, 4), "listen");
        }
        catch
        {
            Syscall.close(_listener);
            throw;
        }
    }

    public string Path { get; }

    /// <summary>
    /// Accepts one connection (waiting at most <paramref name="timeout"/>),
    /// receives its one message and closes it: the payload as text, and the
    /// descriptors that came with it, which the caller closes (<see cref="Close"/>).
    /// </summary>
    public (string Payload, int[] Fds) AcceptOne(TimeSpan timeout)
    {
        var poll = new[] { new Pollfd { fd = _listener, events = PollEvents.POLLIN } };
        int ready = Check(Syscall.poll(poll, (int)timeout.TotalMilliseconds), "poll");
        Assert.True(ready == 1, $"no connection on {Path} within {timeout}");
        int connection = Check(Syscall.accept4(_listener, null, UnixSocketFlags.SOCK_CLOEXEC), "accept4");
        try
        {
            byte[] buffer = new byte[256];
            byte[] control = new byte[Syscall.CMSG_SPACE(16 * sizeof(int))];
            GCHandle pin = GCHandle.Alloc(buffer, GCHandleType.Pinned);
            try
            {
                var message = new Msghdr
                {
                    msg_iov = [new Iovec { iov_base = pin.AddrOfPinnedObject(), iov_len = (ulong)buffer.Length }],
                    msg_iovlen = 1,
                    msg_control = control,
                    msg_controllen = control.Length,
                };
                long n = Syscall.recvmsg(connection, message, MessageFlags.MSG_CMSG_CLOEXEC);
                Check((int)Math.Min(n, 0), "recvmsg");
                var fds = new List<int>();
                for (long offset = Syscall.CMSG_FIRSTHDR(message); offset != -1; offset = Syscall.CMSG_NXTHDR(message, offset))
                {
                    Cmsghdr header = Cmsghdr.ReadFromBuffer(message, offset);
                    if (header.cmsg_level != UnixSocketProtocol.SOL_SOCKET || header.cmsg_type != UnixSocketControlMessage.SCM_RIGHTS) continue;
                    long data = Syscall.CMSG_DATA(message, offset);
                    long count = (header.cmsg_len - (long)Syscall.CMSG_LEN(0)) / sizeof(int);
                    for (long i = 0; i < count; i++)
                        fds.Add(BitConverter.ToInt32(control, (int)(data + i * sizeof(int))));
                }
                Assert.False((message.msg_flags & MessageFlags.MSG_CTRUNC) != 0, "control data truncated");
                return (Encoding.ASCII.GetString(buffer, 0, (int)n), [.. fds]);
            }
            finally
            {
                pin.Free();
            }
        }
        finally
        {
            Syscall.close(connection);
        }
    }

    /// <summary>Reads an eventfd's 8-byte counter through Mono.Posix (and so resets it).</summary>
    public static unsafe ulong ReadCounter(int eventFd)
    {
        ulong value = 0;
        long n = Syscall.read(eventFd, &value, sizeof(ulong));
        Assert.True(n == sizeof(ulong), $"read(eventfd) returned {n}: {Stdlib.GetLastError()}");
        return value;
    }

    /// <summary>Adds to an eventfd's counter through Mono.Posix.</summary>
    public static unsafe void Signal(int eventFd, ulong count = 1)
    {
        long n = Syscall.write(eventFd, &count, sizeof(ulong));
        Assert.True(n == sizeof(ulong), $"write(eventfd) returned {n}: {Stdlib.GetLastError()}");
    }

    public static void Close(int fd) => Syscall.close(fd);

    private static int Check(int result, string call)
    {
        if (result < 0) Assert.Fail($"Mono.Posix {call}: {Stdlib.GetLastError()}");
        return result;
    }

    public void Dispose()
    {
        Syscall.close(_listener);
        Syscall.unlink(Path);
    }
}
