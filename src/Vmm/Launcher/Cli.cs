using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;
using System.Text;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Native;
using Sharpvisor.Vmm.Launcher.Commands;

namespace Sharpvisor.Vmm.Launcher;

/// <summary>
/// The <c>sharpvisor</c> command line: <c>run</c>, <c>listen</c>, <c>control</c>, <c>smoke</c>, <c>bench notify</c>, <c>--help</c>,
/// <c>--version</c>. Each command is a file of its own in Commands/, with its
/// options and its action; this is the dispatcher. Output goes to the streams
/// it is given, so tests run it in process with captured output; Program
/// passes the real ones.
/// </summary>
/// <remarks>
/// System.CommandLine rather than ConsoleAppFramework (both AOT-safe): CAF's
/// generated runner reports through process-wide state (Environment.ExitCode,
/// a static error sink), gives a parse error status 1, which a guest may
/// also return, and prints an unhandled exception with its stack trace.
/// System.CommandLine hands back a ParseResult whose errors we turn into
/// status 64 and one line, with no global state, so parallel tests can each
/// run their own command line.
/// </remarks>
public static class Cli
{
    /// <summary>Parses <paramref name="args"/>, does what they ask, returns the exit status (see <see cref="ExitStatus"/>).</summary>
    /// <param name="stdout">The guest's console output, help and version; written through, flushed before return.</param>
    /// <param name="stderr">At most one line for a stop other than a shutdown, then the --regs JSON line.</param>
    /// <param name="handleSignals">Turn SIGINT/SIGTERM into a clean vCPU stop (the real process only).</param>
    /// <param name="stdin">What a console device reads; null: descriptor 0 (not closed here).</param>
    public static int Execute(string[] args, Stream stdout, TextWriter stderr, bool handleSignals = false, SafeFdHandle? stdin = null)
    {
        try
        {
            using var standardInput = new SafeFdHandle(0, ownsHandle: false);
            return Dispatch(args, stdout, stderr, handleSignals, stdin ?? standardInput);
        }
        catch (Exception e)
        {
            // The last line of defence: whatever escaped is our bug or the
            // host's trouble, reported as one line, never as a stack trace.
            stderr.WriteLine($"sharpvisor: internal error: {e.GetType().Name}: {Usage.OneLine(e.Message)}");
            return (int)ExitStatus.Internal;
        }
        finally
        {
            try { stdout.Flush(); } catch (IOException) { } // stdout may be a closed pipe
        }
    }

    /// <summary>The whole command line parsed, without doing anything (tests read its values and errors).</summary>
    internal static ParseResult Parse(string[] args)
    {
        var root = new RootCommand("Sharpvisor: runs 32-bit x86 guests (guest ABI v1, docs/guest-abi.md).")
        {
            new RunCommand(), new ListenCommand(), new ControlCommand(), new SmokeCommand(), new BenchCommand(),
        };
        // Our own --version, so it prints "sharpvisor X.Y.Z" as before, with no commit suffix.
        foreach (Option o in root.Options.Where(o => o is VersionOption).ToList()) root.Options.Remove(o);
        root.Options.Add(new Option<bool>(VersionName) { Description = "print the version and exit" });
        root.SetAction(_ => 0); // so a bare --version is not "Required command was not provided"
        root.Directives.Clear(); // "[diagram]" and friends are not part of our interface
        HelpOption help = root.Options.OfType<HelpOption>().Single();
        help.Action = new HelpWithExitStatuses((HelpAction)help.Action!);
        // No response files: an image path may start with '@'.
        return root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
    }

    private const string VersionName = "--version";

    private static int Dispatch(string[] args, Stream stdout, TextWriter stderr, bool handleSignals, SafeFdHandle stdin)
    {
        ParseResult parsed = Parse(args);
        using var text = new StreamWriter(stdout, new UTF8Encoding(false), bufferSize: 4096, leaveOpen: true) { AutoFlush = true };
        if (parsed.Action is HelpWithExitStatuses)
            return parsed.Invoke(new InvocationConfiguration { Output = text, Error = stderr });
        if (parsed.Errors.Count > 0)
            // Distinct: a command missing two arguments gets the same message for each.
            return Usage.Error(stderr, string.Join("; ", parsed.Errors.Select(e => Usage.OneLine(e.Message)).Distinct()));
        if (parsed.GetValue<bool>(VersionName))
        {
            text.WriteLine($"sharpvisor {typeof(Cli).Assembly.GetName().Version?.ToString(3)}");
            return 0;
        }
        if (parsed.CommandResult.Command is ICliCommand command)
            return command.Invoke(parsed, new CliContext(stdout, text, stderr, handleSignals, stdin));
        return Usage.Error(stderr, "a command is required: run, listen, control, smoke or bench");
    }

    /// <summary>One line naming what happened. A fault's message from the engine already says where.</summary>
    internal static string Describe(VcpuExit exit, uint eip) => exit.Reason switch
    {
        StopReason.Fault => $"guest fault: {OneLine(exit.Message)}",
        StopReason.Deadlock => $"deadlock: {OneLine(exit.Message)}",
        StopReason.Timeout => $"timeout: {OneLine(exit.Message)} (guest eip 0x{eip:x})",
        StopReason.Signal => $"stopped: {OneLine(exit.Message)} (guest eip 0x{eip:x})",
        StopReason.Shutdown => OneLine(exit.Message),
        _ => $"internal error: {OneLine(exit.Message)}",
    };

    private static string OneLine(string s) => Usage.OneLine(s);

    /// <summary>The standard help, then the rule for numbers and the exit-status table, which a script writer needs most.</summary>
    private sealed class HelpWithExitStatuses(HelpAction standard) : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            standard.Invoke(parseResult);
            TextWriter output = parseResult.InvocationConfiguration.Output;
            output.WriteLine(Numbers.Rule);
            output.WriteLine();
            output.WriteLine(ExitStatuses.HelpTable);
            return 0;
        }
    }
}
