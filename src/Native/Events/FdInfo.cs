namespace Sharpvisor.Native;

/// <summary>
/// What the kernel says about one of our descriptors, from
/// <c>/proc/self/fdinfo/N</c> and <c>/proc/self/fd/N</c>: the oracle for
/// "is this really an eventfd", since no system call answers that directly.
/// </summary>
internal readonly record struct FdInfo(string Kind, bool IsEventFd, bool NonBlocking, bool CloseOnExec, bool Semaphore, ulong Count)
{
    /// <exception cref="ErrnoException">EBADF if <paramref name="fd"/> is not open.</exception>
    internal static FdInfo Read(int fd, string operation)
    {
        if (fd < 0 || Interop.Fcntl(fd, Interop.F_GETFD, 0) < 0)
            ThrowHelper.ThrowErrno(operation, Errno.EBADF, $"descriptor {fd} is not open");

        string kind;
        string[] lines;
        try
        {
            kind = new FileInfo($"/proc/self/fd/{fd}").LinkTarget ?? "unknown";
            lines = File.ReadAllLines($"/proc/self/fdinfo/{fd}");
        }
        catch (IOException)
        {
            // Closed between the fcntl and the read (another thread).
            ThrowHelper.ThrowErrno(operation, Errno.EBADF, $"descriptor {fd} is not open");
            throw; // unreachable
        }

        bool isEventFd = false, nonBlocking = false, cloexec = false, semaphore = false;
        ulong count = 0;
        foreach (string line in lines)
        {
            int colon = line.IndexOf(':');
            if (colon < 0) continue;
            string key = line[..colon];
            string val = line[(colon + 1)..].Trim();
            switch (key)
            {
                case "flags":
                    // Octal, as the kernel prints it.
                    int flags = Convert.ToInt32(val, 8);
                    nonBlocking = (flags & Interop.O_NONBLOCK) != 0;
                    cloexec = (flags & Interop.O_CLOEXEC) != 0;
                    break;
                case "eventfd-count":
                    isEventFd = true;
                    count = Convert.ToUInt64(val, 16);
                    break;
                case "eventfd-semaphore":
                    semaphore = val == "1";
                    break;
            }
        }
        return new FdInfo(kind, isEventFd, nonBlocking, cloexec, semaphore, count);
    }
}
