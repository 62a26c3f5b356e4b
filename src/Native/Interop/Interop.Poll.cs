using System.Runtime.InteropServices;

namespace Sharpvisor.Native;

internal static partial class Interop
{
    // <poll.h>
    internal const short POLLIN = 0x001;
    internal const short POLLOUT = 0x004;
    internal const short POLLERR = 0x008;
    internal const short POLLHUP = 0x010;
    internal const short POLLNVAL = 0x020;

    [StructLayout(LayoutKind.Sequential)]
    internal struct PollFd
    {
        public int Fd;
        public short Events;
        public short REvents;
    }

    [LibraryImport(Libc, EntryPoint = "poll", SetLastError = true)]
    internal static unsafe partial int Poll(PollFd* fds, nuint nfds, int timeoutMs);

    // <time.h>
    [StructLayout(LayoutKind.Sequential)]
    internal struct Timespec
    {
        public long Sec;
        public long Nsec;
    }

    /// <summary>ppoll(2): poll with a nanosecond timeout (null: for ever); the signal mask is left alone (null).</summary>
    [LibraryImport(Libc, EntryPoint = "ppoll", SetLastError = true)]
    internal static unsafe partial int PPoll(PollFd* fds, nuint nfds, Timespec* timeout, void* sigmask);
}
