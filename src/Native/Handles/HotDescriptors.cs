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
/// next to the notified descriptor cost the notifying vCPU about a third of
/// its rate; the same thread working 4096 descriptors away cost nothing.
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

    private static readonly Lock s_lock = new();
    private static readonly Dictionary<int, int> s_users = []; // line -> our descriptors in it
    private static int s_lowestFree;                           // no free line below this one

    /// <summary>
    /// A close-on-exec duplicate of <paramref name="fd"/>, alone in its line
    /// where possible; -1 with errno set as fcntl(2) left it on failure.
    /// Close it with <see cref="Close"/>.
    /// </summary>
    internal static int Duplicate(SafeHandle fd)
    {
        lock (s_lock)
        {
            int line = s_lowestFree;
            while (s_users.ContainsKey(line)) line++;
            int dup = Interop.Fcntl(fd, Interop.F_DUPFD_CLOEXEC, Base + line * PerLine);
            // EINVAL: the minimum is at or past RLIMIT_NOFILE; EMFILE: no
            // number free from there up. Either way a low number may still be free.
            if (dup < 0 && Interop.LastErrno is Errno.EINVAL or Errno.EMFILE)
                dup = Interop.Fcntl(fd, Interop.F_DUPFD_CLOEXEC, 0);
            if (dup >= Base)
            {
                // Usually the line asked for; another line if a foreign
                // descriptor held that number (then shared, and counted).
                int got = (dup - Base) / PerLine;
                s_users[got] = s_users.GetValueOrDefault(got) + 1;
                if (got == s_lowestFree) s_lowestFree++;
            }
            return dup;
        }
    }

    /// <summary>Closes a descriptor from <see cref="Duplicate"/> and frees its line.</summary>
    internal static void Close(int fd)
    {
        Interop.Close(fd);
        if (fd < Base) return;
        lock (s_lock)
        {
            int line = (fd - Base) / PerLine;
            if (!s_users.TryGetValue(line, out int n)) return;
            if (n > 1)
            {
                s_users[line] = n - 1;
                return;
            }
            s_users.Remove(line);
            s_lowestFree = Math.Min(s_lowestFree, line);
        }
    }
}
