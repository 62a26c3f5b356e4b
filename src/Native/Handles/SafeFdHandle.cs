using Microsoft.Win32.SafeHandles;

namespace Sharpvisor.Native;

/// <summary>
/// Owns one Linux file descriptor and closes it exactly once. Descriptor 0 is
/// valid, so only -1 means "none".
/// </summary>
public sealed class SafeFdHandle : SafeHandleMinusOneIsInvalid
{
    public SafeFdHandle() : base(ownsHandle: true) { }

    public SafeFdHandle(int fd, bool ownsHandle) : base(ownsHandle) => SetHandle(fd);

    /// <summary>The descriptor number, for logs and for passing to a child process.</summary>
    public int Fd => (int)DangerousGetHandle();

    protected override bool ReleaseHandle()
    {
        // close(2) is never retried: on Linux the descriptor is released even
        // when close reports EINTR, and a retry could close a descriptor that
        // another thread has just been given under the same number.
        return Interop.Close((int)handle) == 0 || Interop.LastErrno == Errno.EINTR;
    }

    /// <summary>
    /// A new descriptor (lowest free number, close-on-exec) for the same open
    /// file description: flags such as O_NONBLOCK stay shared with this one.
    /// </summary>
    public SafeFdHandle Duplicate()
    {
        int fd = Interop.Fcntl(this, Interop.F_DUPFD_CLOEXEC, 0);
        if (fd < 0) ThrowHelper.ThrowLastErrno("fcntl(F_DUPFD_CLOEXEC)");
        return new SafeFdHandle(fd, ownsHandle: true);
    }

    /// <summary>
    /// One read(2) into <paramref name="buffer"/>, EINTR retried: the bytes
    /// read, 0 at end of file, or -1 with <paramref name="error"/> set
    /// (EAGAIN on a non-blocking descriptor with nothing to read).
    /// </summary>
    public unsafe int Read(Span<byte> buffer, out Errno error)
    {
        error = 0;
        fixed (byte* p = buffer)
        {
            while (true)
            {
                nint n = Interop.Read(this, p, (nuint)buffer.Length);
                if (n >= 0) return (int)n;
                error = Interop.LastErrno;
                if (error != Errno.EINTR) return -1;
            }
        }
    }

    /// <summary>Creates a pipe; both ends close-on-exec.</summary>
    public static unsafe (SafeFdHandle Read, SafeFdHandle Write) CreatePipe()
    {
        int* fds = stackalloc int[2];
        if (Interop.Pipe2(fds, Interop.O_CLOEXEC) != 0) ThrowHelper.ThrowLastErrno("pipe2");
        return (new SafeFdHandle(fds[0], true), new SafeFdHandle(fds[1], true));
    }
}
