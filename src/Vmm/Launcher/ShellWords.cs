using System.Text;

namespace Sharpvisor.Vmm.Launcher;

/// <summary>
/// The program an <c>exec:CMD</c> target will run, found the way
/// <c>/bin/sh</c> will find it: CMD's first word after quote removal
/// (single quotes, double quotes, backslash) and parameter expansion
/// (<c>$NAME</c>, <c>${NAME}</c>, with field splitting when unquoted).
/// Knowing it before anything starts lets the launcher refuse a missing
/// program with exit 69 instead of learning it from a child that dies at once.
/// </summary>
/// <remarks>
/// Only what "a program and its arguments" needs. Anything whose result is
/// known only when the shell runs (<c>$(...)</c>, backquotes, <c>$$</c>,
/// <c>${NAME:-x}</c>) in the program's word, and a first word that is a shell
/// keyword or an operator, are refused: the launcher runs CMD as
/// <c>exec CMD</c>, which needs a program first. Words after the first are
/// the shell's business and are not looked at. No pathname expansion is done.
/// </remarks>
internal static class ShellWords
{
    private static readonly HashSet<string> Keywords =
        ["if", "then", "else", "elif", "fi", "do", "done", "case", "esac", "while", "until", "for", "in", "{", "}", "!"];

    /// <summary>
    /// Finds the program of <paramref name="command"/>; <paramref name="variable"/>
    /// gives a variable's value as the child will see it (null: unset). False
    /// with a message (<c>"is empty..."</c>, to follow <c>exec:CMD</c>) if the
    /// command has no program word we can know.
    /// </summary>
    public static bool TryFindProgram(string command, Func<string, string?> variable, out string program, out string error)
    {
        program = "";
        var word = new StringBuilder();
        bool quoted = false;   // a quote was seen: "" is a word, even if empty
        bool plain = true;     // no quoting and no expansion: a keyword is a keyword
        int i = 0;
        while (true)
        {
            // Blanks before the word, or what is left after an expansion split it.
            while (word.Length == 0 && !quoted && i < command.Length && command[i] is ' ' or '\t') i++;
            if (i == command.Length || command[i] is ' ' or '\t' || IsOperator(command[i]))
            {
                if (word.Length > 0 || quoted) break;
                error = i == command.Length
                    ? "is empty: it needs a program and its arguments"
                    : $"starts with '{command[i]}': it needs a program first (for a pipeline or a compound command, use exec:sh -c '...')";
                return false;
            }
            char c = command[i++];
            switch (c)
            {
                case '\\':
                    if (i == command.Length) { error = "ends in a backslash"; return false; }
                    plain = false;
                    if (command[i] == '\n') i++; // a line continuation
                    else word.Append(command[i++]);
                    break;
                case '\'':
                {
                    int end = command.IndexOf('\'', i);
                    if (end < 0) { error = "has a ' quote that is not closed"; return false; }
                    word.Append(command, i, end - i);
                    i = end + 1;
                    quoted = true;
                    plain = false;
                    break;
                }
                case '"':
                    quoted = true;
                    plain = false;
                    while (true)
                    {
                        if (i == command.Length) { error = "has a \" quote that is not closed"; return false; }
                        char d = command[i++];
                        if (d == '"') break;
                        if (d == '\\' && i < command.Length && command[i] is '$' or '`' or '"' or '\\' or '\n')
                        {
                            if (command[i] != '\n') word.Append(command[i]);
                            i++;
                        }
                        else if (d == '$')
                        {
                            if (!TryExpand(command, ref i, variable, out string? value, out error)) return false;
                            word.Append(value ?? "$");
                        }
                        else if (d == '`') { error = Unknowable("`...`"); return false; }
                        else word.Append(d);
                    }
                    break;
                case '$':
                {
                    plain = false;
                    if (!TryExpand(command, ref i, variable, out string? value, out error)) return false;
                    if (value is null) { word.Append('$'); break; }
                    // Unquoted: the value is split into fields at blanks, so
                    // "/opt/my dir/sharpvisor" would be two words, as in the shell.
                    string[] fields = value.Split([' ', '\t', '\n']);
                    word.Append(fields[0]);
                    for (int f = 1; f < fields.Length; f++)
                    {
                        if (word.Length > 0 || quoted) goto done;
                        word.Append(fields[f]);
                    }
                    break;
                }
                case '`':
                    error = Unknowable("`...`");
                    return false;
                default:
                    word.Append(c);
                    break;
            }
        }
    done:
        program = word.ToString();
        if (plain && Keywords.Contains(program))
        {
            error = $"starts with the shell keyword '{program}': it needs a program first (for a compound command, use exec:sh -c '...')";
            return false;
        }
        error = "";
        return true;
    }

    /// <summary>
    /// After a '$' at <paramref name="i"/>: <c>NAME</c> or <c>{NAME}</c> gives
    /// its value ("" when unset); a '$' before anything else is a literal '$'
    /// (null); special parameters and other forms cannot be known in advance.
    /// </summary>
    private static bool TryExpand(string s, ref int i, Func<string, string?> variable, out string? value, out string error)
    {
        value = null;
        error = "";
        if (i < s.Length && IsNameStart(s[i]))
        {
            int start = i;
            while (i < s.Length && IsNameChar(s[i])) i++;
            value = variable(s[start..i]) ?? "";
            return true;
        }
        if (i < s.Length && s[i] == '{')
        {
            int end = s.IndexOf('}', i);
            string inner = end < 0 ? "" : s[(i + 1)..end];
            if (inner.Length == 0 || !IsNameStart(inner[0]) || !inner.All(IsNameChar))
            {
                error = Unknowable("${" + (end < 0 ? s[(i + 1)..] : inner) + "}");
                return false;
            }
            i = end + 1;
            value = variable(inner) ?? "";
            return true;
        }
        if (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] is '$' or '?' or '#' or '!' or '@' or '*' or '-' or '('))
        {
            error = Unknowable("$" + s[i]);
            return false;
        }
        return true; // a lone '$' stands for itself
    }

    private static string Unknowable(string what) =>
        $"names its program with {what}, which only the shell knows when it runs; name the program itself (or use exec:sh -c '...')";

    /// <summary>Characters that end a word and start an operator: the shell would not take them as part of a program name.</summary>
    private static bool IsOperator(char c) => c is ';' or '&' or '|' or '<' or '>' or '(' or ')' or '\n';

    private static bool IsNameStart(char c) => char.IsAsciiLetter(c) || c == '_';

    private static bool IsNameChar(char c) => char.IsAsciiLetterOrDigit(c) || c == '_';
}
