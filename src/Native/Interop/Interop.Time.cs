using System.Runtime.InteropServices;

namespace Sharpvisor.Native;

internal static partial class Interop
{
    // <time.h>, <sys/prctl.h>
    internal const int CLOCK_MONOTONIC = 1;
    internal const int PR_SET_TIMERSLACK = 29;

    [StructLayout(LayoutKind.Sequential)]
    internal struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    /// <summary>Returns the error number itself (not -1/errno), as POSIX specifies.</summary>
    [LibraryImport(Libc, EntryPoint = "clock_nanosleep")]
    internal static unsafe partial int ClockNanosleep(int clockId, int flags, TimeSpec* request, TimeSpec* remain);

    [LibraryImport(Libc, EntryPoint = "prctl", SetLastError = true)]
    internal static partial int Prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    [LibraryImport(Libc, EntryPoint = "gettid")]
    internal static partial int GetTid();
}
