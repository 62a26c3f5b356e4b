using System.Runtime.InteropServices;

namespace Sharpvisor.Native;

internal static partial class Interop
{
    // <spawn.h>
    internal const short POSIX_SPAWN_SETSIGDEF = 0x04;
    internal const short POSIX_SPAWN_SETSIGMASK = 0x08;

    /// <summary>
    /// Bytes to allocate for a posix_spawn_file_actions_t (glibc x86-64: 80),
    /// a posix_spawnattr_t (336) and a sigset_t (128). The structures are
    /// opaque to us and only ever touched by libc, so we reserve more than
    /// glibc uses today rather than mirror a layout that is not ours.
    /// </summary>
    internal const int PosixSpawnFileActionsSize = 256;
    internal const int PosixSpawnAttrSize = 1024;
    internal const int SigsetSize = 128;

    /// <summary>
    /// Unlike most calls, posix_spawn and its helpers return the error number
    /// instead of setting errno: 0 is success, anything else is an Errno.
    /// With glibc (clone with CLONE_VFORK) a failed execve in the child, such
    /// as ENOENT or EACCES, comes back here too.
    /// </summary>
    [LibraryImport(Libc, EntryPoint = "posix_spawn")]
    internal static unsafe partial int PosixSpawn(int* pid, byte* path, void* fileActions, void* attr, byte** argv, byte** envp);

    [LibraryImport(Libc, EntryPoint = "posix_spawn_file_actions_init")]
    internal static unsafe partial int PosixSpawnFileActionsInit(void* fileActions);

    [LibraryImport(Libc, EntryPoint = "posix_spawn_file_actions_destroy")]
    internal static unsafe partial int PosixSpawnFileActionsDestroy(void* fileActions);

    [LibraryImport(Libc, EntryPoint = "posix_spawn_file_actions_adddup2")]
    internal static unsafe partial int PosixSpawnFileActionsAddDup2(void* fileActions, int fd, int newfd);

    /// <summary>
    /// Closes every descriptor from <paramref name="from"/> up in the child
    /// (a GNU extension, glibc 2.34). Descriptors that .NET opens are
    /// close-on-exec, but ones inherited from our own parent (the <c>fd:</c>
    /// eventfds) are not, and would otherwise reach the child.
    /// </summary>
    [LibraryImport(Libc, EntryPoint = "posix_spawn_file_actions_addclosefrom_np")]
    internal static unsafe partial int PosixSpawnFileActionsAddClosefromNp(void* fileActions, int from);

    [LibraryImport(Libc, EntryPoint = "posix_spawnattr_init")]
    internal static unsafe partial int PosixSpawnattrInit(void* attr);

    [LibraryImport(Libc, EntryPoint = "posix_spawnattr_destroy")]
    internal static unsafe partial int PosixSpawnattrDestroy(void* attr);

    [LibraryImport(Libc, EntryPoint = "posix_spawnattr_setflags")]
    internal static unsafe partial int PosixSpawnattrSetflags(void* attr, short flags);

    [LibraryImport(Libc, EntryPoint = "posix_spawnattr_setsigdefault")]
    internal static unsafe partial int PosixSpawnattrSetsigdefault(void* attr, void* sigdefault);

    [LibraryImport(Libc, EntryPoint = "posix_spawnattr_setsigmask")]
    internal static unsafe partial int PosixSpawnattrSetsigmask(void* attr, void* sigmask);

    /// <summary>
    /// sigset_t as glibc lays it out: an array of unsigned longs where signal
    /// N is bit N-1 (word (N-1)/64), 128 bytes in all. Only signals 1-64
    /// exist on Linux, so the first word holds every one of them.
    /// </summary>
    internal const ulong SigsetAllLinuxSignals = ulong.MaxValue;
}
