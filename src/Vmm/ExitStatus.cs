using System.Text;
using Sharpvisor.Jit.Runtime;

namespace Sharpvisor.Vmm;

/// <summary>
/// Every status <c>sharpvisor</c> exits with, in one place (Firecracker's
/// rule). What each means is written once, in <see cref="ExitStatuses.Table"/>;
/// <c>--help</c> prints it and a test checks the README's and
/// docs/guest-abi.md's copies against it. 0-255 is also what a guest passes
/// to LHCALL_SHUTDOWN, so a guest's own status comes through unchanged and a
/// caller tells it from ours only by the stderr line we add. The 64-70 values
/// follow BSD sysexits.h, so shell users know them.
/// </summary>
public enum ExitStatus
{
    Ok = 0,
    /// <summary>sysexits EX_USAGE.</summary>
    Usage = 64,
    /// <summary>EX_DATAERR.</summary>
    BadImage = 65,
    /// <summary>EX_NOINPUT.</summary>
    NoInput = 66,
    /// <summary>EX_UNAVAILABLE.</summary>
    Unavailable = 69,
    /// <summary>EX_SOFTWARE.</summary>
    Internal = 70,
    GuestFault = 80,
    Deadlock = 81,
    Timeout = 82,
    /// <summary>128 + SIGINT (2), the shell's convention.</summary>
    Interrupted = 130,
    /// <summary>128 + SIGTERM (15).</summary>
    Terminated = 143,
}

/// <summary>One row of the exit-status table: the status as shown (<c>0-255</c> for <see cref="ExitStatus.Ok"/>) and its meaning, in Markdown (code in backticks).</summary>
public readonly record struct ExitStatusRow(ExitStatus Status, string Shown, string Meaning);

public static class ExitStatuses
{
    /// <summary>What each status means: one row per <see cref="ExitStatus"/> member, in order.</summary>
    public static readonly IReadOnlyList<ExitStatusRow> Table =
    [
        new(ExitStatus.Ok, "0-255", "the guest's `LHCALL_SHUTDOWN` status (EBX & 0xff)"),
        new(ExitStatus.Usage, "64", "usage: a bad option or argument, including `--engine il` in the native-AOT build"),
        new(ExitStatus.BadImage, "65", "bad image: not a loadable ELF32 i386 executable or flat binary"),
        new(ExitStatus.NoInput, "66", "the image file, or a `--device blk` disk image, is missing or unreadable"),
        new(ExitStatus.Unavailable, "69",
            "unavailable: a `--notify`/`--irq` target (`fd:N` not open or not an eventfd; no socket, or nothing listening, at `unix:PATH`; "
            + "the program of `exec:CMD` not found or not executable), the `--control` socket cannot be created (`run`) or reached (`control`), "
            + "a `--device blk` disk image that cannot be opened as asked or is locked by another VM, "
            + "a descriptor given to `listen` is not an eventfd, or `--low-latency` without root (`bench notify`, `bench virtio`)"),
        new(ExitStatus.Internal, "70", "internal error: a bug of ours or a host resource ran out (one line on stderr, never a stack trace)"),
        new(ExitStatus.GuestFault, "80", "guest fault: bad memory access (a device register access included), #DE, unsupported instruction (port I/O included), unknown hypercall"),
        new(ExitStatus.Deadlock, "81", "deadlock: every vCPU waits for an interrupt (no timeout) and no interrupt source is attached or busy (never while `--control` is open)"),
        new(ExitStatus.Timeout, "82", "`--timeout` elapsed"),
        new(ExitStatus.Interrupted, "130", "SIGINT: the vCPUs were stopped cleanly"),
        new(ExitStatus.Terminated, "143", "SIGTERM: the vCPUs were stopped cleanly"),
    ];

    /// <summary>The process status for a vCPU stop.</summary>
    public static int For(VcpuExit exit) => exit.Reason switch
    {
        StopReason.Shutdown => (exit.GuestStatus ?? 0) & 0xff,
        StopReason.Fault => (int)ExitStatus.GuestFault,
        StopReason.Deadlock => (int)ExitStatus.Deadlock,
        StopReason.Timeout => (int)ExitStatus.Timeout,
        // The shell's convention for "killed by signal N", though we exit
        // normally: a script cannot tell our clean stop from a default kill,
        // which is what it expects from a program it interrupted.
        StopReason.Signal => 128 + (exit.Signal > 0 ? exit.Signal : 2),
        _ => (int)ExitStatus.Internal,
    };

    /// <summary>The table for <c>--help</c>, from <see cref="Table"/>: plain text, wrapped to 100 columns.</summary>
    public static readonly string HelpTable = Help(100);

    /// <summary>The table as the docs carry it (README, docs/guest-abi.md), from <see cref="Table"/>.</summary>
    public static readonly string MarkdownTable = Markdown();

    private static string Markdown()
    {
        var md = new StringBuilder("| status | meaning |\n|---:|---|\n");
        foreach (ExitStatusRow row in Table)
            md.Append("| ").Append(row.Shown).Append(" | ").Append(row.Meaning).Append(" |\n");
        return md.ToString();
    }

    private static string Help(int columns)
    {
        const string Indent = "         "; // "  " + a 5-wide status + "  "
        var text = new StringBuilder("Exit status:");
        foreach (ExitStatusRow row in Table)
        {
            var line = new StringBuilder("  ").Append(row.Shown.PadRight(5)).Append("  ");
            bool first = true;
            foreach (string word in row.Meaning.Replace("`", "", StringComparison.Ordinal).Split(' '))
            {
                if (!first && line.Length + 1 + word.Length > columns)
                {
                    text.Append('\n').Append(line);
                    line.Clear().Append(Indent);
                    first = true;
                }
                line.Append(first ? "" : " ").Append(word);
                first = false;
            }
            text.Append('\n').Append(line);
        }
        return text.ToString();
    }
}
