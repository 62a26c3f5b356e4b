using System.Globalization;
using Sharpvisor.Native;
using Sharpvisor.Vmm.Interrupts;
using Sharpvisor.Vmm.Notify;

namespace Sharpvisor.Vmm.Launcher;

/// <summary>The kinds of TARGET a <c>--notify</c> or <c>--irq</c> can name.</summary>
public enum TargetKind
{
    /// <summary><c>fd:N</c>: an eventfd the caller opened and passed down as descriptor N.</summary>
    Fd,
    /// <summary><c>unix:PATH</c>: an eventfd Sharpvisor creates and hands, at start, to the listener on the Unix socket at PATH (<see cref="UnixTarget"/>).</summary>
    Unix,

    /// <summary><c>exec:CMD</c>: an eventfd Sharpvisor creates and gives to a child it starts (see <see cref="ExecChildren"/>).</summary>
    Exec,
}

/// <summary>Where a notification goes or an interrupt comes from, as given on the command line.</summary>
/// <param name="Kind">The part before the first ':'.</param>
/// <param name="Fd">For <see cref="TargetKind.Fd"/>, the descriptor number.</param>
/// <param name="Text">The target as written, for messages.</param>
public sealed record Target(TargetKind Kind, int Fd, string Text)
{
    /// <summary>For <see cref="TargetKind.Exec"/>, the command: everything after <c>exec:</c>, as given.</summary>
    public string Command => Kind == TargetKind.Exec ? Text["exec:".Length..] : "";

    public override string ToString() => Text;
}

/// <summary><c>--notify VALUE=TARGET</c>: notifications of <paramref name="Value"/> go to the target's eventfd.</summary>
public sealed record NotifySpec(uint Value, Target Target)
{
    /// <summary>The option as we name it in messages, with the value in its canonical form (<c>0x10=fd:3</c>).</summary>
    public override string ToString() => $"--notify {Notifier.Name(Value)}={Target}";
}

/// <summary><c>--irq N=TARGET</c>: a write to the target's eventfd makes interrupt <paramref name="Line"/> pending.</summary>
public sealed record IrqSpec(int Line, Target Target)
{
    public override string ToString() => $"--irq {Line}={Target}";
}

/// <summary>
/// Parsing of <c>VALUE=TARGET</c> (usage errors, exit 64, one line each) and
/// opening of targets (unavailable, exit 69). TARGET is split from VALUE at the
/// first '=', and its kind from the rest at the first ':'.
/// </summary>
public static class Targets
{
    /// <summary>Parses every <c>--notify</c> given; a value given twice (in any spelling) is an error.</summary>
    public static bool TryParseNotify(IEnumerable<string> texts, out NotifySpec[] specs, out string error)
    {
        var list = new List<NotifySpec>();
        specs = [];
        foreach (string text in texts)
        {
            if (!Split("--notify", text, "0x10=fd:3", out string left, out string right, out error)) return false;
            if (!TryParseNumber(left, out uint value) || value == 0)
            {
                error = $"--notify '{text}': VALUE '{left}' must be a nonzero 32-bit number, decimal or 0x-hex";
                return false;
            }
            if (!TryParseTarget("--notify", text, right, out Target? target, out error)) return false;
            if (list.Any(s => s.Value == value))
            {
                error = $"--notify {Notifier.Name(value)} is given twice";
                return false;
            }
            list.Add(new NotifySpec(value, target!));
        }
        specs = [.. list];
        error = "";
        return true;
    }

    /// <summary>Parses every <c>--irq</c> given; N is 1..31, each at most once.</summary>
    public static bool TryParseIrq(IEnumerable<string> texts, out IrqSpec[] specs, out string error)
    {
        var list = new List<IrqSpec>();
        specs = [];
        foreach (string text in texts)
        {
            if (!Split("--irq", text, "5=fd:4", out string left, out string right, out error)) return false;
            if (!TryParseNumber(left, out uint line) || line is 0 or > InterruptController.MaxLine)
            {
                error = $"--irq '{text}': N '{left}' must be an interrupt number from 1 to {InterruptController.MaxLine}";
                return false;
            }
            if (!TryParseTarget("--irq", text, right, out Target? target, out error)) return false;
            if (list.Any(s => s.Line == line))
            {
                error = $"--irq {line} is given twice";
                return false;
            }
            list.Add(new IrqSpec((int)line, target!));
        }
        specs = [.. list];
        error = "";
        return true;
    }

