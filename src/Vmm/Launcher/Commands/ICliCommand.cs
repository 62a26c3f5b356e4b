using System.CommandLine;

namespace Sharpvisor.Vmm.Launcher.Commands;

/// <summary>
/// What a command runs with: the raw stdout (a guest's bytes go there
/// unchanged), a text writer on it for our own lines, stderr, and whether
/// this is the real process (signals, a terminal).
/// </summary>
internal sealed record CliContext(Stream Stdout, TextWriter Text, TextWriter Stderr, bool HandleSignals);

/// <summary>
/// A <c>sharpvisor</c> command: a System.CommandLine command that defines
/// its own arguments and options, and this, its action on a parse without
/// errors. Returns the exit status (<see cref="ExitStatus"/>).
/// </summary>
internal interface ICliCommand
{
    int Invoke(ParseResult parsed, CliContext context);
}
