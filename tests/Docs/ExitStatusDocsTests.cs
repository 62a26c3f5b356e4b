using Sharpvisor.Journey;
using Sharpvisor.Vmm;

namespace Sharpvisor.Tests.Docs;

/// <summary>
/// The exit statuses are written once, in <see cref="ExitStatuses.Table"/>;
/// --help prints it, and the docs carry a copy that must be the very table
/// it generates.
/// </summary>
public class ExitStatusDocsTests
{
    [Fact]
    public void Table_HasOneRowPerEnumMember_InTheEnumsOrder() =>
        Assert.Equal(Enum.GetValues<ExitStatus>(), ExitStatuses.Table.Select(r => r.Status));

    [Fact]
    public void Table_ShowsEachStatusAsItsNumber_ExceptTheGuestsRange()
    {
        foreach (ExitStatusRow row in ExitStatuses.Table)
            Assert.Equal(row.Status == ExitStatus.Ok ? "0-255" : ((int)row.Status).ToString(System.Globalization.CultureInfo.InvariantCulture), row.Shown);
    }

    [Fact]
    public void HelpTable_ListsEveryStatus_WithinOneHundredColumns_WithoutMarkdown()
    {
        string[] lines = ExitStatuses.HelpTable.Split('\n');
        Assert.Equal("Exit status:", lines[0]);
        foreach (ExitStatusRow row in ExitStatuses.Table)
            Assert.Single(lines, l => l.StartsWith($"  {row.Shown.PadRight(5)}  ", StringComparison.Ordinal));
        Assert.All(lines, l => Assert.True(l.Length <= 100, $"longer than 100 columns: {l}"));
        Assert.DoesNotContain("`", ExitStatuses.HelpTable);
    }

    [Theory]
    [InlineData("README.md")]
    [InlineData("docs/guest-abi.md")]
    public void Doc_CarriesTheExitStatusTableAsGenerated(string doc)
    {
        string text = File.ReadAllText(Path.Combine(RepoRoot(), doc)).ReplaceLineEndings("\n");
        Assert.True(text.Contains(ExitStatuses.MarkdownTable, StringComparison.Ordinal),
            $"{doc}'s exit-status table differs from ExitStatuses.Table (src/Vmm/ExitStatus.cs); it must read:\n{ExitStatuses.MarkdownTable}");
        // One copy per document: a second, hand-edited table would go unchecked.
        Assert.Single(text.Split('\n'), l => l.StartsWith("| status | meaning |", StringComparison.Ordinal));
    }

    private static string RepoRoot() =>
        JourneyGenerator.FindRepoRoot(AppContext.BaseDirectory)
        ?? throw new InvalidOperationException($"no aot.sln above {AppContext.BaseDirectory}");
}