    /// <summary>Decimal, or hex with 0x; 32 bits; no sign, no spaces.</summary>
    internal static bool TryParseNumber(string text, out uint value)
    {
        value = 0;
        return text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? text.Length > 2 && uint.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value)
            : uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }

    private static bool Split(string option, string text, string example, out string left, out string right, out string error)
    {
        int eq = text.IndexOf('=');
        left = eq < 0 ? text : text[..eq];
        right = eq < 0 ? "" : text[(eq + 1)..];
        error = eq < 0 ? $"{option} '{text}' must be {(option == "--irq" ? "N" : "VALUE")}=TARGET, as in {option} {example}" : "";
        return eq >= 0;
    }

    private static bool TryParseTarget(string option, string whole, string text, out Target? target, out string error)
    {
        target = null;
        int colon = text.IndexOf(':');
        if (colon < 0)
        {
            error = $"{option} '{whole}': TARGET '{text}' has no kind; this version knows fd:N, unix:PATH and exec:CMD";
            return false;
        }
        string kind = text[..colon], rest = text[(colon + 1)..];
        if (kind == "unix")
        {
            // The path is kept as written (Text is "unix:PATH"); connect checks the rest at start.
            error = rest.Length == 0 ? $"{option} '{whole}': unix:PATH needs the path of a Unix socket"
                : System.Text.Encoding.UTF8.GetByteCount(rest) > 107 ? $"{option} '{whole}': a Unix socket path has at most 107 bytes"
                : "";
            target = error.Length == 0 ? new Target(TargetKind.Unix, -1, text) : null;
            return error.Length == 0;
        }
        if (kind == "exec")
        {
            // Only the syntax here (exit 64); whether the program exists is
            // looked up with the child's real environment before the VM starts
            // (exit 69). Any nonempty value stands in for the variables.
            target = new Target(TargetKind.Exec, -1, text);
            error = ShellWords.TryFindProgram(rest, _ => "x", out _, out string why) ? "" : $"{option} '{whole}': CMD {why}";
            return error.Length == 0;
        }
        if (kind != "fd")
        {
            error = $"{option} '{whole}': unknown TARGET kind '{kind}'; this version knows fd:N, unix:PATH and exec:CMD";
            return false;
        }
        if (!int.TryParse(rest, NumberStyles.None, CultureInfo.InvariantCulture, out int fd))
        {
            error = $"{option} '{whole}': fd:N needs a descriptor number, not '{rest}'";
            return false;
        }
        target = new Target(TargetKind.Fd, fd, $"fd:{fd}");
        error = "";
        return true;
    }

    /// <summary>
    /// Opens <paramref name="target"/>: for <c>fd:N</c>, a duplicate of N after
    /// checking that it is an eventfd (N itself stays open and its flags are
    /// never changed); for <c>unix:PATH</c>, a new eventfd handed to the
    /// listener at PATH. The caller owns the result.
    /// </summary>
    /// <exception cref="TargetUnavailableException">N is not open, or not an eventfd; no listener at PATH.</exception>
    public static EventFd Open(object spec, Target target)
    {
        if (target.Kind == TargetKind.Unix)
            return UnixTarget.Open(spec, target.Text["unix:".Length..]);
        try
        {
            return EventFd.DuplicateFrom(target.Fd);
        }
        catch (ErrnoException e)
        {
            string why = e.Errno == Errno.EBADF
                ? $"descriptor {target.Fd} is not open"
                : e.Message.StartsWith(e.Operation + ": ", StringComparison.Ordinal) ? e.Message[(e.Operation.Length + 2)..] : e.Message;
            throw new TargetUnavailableException($"{spec}: target unavailable: {why}");
        }
    }
}

/// <summary>A target named on the command line cannot be used (exit 69); the message is the one line to print.</summary>
public sealed class TargetUnavailableException(string message) : Exception(message);
