using System.Runtime.InteropServices;

namespace Sharpvisor.Native;

internal static partial class Interop
{
    // <fcntl.h>: the access modes and open flags a disk image needs (O_NONBLOCK
    // and O_CLOEXEC are in Interop.Io).
    internal const int O_RDONLY = 0;
    internal const int O_RDWR = 2;
    internal const int O_NOCTTY = 0x100;
    internal const int O_CREAT = 0x40;
    internal const int O_EXCL = 0x80;
    /// <summary>An unnamed file in the directory opened (__O_TMPFILE with O_DIRECTORY).</summary>
    internal const int O_TMPFILE = 0x410000;

    // <sys/file.h>
    internal const int LOCK_SH = 1;
    internal const int LOCK_EX = 2;
    internal const int LOCK_NB = 4;

    /// <summary>
    /// open(2). The C function is variadic (the mode); passing it as a fixed
    /// third argument is what the x86-64 calling convention makes equivalent.
    /// It is read only with O_CREAT or O_TMPFILE (<see cref="ScratchFile"/>).
    /// </summary>
    [LibraryImport(Libc, EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int Open(string path, int flags, uint mode);

    /// <summary>fstat(2) (glibc 2.33+ exports it as a function).</summary>
    [LibraryImport(Libc, EntryPoint = "fstat", SetLastError = true)]
    internal static unsafe partial int FStat(SafeHandle fd, Stat* buf);

    [LibraryImport(Libc, EntryPoint = "flock", SetLastError = true)]
    internal static partial int Flock(SafeHandle fd, int operation);

    [LibraryImport(Libc, EntryPoint = "preadv", SetLastError = true)]
    internal static unsafe partial nint PReadV(SafeHandle fd, IoVector* iov, int iovcnt, long offset);

    [LibraryImport(Libc, EntryPoint = "pwritev", SetLastError = true)]
    internal static unsafe partial nint PWriteV(SafeHandle fd, IoVector* iov, int iovcnt, long offset);

    [LibraryImport(Libc, EntryPoint = "fdatasync", SetLastError = true)]
    internal static partial int FDataSync(SafeHandle fd);
}
