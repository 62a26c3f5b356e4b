using Sharpvisor.Vmm.Launcher;

namespace Sharpvisor.Tests.Vmm;

/// <summary>Finding the program of an exec:CMD as /bin/sh would, before anything runs.</summary>
public class ShellWordsTests
{
    private static string? Var(string name) => name switch
    {
        "SHARPVISOR" => "/opt/sv/sharpvisor",
        "SPACED" => "/opt/my dir/tool",
        "EMPTY" => "",
        _ => null,
    };

    [Theory]
    [InlineData("sleep 10", "sleep")]
    [InlineData("  \tsleep", "sleep")]
    [InlineData("/usr/bin/env FOO=1 x", "/usr/bin/env")]
    [InlineData("$SHARPVISOR listen --answer notify-0x10=irq-5", "/opt/sv/sharpvisor")]
    [InlineData("${SHARPVISOR} listen", "/opt/sv/sharpvisor")]
    [InlineData("\"$SHARPVISOR\" listen", "/opt/sv/sharpvisor")]
    [InlineData("'$SHARPVISOR' listen", "$SHARPVISOR")]
    [InlineData("\\$SHARPVISOR", "$SHARPVISOR")]
    [InlineData("'my prog' arg", "my prog")]
    [InlineData("my\\ prog arg", "my prog")]
    [InlineData("\"a\\\"b\" c", "a\"b")]
    [InlineData("pre'fix'\"ed\" x", "prefixed")]
    [InlineData("$SPACED x", "/opt/my")]               // unquoted: split at blanks, as the shell does
    [InlineData("\"$SPACED\" x", "/opt/my dir/tool")]
    [InlineData("$EMPTY $UNSET sleep 1", "sleep")]      // empty unquoted expansions vanish
    [InlineData("$SHARPVISOR-x", "/opt/sv/sharpvisor-x")]
    [InlineData("cat|wc", "cat")]                      // a pipeline: its first program
    [InlineData("a$", "a$")]
    [InlineData("FOO=bar prog", "FOO=bar")]            // `exec FOO=bar prog` would run "FOO=bar"
    [InlineData("\"if\" x", "if")]                     // quoted: not a keyword
    public void TryFindProgram_FindsTheFirstWord(string command, string program)
    {
        Assert.True(ShellWords.TryFindProgram(command, Var, out string found, out string error), error);
        Assert.Equal(program, found);
    }

    [Theory]
    [InlineData("", "is empty")]
    [InlineData("   ", "is empty")]
    [InlineData("'unclosed", "' quote that is not closed")]
    [InlineData("\"unclosed", "\" quote that is not closed")]
    [InlineData("prog\\", "ends in a backslash")]
    [InlineData("; ls", "starts with ';'")]
    [InlineData("| ls", "starts with '|'")]
    [InlineData("if true; then x; fi", "shell keyword 'if'")]
    [InlineData("{ x; }", "shell keyword '{'")]
    [InlineData("$(which sleep) 1", "$(")]
    [InlineData("`which sleep` 1", "`...`")]
    [InlineData("$1", "$1")]
    [InlineData("${X:-sleep}", "${X:-sleep}")]
    public void TryFindProgram_RefusesWhatHasNoKnowableProgram(string command, string contains)
    {
        Assert.False(ShellWords.TryFindProgram(command, Var, out _, out string error));
        Assert.Contains(contains, error);
    }
}
