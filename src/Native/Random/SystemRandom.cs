namespace Sharpvisor.Native;

/// <summary>The kernel's random numbers (getrandom(2)), straight into a caller's buffer.</summary>
public static class SystemRandom
{
    /// <summary>
    /// Fills [<paramref name="buffer"/>, buffer + <paramref name="length"/>)
    /// with random bytes, looping over the kernel's short returns (it gives at
    /// most 32 MiB per call). The caller guarantees the range is live,
    /// writable memory of theirs. False with the errno on failure; never throws.
    /// </summary>
    public static unsafe bool TryFill(byte* buffer, nuint length, out Errno errno)
    {
        errno = 0;
        while (length > 0)
        {
            // SAFETY: the range is the caller's (above); each step stays inside it.
            nint n = Interop.GetRandom(buffer, length, 0);
            if (n < 0)
            {
                errno = Interop.LastErrno;
                if (errno == Errno.EINTR) continue;
                return false;
            }
            buffer += n;
            length -= (nuint)n;
        }
        return true;
    }
}
