using System.Runtime.InteropServices;

namespace Sharpvisor.Native;

internal static partial class Interop
{
    // <sys/eventfd.h>
    internal const int EFD_SEMAPHORE = 0x1;
    internal const int EFD_NONBLOCK = 0x800;   // == O_NONBLOCK
    internal const int EFD_CLOEXEC = 0x80000;  // == O_CLOEXEC

    [LibraryImport(Libc, EntryPoint = "eventfd", SetLastError = true)]
    internal static partial int EventFd(uint initval, int flags);
}
