namespace Sharpvisor.Native;

/// <summary>Why <see cref="DiskFile.TryOpen"/> refused a path.</summary>
public enum DiskOpenFailure
{
    None,
    /// <summary>Nothing is there (ENOENT, or a dangling path component).</summary>
    Missing,
    /// <summary>It exists but cannot be opened as asked (permissions, a read-only file system for a writable disk, ...).</summary>
    CannotOpen,
    /// <summary>It is not a regular file (a directory, a FIFO, a device).</summary>
    NotRegular,
    /// <summary>Another process holds a conflicting lock on it.</summary>
    Locked,
}

/// <summary>
/// A disk image: a regular file opened for reading (or reading and writing),
/// held under an advisory flock(2) for as long as it is open (exclusive for a
/// writable disk, shared for a read-only one), so two virtual machines never
/// write one image at once. Reads and writes are vectored and positioned
/// (preadv/pwritev), so they need no seek and no lock of ours, and move data
/// straight between the file and the caller's buffers.
/// </summary>
public sealed class DiskFile : IDisposable
{
    private readonly SafeFdHandle _handle;

    private DiskFile(SafeFdHandle handle, long length, ulong device, ulong inode, bool readOnly)
    {
        _handle = handle;
        Length = length;
        Device = device;
        Inode = inode;
        ReadOnly = readOnly;
    }

    /// <summary>Bytes in the file when it was opened.</summary>
    public long Length { get; }

    /// <summary>st_dev and st_ino: what names this file stably across runs.</summary>
    public ulong Device { get; }

    public ulong Inode { get; }

    public bool ReadOnly { get; }

    /// <summary>
    /// Opens <paramref name="path"/> and locks it without waiting. On failure
    /// returns false with the reason, the errno behind it (0 when none) and
    /// <paramref name="file"/> null.
    /// </summary>
    public static unsafe bool TryOpen(string path, bool readOnly, out DiskFile? file, out DiskOpenFailure failure, out Errno errno)
    {
        file = null;
        failure = DiskOpenFailure.None;
        errno = 0;
        if (path.Length == 0 || path.Contains('\0'))
        {
            failure = DiskOpenFailure.Missing;
            errno = Errno.ENOENT;
            return false;
        }
        // O_NONBLOCK: a FIFO put at the path would otherwise block the open
        // until a writer came; for a regular file the flag changes nothing.
        int flags = (readOnly ? Interop.O_RDONLY : Interop.O_RDWR) | Interop.O_CLOEXEC | Interop.O_NOCTTY | Interop.O_NONBLOCK;
        int fd;
        do fd = Interop.Open(path, flags, 0);
        while (fd < 0 && Interop.LastErrno == Errno.EINTR);
        if (fd < 0)
        {
            errno = Interop.LastErrno;
            failure = errno is Errno.ENOENT or Errno.ENOTDIR ? DiskOpenFailure.Missing
                : errno == Errno.EISDIR ? DiskOpenFailure.NotRegular
                : DiskOpenFailure.CannotOpen;
            return false;
        }
        var handle = new SafeFdHandle(fd, ownsHandle: true);
        Interop.Stat st;
        if (Interop.FStat(handle, &st) != 0)
        {
            errno = Interop.LastErrno;
            handle.Dispose();
            failure = DiskOpenFailure.CannotOpen;
            return false;
        }
        if ((st.Mode & Interop.S_IFMT) != Interop.S_IFREG)
        {
            handle.Dispose();
            failure = DiskOpenFailure.NotRegular;
            return false;
        }
        int op = (readOnly ? Interop.LOCK_SH : Interop.LOCK_EX) | Interop.LOCK_NB;
        int rc;
        do rc = Interop.Flock(handle, op);
        while (rc != 0 && Interop.LastErrno == Errno.EINTR);
        if (rc != 0)
        {
            errno = Interop.LastErrno;
            handle.Dispose();
            failure = errno == Errno.EAGAIN ? DiskOpenFailure.Locked : DiskOpenFailure.CannotOpen;
            return false;
        }
        file = new DiskFile(handle, st.Size, st.Dev, st.Ino, readOnly);
        return true;
    }

