using System.Runtime.InteropServices;

namespace Sharpvisor.Native;

internal static partial class Interop
{
    // <sys/wait.h>
    internal const int WNOHANG = 1;

    [LibraryImport(Libc, EntryPoint = "kill", SetLastError = true)]
    internal static partial int Kill(int pid, int sig);

    [LibraryImport(Libc, EntryPoint = "waitpid", SetLastError = true)]
    internal static unsafe partial int Waitpid(int pid, int* wstatus, int options);

    /// <summary>
    /// A descriptor that refers to process <paramref name="pid"/> and polls
    /// readable once it has exited (Linux 5.3, glibc 2.36). It is
    /// close-on-exec by default.
    /// </summary>
    /// <summary>geteuid(2): never fails.</summary>
    [LibraryImport(Libc, EntryPoint = "geteuid")]
    internal static partial uint GetEuid();

    [LibraryImport(Libc, EntryPoint = "pidfd_open", SetLastError = true)]
    internal static partial int PidfdOpen(int pid, uint flags);
}
