namespace Sharpvisor.Native;

/// <summary>
/// A terminal on a console device's input, set so that what is typed reaches
/// the guest as typed: no line editing, no local echo, no translation of
/// carriage returns, no flow control, each byte as it comes (the guest's
/// driver echoes, as a real serial console's far end does). Two things stay:
/// output processing (so a guest's "\n" still starts a line on the screen)
/// and the signal keys, so that Ctrl-C stops the VM as SIGINT does anywhere
/// else. Dispose puts back the settings found.
/// </summary>
/// <example>
/// <code>
/// using RawTerminal? raw = RawTerminal.TryEnter(stdin); // null: not a terminal
/// RunTheVm();
/// </code>
/// </example>
public sealed unsafe class RawTerminal : IDisposable
{
    private readonly SafeFdHandle _fd;
    private Interop.Termios _saved;
    private bool _restored;

    private RawTerminal(SafeFdHandle fd, Interop.Termios saved)
    {
        _fd = fd;
        _saved = saved;
    }

    /// <summary>True if <paramref name="fd"/> is a terminal.</summary>
    public static bool IsTerminal(SafeFdHandle fd)
    {
        Interop.Termios t;
        return Interop.TcGetAttr(fd, &t) == 0;
    }

    /// <summary>
    /// Sets the terminal on <paramref name="fd"/> as the summary says; null
    /// if it is no terminal, or refuses the change (then nothing changed).
    /// The handle must stay open until this is disposed.
    /// </summary>
    public static RawTerminal? TryEnter(SafeFdHandle fd)
    {
        Interop.Termios saved;
        if (Interop.TcGetAttr(fd, &saved) != 0) return null;
        Interop.Termios raw = saved;
        raw.IFlag &= ~(Interop.IGNBRK | Interop.BRKINT | Interop.PARMRK | Interop.ISTRIP | Interop.INLCR | Interop.IGNCR | Interop.ICRNL | Interop.IXON);
        raw.LFlag &= ~(Interop.ECHO | Interop.ECHONL | Interop.ICANON | Interop.IEXTEN);
        raw.Cc[Interop.VMIN] = 1; // a read returns as soon as one byte is there
        raw.Cc[Interop.VTIME] = 0;
        if (Interop.TcSetAttr(fd, Interop.TCSANOW, &raw) != 0) return null;
        return new RawTerminal(fd, saved);
    }

    /// <summary>Puts back the settings found (once; a terminal gone meanwhile is no error).</summary>
    public void Dispose()
    {
        if (_restored || _fd.IsClosed) return;
        _restored = true;
        fixed (Interop.Termios* saved = &_saved)
            Interop.TcSetAttr(_fd, Interop.TCSANOW, saved);
    }
}
