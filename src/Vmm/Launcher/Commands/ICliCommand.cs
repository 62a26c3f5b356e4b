using System.CommandLine;
using Sharpvisor.Native;

namespace Sharpvisor.Vmm.Launcher.Commands;

/// <summary>
/// What a command runs with: the raw stdout (a guest's bytes go there
/// unchanged), a text writer on it for our own lines, stderr, whether
/// this is the real process (signals, a terminal), and stdin's descriptor
/// (a console device reads it).
/// </summary>
internal sealed record CliContext(Stream Stdout, TextWriter Text, TextWriter Stderr, bool HandleSignals, SafeFdHandle Stdin);

/// <summary>
/// A <c>sharpvisor</c> command: a System.CommandLine command that defines
/// its own arguments and options, and this, its action on a parse without
/// errors. Returns the exit status (<see cref="ExitStatus"/>).
/// </summary>
internal interface ICliCommand
{
    int Invoke(ParseResult parsed, CliContext context);
}
