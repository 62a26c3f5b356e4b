namespace Sharpvisor.Native;

/// <summary>
/// The one exception a failed system call (or a refused request with an errno
/// meaning, such as a duplicate map value) becomes. Its message is one line,
/// fit for a user: <c>eventfd: EMFILE (Too many open files)</c>.
/// </summary>
public sealed class ErrnoException : IOException
{
    public ErrnoException(string operation, Errno errno, string? detail = null)
        : base(Format(operation, errno, detail))
    {
        Operation = operation;
        Errno = errno;
        HResult = (int)errno;
    }

    /// <summary>The call or operation that failed, e.g. <c>eventfd</c> or <c>EventfdMap.Add</c>.</summary>
    public string Operation { get; }

    public Errno Errno { get; }

    private static string Format(string operation, Errno errno, string? detail) =>
        $"{operation}: {errno.Name()} ({detail ?? errno.Describe()})";
}
