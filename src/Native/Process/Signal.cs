namespace Sharpvisor.Native;

/// <summary>
/// Linux signal numbers (x86-64) that Sharpvisor sends or may see end a child.
/// Like <see cref="Errno"/>, the names are the kernel's, because that is what
/// a user reads in a message; a number missing here prints as <c>signal N</c>.
/// </summary>
public enum Signal
{
    SIGHUP = 1, SIGINT = 2, SIGQUIT = 3, SIGILL = 4, SIGTRAP = 5, SIGABRT = 6,
    SIGBUS = 7, SIGFPE = 8, SIGKILL = 9, SIGUSR1 = 10, SIGSEGV = 11, SIGUSR2 = 12,
    SIGPIPE = 13, SIGALRM = 14, SIGTERM = 15, SIGCHLD = 17, SIGCONT = 18,
    SIGSTOP = 19, SIGTSTP = 20, SIGXCPU = 24, SIGXFSZ = 25, SIGSYS = 31,
}

public static class SignalExtensions
{
    /// <summary>The symbolic name (<c>SIGTERM</c>), or <c>signal N</c> for one we do not list.</summary>
    public static string Name(this Signal signal) =>
        Enum.IsDefined(signal) ? signal.ToString() : $"signal {(int)signal}";
}
