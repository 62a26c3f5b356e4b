using System.Runtime.InteropServices;

namespace Sharpvisor.Native;

// The descriptors the map owns: its own duplicate of each attached eventfd.
public sealed unsafe partial class EventfdMap
{
    /// <summary>
    /// Duplicates <paramref name="fd"/> and checks with the kernel that it is an
    /// eventfd. The duplicate shares the open file description (and so the
    /// counter and its flags) and is close-on-exec.
    /// </summary>
    private static int DuplicateEventFd(SafeHandle fd, string op, bool checkKind)
    {
        if (fd.IsClosed || fd.IsInvalid) ThrowHelper.ThrowErrno(op, Errno.EBADF, "the descriptor is closed");
        bool addedRef = false;
        int dupFd;
        try
        {
            fd.DangerousAddRef(ref addedRef);
            // Each alone in a line of the kernel's descriptor table (see HotDescriptors).
            dupFd = HotDescriptors.Duplicate(fd);
            if (dupFd < 0)
            {
                Errno e = Interop.LastErrno;
                ThrowHelper.ThrowErrno(op, e, e == Errno.EBADF ? $"descriptor {(int)fd.DangerousGetHandle()} is not open" : null);
            }
        }
        catch (ObjectDisposedException)
        {
            ThrowHelper.ThrowErrno(op, Errno.EBADF, "the descriptor is closed");
            throw; // unreachable
        }
        finally
        {
            if (addedRef) fd.DangerousRelease();
        }

        if (!checkKind) return dupFd;
        try
        {
            FdInfo info = FdInfo.Read(dupFd, op);
            if (!info.IsEventFd)
                ThrowHelper.ThrowErrno(op, Errno.EINVAL, $"descriptor {(int)fd.DangerousGetHandle()} is {info.Kind}, not an eventfd");
        }
        catch
        {
            HotDescriptors.Close(dupFd);
            throw;
        }
        return dupFd;
    }
}
