using System.CommandLine;
using Sharpvisor.Vmm.Control;

namespace Sharpvisor.Vmm.Launcher.Commands;

/// <summary><c>sharpvisor control PATH REQUEST... [--fd N]</c>: one request to a running VM (<see cref="ControlClient"/>).</summary>
internal sealed class ControlCommand : Command, ICliCommand
{
    private readonly Argument<string> _socket = new("PATH") { Description = "the control socket of a running VM (run --control PATH)" };

    private readonly Argument<string[]> _request = new("REQUEST")
    {
        Description = "list, attach notify VALUE, detach notify VALUE, attach irq N, detach irq N (docs/control-socket.md)",
        Arity = ArgumentArity.OneOrMore,
    };

    private readonly Option<int?> _fd = new("--fd")
    {
        Description = "send descriptor N (an eventfd this process inherited) with the request, for attach",
        HelpName = "N",
        CustomParser = r => Numbers.TryParse(r.Tokens[0].Value, 0, int.MaxValue, out long n)
            ? (int)n
            : Usage.Fail<int?>(r, $"--fd '{r.Tokens[0].Value}' must be a descriptor number"),
    };

    public ControlCommand() : base("control",
        "send one request to a running VM's control socket and print the reply line; "
        + "exit 0 on ok or a list, 1 on an error reply, 69 if the socket cannot be reached")
    {
        Add(_socket);
        Add(_request);
        Add(_fd);
    }

    public int Invoke(ParseResult parsed, CliContext context) =>
        ControlClient.Execute(parsed.GetValue(_socket)!, parsed.GetValue(_request) ?? [], parsed.GetValue(_fd), context.Text, context.Stderr);
}
