namespace Sharpvisor.Native;

/// <summary>
/// A file with no name: its data lives while this object (or any other open
/// of it) does, and goes with the last close, also when the process is
/// killed, since there is no path to clean up. Other code opens it again
/// through <see cref="Path"/>, /proc/self/fd/N, as it would open any file
/// (a <see cref="DiskFile"/>, a benchmark's disk image).
/// </summary>
/// <remarks>
/// Made with O_TMPFILE where the file system has it (tmpfs, ext4, xfs,
/// btrfs); elsewhere as a new file with a random name, unlinked at once.
/// </remarks>
/// <example>
/// <code>
/// using ScratchFile scratch = ScratchFile.Create(System.IO.Path.GetTempPath());
/// DiskFile.TryOpen(scratch.Path, readOnly: false, out DiskFile? disk, out _, out _);
/// </code>
/// </example>
public sealed class ScratchFile : IDisposable
{
    private readonly SafeFdHandle _handle;

    private ScratchFile(SafeFdHandle handle)
    {
        _handle = handle;
        Path = $"/proc/self/fd/{handle.Fd.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
    }

    /// <summary>Where this process opens the file again while this object lives.</summary>
    public string Path { get; }

    /// <summary>A new, empty file in <paramref name="directory"/>, readable and writable by its owner only.</summary>
    /// <exception cref="ErrnoException">The directory refuses a new file (missing, read-only, full).</exception>
    public static ScratchFile Create(string directory)
    {
        const uint Mode = 0x180; // 0600
        int fd = OpenRetrying(directory, Interop.O_TMPFILE | Interop.O_RDWR | Interop.O_CLOEXEC, Mode);
        if (fd < 0 && Interop.LastErrno is Errno.EOPNOTSUPP or Errno.EISDIR or Errno.EINVAL)
        {
            // No O_TMPFILE here: a named file, gone from the directory at once.
            for (int attempt = 0; attempt < 100 && fd < 0; attempt++)
            {
                string name = System.IO.Path.Combine(directory, $".sharpvisor-scratch-{Guid.NewGuid():n}");
                fd = OpenRetrying(name, Interop.O_CREAT | Interop.O_EXCL | Interop.O_RDWR | Interop.O_CLOEXEC, Mode);
                if (fd >= 0) Interop.Unlink(name);
                else if (Interop.LastErrno != Errno.EEXIST) break;
            }
        }
        if (fd < 0) ThrowHelper.ThrowLastErrno($"creating a scratch file in {directory}");
        return new ScratchFile(new SafeFdHandle(fd, ownsHandle: true));
    }

    private static int OpenRetrying(string path, int flags, uint mode)
    {
        int fd;
        do fd = Interop.Open(path, flags, mode);
        while (fd < 0 && Interop.LastErrno == Errno.EINTR);
        return fd;
    }

    public void Dispose() => _handle.Dispose();
}
