using System.Globalization;
using System.Text;
using Sharpvisor.Native;
using Sharpvisor.Vmm.Interrupts;
using Sharpvisor.Vmm.Notify;

namespace Sharpvisor.Vmm.Launcher;

/// <summary>
/// The <c>unix:PATH</c> TARGET kind, both ends of its wire format. Sharpvisor
/// creates the eventfd itself, connects to the Unix stream socket at PATH (one
/// connection per target), sends one message and closes the connection. The
/// message's payload is one line of ASCII, <c>notify 0x10\n</c> (the value in
/// its canonical spelling, <see cref="Notifier.Name"/>) or <c>irq 5\n</c>,
/// and its ancillary data is the eventfd, one descriptor in one SCM_RIGHTS
/// control message. The listener gets the other end of the same counter:
/// for a notify target it reads what the guest sent, for an irq target it
/// writes to raise the interrupt.
/// </summary>
public static class UnixTarget
{
    /// <summary>The longest line the protocol has: <c>notify 0xffffffff\n</c>.</summary>
    public const int MaxLineLength = 18;

    /// <summary>The payload for <paramref name="spec"/>: <c>notify 0x10\n</c> or <c>irq 5\n</c>.</summary>
    public static string Line(TargetSpec spec) => spec switch
    {
        NotifySpec n => $"notify {Notifier.Name(n.Value)}\n",
        IrqSpec i => $"irq {i.Line.ToString(CultureInfo.InvariantCulture)}\n",
        _ => throw new ArgumentException($"not a --notify or --irq: {spec}", nameof(spec)),
    };

    /// <summary>
    /// The name a line stands for, as <c>LISTEN_FDNAMES</c> would give it:
    /// <c>notify-0x10</c>, <c>irq-5</c>. False, with why in one phrase, unless
    /// <paramref name="payload"/> is exactly one line, <c>notify VALUE</c>
    /// with VALUE nonzero and spelled canonically, or <c>irq N</c> with N
    /// from 1 to 31 in plain decimal, ending in a newline.
    /// </summary>
    public static bool TryParseLine(ReadOnlySpan<byte> payload, out string name, out string error)
    {
        name = "";
        int newline = payload.IndexOf((byte)'\n');
        string shown = Shown(payload);
        if (newline < 0)
        {
            error = $"payload '{shown}' is not a line (no newline)";
            return false;
        }
        if (newline != payload.Length - 1)
        {
            error = $"payload '{shown}' is more than one line";
            return false;
        }
        string line = Encoding.Latin1.GetString(payload[..newline]);
        if (line.StartsWith("notify ", StringComparison.Ordinal))
        {
            string value = line["notify ".Length..];
            if (Numbers.TryParse(value, out uint v) && v != 0 && value == Notifier.Name(v))
            {
                name = $"notify-{value}";
                error = "";
                return true;
            }
            error = $"'{shown}': the value must be nonzero, in lowercase 0x-hex without leading zeros (notify 0x10)";
            return false;
        }
        if (line.StartsWith("irq ", StringComparison.Ordinal))
        {
            string n = line["irq ".Length..];
            if (int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out int irq)
                && irq is >= 1 and <= InterruptController.MaxLine && n == irq.ToString(CultureInfo.InvariantCulture))
            {
                name = $"irq-{n}";
                error = "";
                return true;
            }
            error = $"'{shown}': the interrupt must be 1 to {InterruptController.MaxLine} in decimal (irq 5)";
            return false;
        }
        error = $"payload '{shown}' is neither 'notify VALUE' nor 'irq N'";
        return false;
    }

    /// <summary>
    /// Opens a <c>unix:PATH</c> target: a new eventfd (blocking, counter
    /// mode), handed to the listener at <paramref name="path"/> over a
    /// connection of its own. The caller owns the result.
    /// </summary>
    /// <exception cref="TargetUnavailableException">No socket at PATH, not a socket, nobody listening, or the send failed.</exception>
    public static EventFd Open(TargetSpec spec, string path)
    {
        byte[] line = Encoding.ASCII.GetBytes(Line(spec));
        EventFd fd = EventFd.Create();
        try
        {
            using UnixSocket connection = UnixSocket.Connect(path);
            connection.SendWithDescriptors(line, [fd.Handle]);
            return fd;
        }
        catch (ErrnoException e)
        {
            fd.Dispose();
            throw new TargetUnavailableException($"{spec}: target unavailable: {e.Message}");
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    /// <summary>A payload for a message: printable ASCII as is, anything else escaped, at most 40 characters.</summary>
    internal static string Shown(ReadOnlySpan<byte> payload)
    {
        var s = new StringBuilder();
        foreach (byte b in payload[..Math.Min(payload.Length, 40)])
            s.Append(b switch
            {
                (byte)'\n' => "\\n",
                (byte)'\\' => "\\\\",
                (byte)'\'' => "\\'",
                >= 0x20 and < 0x7f => ((char)b).ToString(),
                _ => $"\\x{b:x2}",
            });
        if (payload.Length > 40) s.Append("...");
        return s.ToString();
    }
}
