using System.CommandLine;
using Sharpvisor.Vmm.Listen;

namespace Sharpvisor.Vmm.Launcher.Commands;

/// <summary><c>sharpvisor listen</c>: its options; what it does is <see cref="Listener"/>.</summary>
internal sealed class ListenCommand : Command, ICliCommand
{
    private readonly Option<string[]> _answer = new("--answer")
    {
        Description = "on each wakeup of NAME, write its count to NAME2 (notify-0x10=irq-5), which is written, not watched. Repeatable",
        HelpName = "NAME=NAME2",
        Arity = ArgumentArity.OneOrMore,
        AllowMultipleArgumentsPerToken = false,
    };

    private readonly Option<ulong?> _exitAfter = new("--exit-after")
    {
        Description = "exit 0 once the counts read add up to N",
        HelpName = "N",
        CustomParser = r => Numbers.TryParse(r.Tokens[0].Value, out ulong n) && n > 0
            ? n
            : Usage.Fail<ulong?>(r, $"--exit-after '{r.Tokens[0].Value}' must be a positive number"),
    };

    private readonly Option<string?> _unix = new("--unix")
    {
        Description = "instead of descriptors 3.., listen on the Unix socket at PATH for the eventfds of unix:PATH targets (mode 0600, removed at exit)",
        HelpName = "PATH",
    };

    private readonly Option<int> _expect = new("--expect")
    {
        Description = "with --unix: how many eventfds to take before waiting on them (one per unix: target); 1 unless given",
        HelpName = "N",
        DefaultValueFactory = _ => 1,
        CustomParser = r => Usage.Number(r, "--expect", 1, 1024),
    };

    public ListenCommand() : base("listen",
        "wait on the eventfds passed as descriptors 3.. (LISTEN_FDS, names from LISTEN_FDNAMES, as an exec: target's child gets them), "
        + "or received on a Unix socket (--unix), and print one line per wakeup: <realtime seconds.micros> <name> <count>. "
        + "Ends with 0 on SIGTERM or SIGINT, after printing what is pending")
    {
        Add(_answer);
        Add(_exitAfter);
        Add(_unix);
        Add(_expect);
    }

    public int Invoke(ParseResult parsed, CliContext context)
    {
        string[] answers = parsed.GetValue(_answer) ?? [];
        ulong? exitAfter = parsed.GetValue(_exitAfter);
        if (parsed.GetValue(_unix) is string socketPath)
            return Listener.ExecuteUnix(socketPath, parsed.GetValue(_expect), answers, exitAfter, context.Text, context.Stderr, context.HandleSignals);
        if (parsed.GetResult(_expect) is { Implicit: false })
            return Usage.Error(context.Stderr, "--expect needs --unix PATH");
        return Listener.Execute(answers, exitAfter, context.Text, context.Stderr, context.HandleSignals);
    }
}
