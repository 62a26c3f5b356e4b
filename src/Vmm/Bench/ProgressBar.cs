namespace Sharpvisor.Vmm.Bench;

/// <summary>
/// A one-line progress bar on stderr, redrawn in place with a carriage
/// return; silent unless stderr is a terminal, so logs and tests stay clean.
/// Ours rather than a library's: a dozen lines, AOT-safe, one file.
/// </summary>
internal sealed class ProgressBar(TextWriter stderr, int steps, bool enabled)
{
    private const int Width = 30;

    public void Show(int done, string what)
    {
        if (!enabled) return;
        int filled = steps == 0 ? Width : done * Width / steps;
        stderr.Write($"\r[{new string('#', filled)}{new string('.', Width - filled)}] {done}/{steps} {what,-32}");
        stderr.Flush();
    }

    public void Done()
    {
        if (!enabled) return;
        stderr.Write($"\r{new string(' ', Width + 48)}\r");
        stderr.Flush();
    }
}
