namespace Sharpvisor.Native;

/// <summary>
/// CPU time, in nanoseconds, of this process or of one of its threads: the
/// kernel's scheduler clocks (clock_gettime on a CPU-time clock), which
/// count what the thread ran, to the nanosecond, where /proc's stat files
/// count in 10 ms ticks. A thread is named by its kernel id (what
/// /proc/self/task lists).
/// </summary>
/// <example>
/// <code>
/// long before = CpuTime.Process();
/// Work();
/// long ns = CpuTime.Process() - before; // every thread's CPU time meanwhile
/// </code>
/// </example>
public static class CpuTime
{
    /// <summary>Every thread of this process, alive or gone, since it started.</summary>
    public static long Process() => Read(Interop.CLOCK_PROCESS_CPUTIME_ID, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");

    /// <summary>The calling thread's.</summary>
    public static long CurrentThread() => Read(Interop.CLOCK_THREAD_CPUTIME_ID, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");

    /// <summary>The calling thread's kernel id.</summary>
    public static int CurrentThreadId() => Interop.GetTid();

    /// <summary>Thread <paramref name="tid"/> of this process; false if there is no such thread (any more).</summary>
    public static unsafe bool TryThread(int tid, out long nanoseconds)
    {
        int clock = (~tid << 3) | Interop.CPUCLOCK_PERTHREAD_MASK | Interop.CPUCLOCK_SCHED;
        Interop.Timespec t;
        if (Interop.ClockGetTime(clock, &t) != 0)
        {
            nanoseconds = 0;
            return false;
        }
        nanoseconds = t.Sec * 1_000_000_000 + t.Nsec;
        return true;
    }

    private static unsafe long Read(int clock, string operation)
    {
        Interop.Timespec t;
        if (Interop.ClockGetTime(clock, &t) != 0) ThrowHelper.ThrowLastErrno(operation);
        return t.Sec * 1_000_000_000 + t.Nsec;
    }
}
