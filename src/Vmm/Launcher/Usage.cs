using System.CommandLine.Parsing;
using System.Globalization;

namespace Sharpvisor.Vmm.Launcher;

/// <summary>
/// How the command line says no: a usage error is one line on stderr and
/// status 64; an option's parser records its error for that line.
/// </summary>
internal static class Usage
{
    /// <summary>Prints <paramref name="message"/> as the one usage line and returns 64.</summary>
    public static int Error(TextWriter stderr, string message)
    {
        stderr.WriteLine($"sharpvisor: {OneLine(message)} (see sharpvisor --help)");
        return (int)ExitStatus.Usage;
    }

    /// <summary>Records <paramref name="error"/> against the token being parsed; the value returned is never used.</summary>
    public static T Fail<T>(ArgumentResult result, string error)
    {
        result.AddError(error);
        return default!;
    }

    /// <summary>An integer by <see cref="Numbers.Rule"/> in [<paramref name="min"/>, <paramref name="max"/>], or one usage error naming the bounds.</summary>
    public static int Number(ArgumentResult r, string option, int min, int max, string what = "a number")
    {
        string text = r.Tokens[0].Value;
        return Numbers.TryParse(text, min, max, out long n)
            ? (int)n
            : Fail<int>(r, $"{option} '{text}' must be {what} from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}");
    }

    /// <summary>Line breaks and tabs (System.CommandLine puts both in its messages) become single spaces.</summary>
    public static string OneLine(string s) =>
        string.Join(' ', s.ReplaceLineEndings(" ").Replace('\t', ' ').Split(' ', StringSplitOptions.RemoveEmptyEntries));
}
