using System.Runtime.InteropServices;

namespace Sharpvisor.Native;

internal static partial class Interop
{
    // <time.h>
    internal const int CLOCK_PROCESS_CPUTIME_ID = 2;
    internal const int CLOCK_THREAD_CPUTIME_ID = 3;

    // The kernel's CPU-time clock ids (include/linux/posix-timers.h): a
    // negative number, ~pid << 3, with a kind in the low bits. glibc's
    // pthread_getcpuclockid makes the same id from a thread's kernel id.
    internal const int CPUCLOCK_SCHED = 2;
    internal const int CPUCLOCK_PERTHREAD_MASK = 4;

    /// <summary>clock_gettime(2), into the <see cref="Timespec"/> of Interop.Poll.</summary>
    [LibraryImport(Libc, EntryPoint = "clock_gettime", SetLastError = true)]
    internal static unsafe partial int ClockGetTime(int clock, Timespec* time);
}
