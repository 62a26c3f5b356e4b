namespace Sharpvisor.Native;

/// <summary>
/// How a reaped child ended: it exited with <see cref="Code"/>, or a signal
/// killed it (<see cref="Signal"/> is nonzero). Decoded from the status word
/// of waitpid(2), which packs both.
/// </summary>
public readonly record struct ChildExit(int Code, Signal Signal, bool CoreDumped)
{
    /// <summary>True if the child called exit (or returned from main); false if a signal killed it.</summary>
    public bool Exited => Signal == 0;

    /// <summary>The status a shell would report for it: the exit code, or 128 + the signal number.</summary>
    public int ShellStatus => Exited ? Code : 128 + (int)Signal;

    /// <summary>
    /// The status word: bits 0-6 are the killing signal (0 for a normal exit,
    /// 0x7f for a stopped child, which we never ask about), bit 7 a core dump,
    /// bits 8-15 the exit code. These are the WIFEXITED/WTERMSIG macros, unrolled.
    /// </summary>
    internal static ChildExit FromWaitStatus(int status)
    {
        int signal = status & 0x7f;
        return signal == 0
            ? new ChildExit((status >> 8) & 0xff, 0, false)
            : new ChildExit(0, (Signal)signal, (status & 0x80) != 0);
    }

    public override string ToString() =>
        Exited ? $"exit status {Code}" : $"killed by {Signal.Name()}{(CoreDumped ? " (core dumped)" : "")}";
}
