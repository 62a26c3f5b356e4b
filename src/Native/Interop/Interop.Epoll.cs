using System.Runtime.InteropServices;

namespace Sharpvisor.Native;

internal static partial class Interop
{
    // <sys/epoll.h>
    internal const int EPOLL_CLOEXEC = 0x80000;
    internal const int EPOLL_CTL_ADD = 1;
    internal const int EPOLL_CTL_DEL = 2;
    internal const int EPOLL_CTL_MOD = 3;
    internal const uint EPOLLIN = 0x001;
    internal const uint EPOLLERR = 0x008;
    internal const uint EPOLLHUP = 0x010;

    /// <summary>
    /// struct epoll_event. On x86-64 the kernel declares it packed (12 bytes,
    /// the 64-bit data right after the 32-bit mask); a naturally aligned
    /// 16-byte layout would make the kernel read every second event wrong.
    /// </summary>
    [StructLayout(LayoutKind.Sequential, Pack = 4)]
    internal struct EpollEvent
    {
        public uint Events;
        public ulong Data;
    }

    [LibraryImport(Libc, EntryPoint = "epoll_create1", SetLastError = true)]
    internal static partial int EpollCreate1(int flags);

    [LibraryImport(Libc, EntryPoint = "epoll_ctl", SetLastError = true)]
    internal static unsafe partial int EpollCtl(SafeHandle epfd, int op, SafeHandle fd, EpollEvent* ev);

    [LibraryImport(Libc, EntryPoint = "epoll_wait", SetLastError = true)]
    internal static unsafe partial int EpollWait(SafeHandle epfd, EpollEvent* events, int maxevents, int timeoutMs);
}
