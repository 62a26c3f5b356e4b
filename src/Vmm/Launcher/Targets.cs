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

/// <summary>
/// A <c>--notify</c> or <c>--irq</c> as given: a number (the notify value,
/// the interrupt line) and the target whose eventfd serves it. Parsing,
/// opening and attaching treat both kinds alike; only what the number means
/// differs.
/// </summary>
public abstract record TargetSpec(Target Target)
{
    /// <summary>The eventfd's name where a listener sees it (LISTEN_FDNAMES, a unix: listener's lines): <c>notify-0x10</c>, <c>irq-5</c>.</summary>
    public abstract string Name { get; }

    /// <summary>Makes <paramref name="fd"/> serve this spec's number in <paramref name="machine"/>.</summary>
    internal abstract void Attach(Machine machine, EventFd fd);
}

/// <summary><c>--notify VALUE=TARGET</c>: notifications of <paramref name="Value"/> go to the target's eventfd.</summary>
public sealed record NotifySpec(uint Value, Target Target) : TargetSpec(Target)
{
    public override string Name => $"notify-{Notifier.Name(Value)}";

    internal override void Attach(Machine machine, EventFd fd) => machine.Notifier.Attach(Value, fd);

    /// <summary>The option as we name it in messages, with the value in its canonical form (<c>0x10=fd:3</c>).</summary>
    public override string ToString() => $"--notify {Notifier.Name(Value)}={Target}";
}

/// <summary><c>--irq N=TARGET</c>: a write to the target's eventfd makes interrupt <paramref name="Line"/> pending.</summary>
public sealed record IrqSpec(int Line, Target Target) : TargetSpec(Target)
{
    public override string Name => $"irq-{Line.ToString(CultureInfo.InvariantCulture)}";

    internal override void Attach(Machine machine, EventFd fd) => machine.Interrupts.Attach(Line, fd);

    public override string ToString() => $"--irq {Line.ToString(CultureInfo.InvariantCulture)}={Target}";
}

/// <summary>
/// What tells <c>--notify</c> and <c>--irq</c> apart when they are parsed:
/// the option's name, what its number is called and may be, an example, and
/// how a spec is made. One row per option; <see cref="Targets.TryParse"/> reads it.
/// </summary>
public sealed record TargetOption<TSpec>(
    string Option, string Field, string Example, Func<uint, bool> IsValid, string ValidText,
    Func<uint, string> Canonical, Func<uint, Target, TSpec> Create)
    where TSpec : TargetSpec;

/// <summary>
/// Parsing of <c>VALUE=TARGET</c> (usage errors, exit 64, one line each) and
/// opening of targets (unavailable, exit 69). TARGET is split from VALUE at the
/// first '=', and its kind from the rest at the first ':'.
/// </summary>
public static class Targets
{
    /// <summary><c>--notify VALUE=TARGET</c>: VALUE is any nonzero 32-bit number.</summary>
    public static readonly TargetOption<NotifySpec> Notify = new(
        "--notify", "VALUE", "0x10=fd:3", v => v != 0, "a nonzero 32-bit number, decimal or 0x-hex",
        Notifier.Name, (v, target) => new NotifySpec(v, target));

    /// <summary><c>--irq N=TARGET</c>: N is an interrupt line, 1 to <see cref="InterruptController.MaxLine"/>.</summary>
    public static readonly TargetOption<IrqSpec> Irq = new(
        "--irq", "N", "5=fd:4", v => v is >= 1 and <= InterruptController.MaxLine,
        $"an interrupt number from 1 to {InterruptController.MaxLine}",
        v => v.ToString(CultureInfo.InvariantCulture), (v, target) => new IrqSpec((int)v, target));

    /// <summary>
    /// Parses every <paramref name="texts"/> given to <paramref name="option"/>;
    /// a number given twice (in any spelling) is an error.
    /// </summary>
    public static bool TryParse<TSpec>(TargetOption<TSpec> option, IEnumerable<string> texts, out TSpec[] specs, out string error)
        where TSpec : TargetSpec
    {
        var list = new List<(uint Number, TSpec Spec)>();
        specs = [];
        foreach (string text in texts)
        {
            int eq = text.IndexOf('=');
            if (eq < 0)
            {
                error = $"{option.Option} '{text}' must be {option.Field}=TARGET, as in {option.Option} {option.Example}";
                return false;
            }
            string left = text[..eq], right = text[(eq + 1)..];
            if (!Numbers.TryParse(left, out uint number) || !option.IsValid(number))
            {
                error = $"{option.Option} '{text}': {option.Field} '{left}' must be {option.ValidText}";
                return false;
            }
            if (!TryParseTarget(option.Option, text, right, out Target? target, out error)) return false;
            if (list.Exists(s => s.Number == number))
            {
                error = $"{option.Option} {option.Canonical(number)} is given twice";
                return false;
            }
            list.Add((number, option.Create(number, target!)));
        }
        specs = [.. list.Select(s => s.Spec)];
        error = "";
        return true;
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
        if (!Numbers.TryParse(rest, out uint number) || number > int.MaxValue)
        {
            error = $"{option} '{whole}': fd:N needs a descriptor number, not '{rest}'";
            return false;
        }
        int fd = (int)number;
        target = new Target(TargetKind.Fd, fd, $"fd:{fd.ToString(CultureInfo.InvariantCulture)}");
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
    public static EventFd Open(TargetSpec spec)
    {
        Target target = spec.Target;
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
