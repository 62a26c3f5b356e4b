namespace Sharpvisor.Native;

/// <summary>
/// Linux errno values (x86-64 numbering) that Sharpvisor's calls can meet.
/// A value missing here still round-trips: it prints as <c>errno N</c>.
/// </summary>
public enum Errno
{
    EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, ENXIO = 6, E2BIG = 7,
    ENOEXEC = 8, EBADF = 9, ECHILD = 10, EAGAIN = 11, ENOMEM = 12, EACCES = 13,
    EFAULT = 14, EBUSY = 16, EEXIST = 17, EXDEV = 18, ENODEV = 19, ENOTDIR = 20,
    EISDIR = 21, EINVAL = 22, ENFILE = 23, EMFILE = 24, ENOTTY = 25, EFBIG = 27,
    ENOSPC = 28, ESPIPE = 29, EROFS = 30, EMLINK = 31, EPIPE = 32, ERANGE = 34,
    EDEADLK = 35, ENAMETOOLONG = 36, ENOSYS = 38, ELOOP = 40, EOVERFLOW = 75,
    ENOTSOCK = 88, EMSGSIZE = 90, EPROTOTYPE = 91, EOPNOTSUPP = 95,
    EADDRINUSE = 98, EADDRNOTAVAIL = 99, ECONNRESET = 104, ENOBUFS = 105,
    ETIMEDOUT = 110, ECONNREFUSED = 111,
}

public static class ErrnoExtensions
{
    /// <summary>The symbolic name (<c>EMFILE</c>), or <c>errno N</c> for one we do not list.</summary>
    public static string Name(this Errno errno) =>
        Enum.IsDefined(errno) ? errno.ToString() : $"errno {(int)errno}";

    /// <summary>The C library's text for it (strerror), e.g. "Too many open files".</summary>
    public static string Describe(this Errno errno) =>
        System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage((int)errno);
}
