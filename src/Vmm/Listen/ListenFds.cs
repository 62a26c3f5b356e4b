using System.Globalization;

namespace Sharpvisor.Vmm.Listen;

/// <summary>One descriptor handed to <c>sharpvisor listen</c>: its number and its name.</summary>
public sealed record ListenedFd(int Fd, string Name);

/// <summary>
/// The receiving side of systemd's <c>sd_listen_fds</c> handshake, which an
/// <c>exec:</c> target's child gets: <c>LISTEN_FDS=n</c> descriptors from 3
/// on, <c>LISTEN_PID</c> the process meant to take them, and
/// <c>LISTEN_FDNAMES</c> their names joined by ':' (<c>notify-0x10:irq-5</c>).
/// </summary>
public static class ListenFds
{
    /// <summary>The first descriptor of the handshake (SD_LISTEN_FDS_START).</summary>
    public const int First = 3;

    /// <summary>
    /// Reads the handshake from <paramref name="variable"/> (an environment)
    /// for process <paramref name="pid"/>. False with a one-line message when
    /// there is none or it is not for us. A LISTEN_PID that is unset is
    /// accepted (a caller that set LISTEN_FDS by hand); one naming another
    /// process is not: the descriptors were meant for it (sd_listen_fds would
    /// ignore them; we say so instead of waiting on nothing). Names default
    /// to <c>fd3</c>, <c>fd4</c>... when LISTEN_FDNAMES is unset.
    /// </summary>
    public static bool TryParse(Func<string, string?> variable, int pid, out ListenedFd[] fds, out string error)
    {
        fds = [];
        string? count = variable("LISTEN_FDS");
        if (count is null)
        {
            error = "no descriptors: LISTEN_FDS is not set (run it as an exec: target, as in --notify '0x10=exec:$SHARPVISOR listen', or pass eventfds from descriptor 3 with LISTEN_FDS=N)";
            return false;
        }
        if (!int.TryParse(count, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n is < 1 or > 1024)
        {
            error = $"LISTEN_FDS '{count}' must be a number of descriptors from 1 to 1024";
            return false;
        }
        string? owner = variable("LISTEN_PID");
        if (owner is not null && owner != pid.ToString(CultureInfo.InvariantCulture))
        {
            error = $"LISTEN_PID is {owner}, not this process ({pid}): the descriptors were passed to another process (an exec: CMD that is a pipeline or a compound command does not get a valid LISTEN_PID)";
            return false;
        }
        string[] names = variable("LISTEN_FDNAMES") is string joined
            ? joined.Split(':')
            : Enumerable.Range(First, n).Select(fd => $"fd{fd}").ToArray();
        if (names.Length != n)
        {
            error = $"LISTEN_FDNAMES has {names.Length} names for LISTEN_FDS={n} descriptors";
            return false;
        }
        if (names.FirstOrDefault(name => name.Length == 0 || name.Any(char.IsWhiteSpace)) is string bad)
        {
            error = $"LISTEN_FDNAMES holds the name '{bad}': a name is not empty and has no blanks";
            return false;
        }
        if (names.GroupBy(x => x, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } twice)
        {
            error = $"LISTEN_FDNAMES names '{twice.Key}' twice";
            return false;
        }
        fds = names.Select((name, i) => new ListenedFd(First + i, name)).ToArray();
        error = "";
        return true;
    }
}
