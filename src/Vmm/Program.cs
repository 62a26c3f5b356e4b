using Sharpvisor.Vmm.Launcher;

namespace Sharpvisor.Vmm;

/// <summary>
/// The <c>sharpvisor</c> process: the command line (Launcher/Cli.cs, one command per file in Launcher/Commands) on the
/// real stdout and stderr. Stdout is the raw stream, not Console.Out, so the
/// guest's bytes reach it unchanged and unbuffered (one write per console
/// hypercall).
/// </summary>
public static class Program
{
    public static int Main(string[] args) =>
        Cli.Execute(args, Console.OpenStandardOutput(), Console.Error, handleSignals: true);
}
