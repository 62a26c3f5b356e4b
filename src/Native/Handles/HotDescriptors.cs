using System.Runtime.InteropServices;

namespace Sharpvisor.Native;

/// <summary>
/// Places the descriptors that vCPUs write on every notification (the
/// eventfd map's duplicates) each alone in a cache line of the kernel's
/// descriptor table, away from where ordinary descriptors are opened.
/// </summary>
/// <remarks>
/// Why: every write(2) looks its descriptor up in the process's table of
/// <c>struct file</c> pointers, eight to a 64-byte line. Duplicated at the
/// lowest free number, as dup(2) does, a map's descriptors sit next to each
/// other and to whatever the process opens next, and every open or close in
/// that line (an attach duplicating, a retired entry closing) takes the line
/// away from the CPU of a vCPU about to look up its neighbour. Measured with
/// <c>bench notify</c>'s attach/detach row: a thread duplicating and closing
/// next to the notified descriptor cost the notifying vCPU 8-45% of its
/// rate; the same thread working 3,000 descriptors away cost nothing.
/// <para>
/// So each duplicate asks for the first number of a line of its own, from
/// <see cref="Base"/> up (F_DUPFD_CLOEXEC with that minimum). Where the limit
/// on open files is too low for that, it takes the lowest free number, as
/// before: slower under churn, never wrong.
/// </para>
/// </remarks>
internal static class HotDescriptors
{
    /// <summary>The first number used: above the descriptors a process ordinarily has open.</summary>
    internal const int Base = 1024;

    /// <summary>Descriptors per 64-byte line of the kernel's table (one pointer each).</summary>
    internal const int PerLine = 8;

    /// <summary>Lines tracked: from <see cref="Base"/> up to descriptor 33791.</summary>
    private const int Lines = 4096;

    // Our descriptors per line. Native memory and interlocked counts rather
    // than a dictionary under a lock: an update duplicates and closes while
    // vCPUs notify, and a managed lock or dictionary written on every update
    // shares heap cache lines with whatever was allocated beside it, which may
    // be what a vCPU reads. Never freed (process-wide, like the table itself).
    // Touched only through Users, which checks the line.
    private static readonly unsafe int* s_users = (int*)NativeMemory.AllocZeroed(Lines * sizeof(int));
    private static int s_lowestFree; // a hint: no free line below it, give or take a racing close

    /// <summary>
    /// A close-on-exec duplicate of <paramref name="fd"/>, alone in its line
    /// where possible; -1 with errno set as fcntl(2) left it on failure.
    /// Close it with <see cref="Close"/>.
    /// </summary>
    internal static int Duplicate(SafeHandle fd)
    {
        int line = Volatile.Read(ref s_lowestFree);
        while (line < Lines && Interlocked.CompareExchange(ref Users(line), 1, 0) != 0) line++;
        int dup = line < Lines ? Interop.Fcntl(fd, Interop.F_DUPFD_CLOEXEC, Base + line * PerLine) : -1;
        // EINVAL: the minimum is at or past RLIMIT_NOFILE; EMFILE: no number
        // free from there up; or every line taken. A low number may still be free.
        if (dup < 0 && (line == Lines || Interop.LastErrno is Errno.EINVAL or Errno.EMFILE))
            dup = Interop.Fcntl(fd, Interop.F_DUPFD_CLOEXEC, 0);
        int got = LineOf(dup);
        if (got != line)
        {
            // Not the line claimed (a foreign descriptor held that number, or
            // the fallback): give the claim back, count the line we did get.
            if (line < Lines) Release(line);
            if (got >= 0) Interlocked.Increment(ref Users(got));
        }
        else if (line == Volatile.Read(ref s_lowestFree))
        {
            Interlocked.CompareExchange(ref s_lowestFree, line + 1, line);
        }
        return dup;
    }

    /// <summary>Closes a descriptor from <see cref="Duplicate"/> and frees its line.</summary>
    internal static void Close(int fd)
    {
        Interop.Close(fd);
        int line = LineOf(fd);
        if (line >= 0) Release(line);
    }

    /// <summary>
    /// The count of our descriptors in <paramref name="line"/>, to change with
    /// Interlocked only. Every caller already keeps line in [0, Lines) (the
    /// scan's bound, LineOf); the check here makes that a fact rather than a
    /// reading of three call sites, and this is the update path, not the
    /// notify path.
    /// </summary>
    private static unsafe ref int Users(int line)
    {
        if ((uint)line >= Lines) ThrowLine(line);
        // SAFETY: s_users is Lines ints, allocated once and never freed, and
        // line < Lines. Several threads update the same count at once (attach
        // and retire on different threads): every access is Interlocked, and
        // an int is naturally aligned in a block from AllocZeroed.
        return ref s_users[line];
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void ThrowLine(int line) =>
        throw new ArgumentOutOfRangeException(nameof(line), line, $"HotDescriptors tracks lines 0 to {Lines - 1}");

    /// <summary>The tracked line of <paramref name="fd"/>, or -1.</summary>
    private static int LineOf(int fd) => fd >= Base && (fd - Base) / PerLine < Lines ? (fd - Base) / PerLine : -1;

    private static void Release(int line)
    {
        if (Interlocked.Decrement(ref Users(line)) != 0) return;
        int hint;
        while (line < (hint = Volatile.Read(ref s_lowestFree)) && Interlocked.CompareExchange(ref s_lowestFree, line, hint) != hint) { }
    }
}
