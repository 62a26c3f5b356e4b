using System.CommandLine;

namespace Sharpvisor.Vmm.Launcher.Commands;

/// <summary><c>sharpvisor smoke [NOTIFICATIONS]</c>: the native layer end to end (<see cref="SmokeRun"/>).</summary>
internal sealed class SmokeCommand : Command, ICliCommand
{
    private readonly Argument<int> _notifications = new("NOTIFICATIONS")
    {
        Description = "how many notifications the vCPU-like thread sends",
        DefaultValueFactory = _ => 100_000,
        CustomParser = r => r.Tokens.Count == 0 ? 100_000
            : Numbers.TryParse(r.Tokens[0].Value, 1, int.MaxValue, out long n) ? (int)n
            : Usage.Fail<int>(r, "NOTIFICATIONS must be a positive integer"),
    };

    public SmokeCommand() : base("smoke", "drive the native layer (eventfds, RCU map) end to end")
    {
        Add(_notifications);
    }

    public int Invoke(ParseResult parsed, CliContext context) => SmokeRun.Run(parsed.GetValue(_notifications), context.Text);
}