    /// <summary>
    /// Reads exactly the total length of <paramref name="vectors"/> from
    /// <paramref name="offset"/> on, retrying short reads. The span is used up:
    /// its entries are advanced past what was read. False with the errno on an
    /// error, EIO if the file ended first (it shrank under us). Never throws.
    /// </summary>
    public unsafe bool TryReadAt(Span<IoVector> vectors, long offset, out Errno errno) =>
        Transfer(vectors, offset, write: false, out errno);

    /// <summary>Writes exactly the total length of <paramref name="vectors"/> at <paramref name="offset"/>; as <see cref="TryReadAt"/>.</summary>
    public unsafe bool TryWriteAt(Span<IoVector> vectors, long offset, out Errno errno) =>
        Transfer(vectors, offset, write: true, out errno);

    /// <summary>Reads <paramref name="into"/>'s length from <paramref name="offset"/> on, as the vectored <see cref="TryReadAt(Span{IoVector}, long, out Errno)"/> with one vector.</summary>
    public unsafe bool TryReadAt(Span<byte> into, long offset, out Errno errno)
    {
        fixed (byte* p = into)
        {
            // SAFETY: the span is pinned for the call, and the vector covers exactly it.
            Span<IoVector> v = [new IoVector(p, (nuint)into.Length)];
            return Transfer(v, offset, write: false, out errno);
        }
    }

    /// <summary>Writes all of <paramref name="from"/> at <paramref name="offset"/>, as <see cref="TryWriteAt(Span{IoVector}, long, out Errno)"/> with one vector.</summary>
    public unsafe bool TryWriteAt(ReadOnlySpan<byte> from, long offset, out Errno errno)
    {
        fixed (byte* p = from)
        {
            // SAFETY: pinned for the call; a write only reads the buffer.
            Span<IoVector> v = [new IoVector(p, (nuint)from.Length)];
            return Transfer(v, offset, write: true, out errno);
        }
    }

    /// <summary>fdatasync(2): the data written so far is on stable storage. Never throws.</summary>
    public bool TryDataSync(out Errno errno)
    {
        while (true)
        {
            if (Interop.FDataSync(_handle) == 0) { errno = 0; return true; }
            errno = Interop.LastErrno;
            if (errno != Errno.EINTR) return false;
        }
    }

    private unsafe bool Transfer(Span<IoVector> vectors, long offset, bool write, out Errno errno)
    {
        errno = 0;
        int first = 0;
        while (first < vectors.Length && vectors[first].Length == 0) first++;
        fixed (IoVector* iov = vectors)
        {
            while (first < vectors.Length)
            {
                // SAFETY: iov points at the caller's span, pinned here, and
                // first < its length; the buffers it names are the caller's
                // to guarantee (IoVector's remarks). At most IOV_MAX (1024)
                // entries per call.
                int count = Math.Min(vectors.Length - first, 1024);
                nint n = write
                    ? Interop.PWriteV(_handle, iov + first, count, offset)
                    : Interop.PReadV(_handle, iov + first, count, offset);
                if (n < 0)
                {
                    errno = Interop.LastErrno;
                    if (errno == Errno.EINTR) continue;
                    return false;
                }
                if (n == 0)
                {
                    errno = Errno.EIO; // the file ended (or a zero-length write): no progress
                    return false;
                }
                offset += n;
                nuint done = (nuint)n;
                while (done > 0 && first < vectors.Length)
                {
                    ref IoVector v = ref vectors[first];
                    nuint step = done < v.Length ? done : v.Length;
                    // SAFETY: step <= v.Length, so the pointer stays inside (or at the end of) the caller's buffer.
                    v.Base += step;
                    v.Length -= step;
                    done -= step;
                    if (v.Length == 0) first++;
                }
                while (first < vectors.Length && vectors[first].Length == 0) first++;
            }
        }
        return true;
    }

    public void Dispose() => _handle.Dispose(); // closing the descriptor drops the flock
}
