using System.Runtime.InteropServices;

namespace Sharpvisor.Native;

internal static partial class Interop
{
    // <sys/stat.h>
    internal const uint S_IFMT = 0xF000;    // 0170000
    internal const uint S_IFSOCK = 0xC000;  // 0140000
    internal const uint S_IFREG = 0x8000;   // 0100000
    internal const uint S_IFDIR = 0x4000;   // 0040000
    internal const uint S_IFLNK = 0xA000;   // 0120000
    internal const uint S_IFIFO = 0x1000;   // 0010000
    internal const uint S_IFCHR = 0x2000;   // 0020000
    internal const uint S_IFBLK = 0x6000;   // 0060000

    /// <summary>
    /// struct stat for x86-64, 144 bytes. We read only the device, inode and
    /// mode; the rest is declared so the kernel's write stays inside it.
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct Stat
    {
        public ulong Dev;
        public ulong Ino;
        public ulong Nlink;
        public uint Mode;
        public uint Uid;
        public uint Gid;
        private int _pad0;
        public ulong Rdev;
        public long Size;
        public long Blksize;
        public long Blocks;
        private fixed long _times[6];     // st_atim, st_mtim, st_ctim
        private fixed long _reserved[3];
    }

    /// <summary>lstat(2): about the path itself, not what a symlink points to (glibc 2.33+ exports it).</summary>
    [LibraryImport(Libc, EntryPoint = "lstat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static unsafe partial int LStat(string path, Stat* buf);

    /// <summary>stat(2): about what the path leads to, following symlinks as connect(2) does.</summary>
    [LibraryImport(Libc, EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static unsafe partial int StatPath(string path, Stat* buf);

    [LibraryImport(Libc, EntryPoint = "chmod", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Chmod(string path, uint mode);

    [LibraryImport(Libc, EntryPoint = "unlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Unlink(string path);
}
