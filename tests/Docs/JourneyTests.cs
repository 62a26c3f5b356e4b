using Sharpvisor.Journey;

namespace Sharpvisor.Tests.Docs;

/// <summary>
/// docs/JOURNEY.md is generated from the tagged comments in src/ (tools/Journey).
/// These tests regenerate it in memory from this checkout and check the
/// generator's rules on small made-up inputs.
/// </summary>
public class JourneyTests
{
    private const string Order = """
        Preface.

        == Chapter one
        Why it matters.

        @ first: The first step
        @ later (pending): Not written yet
        """;

    private static SourceFile Source(string text) => new("src/A.cs", text);

    private static readonly SourceFile Tagged = Source("""
        class A
        {
            // Journey: first
            /// <summary>Runs <paramref name="x"/> through <see cref="T:Ns.B"/>, <c>fast</c>.</summary>
            [Attr]
            public int Run(int x) => x;
        }
        """);

    [Fact]
    public void JourneyMd_IsUpToDate()
    {
        string root = RepoRoot();
        string expected = JourneyGenerator.GenerateFromRepo(root);
        string actual = File.ReadAllText(Path.Combine(root, JourneyGenerator.OutputPath));
        Assert.True(expected == actual, $"{JourneyGenerator.OutputPath} is stale: run {JourneyGenerator.Command}");
    }

    [Fact]
    public void Generate_RendersTheExcerptTheMemberAndAPendingStep()
    {
        string md = JourneyGenerator.Generate(Order, [Tagged]);

        Assert.Contains("## 1. Chapter one", md);
        Assert.Contains("Why it matters.", md);
        Assert.Contains("### The first step", md);
        Assert.Contains("[`src/A.cs`](../src/A.cs): `public int Run(int x)`", md);
        Assert.Contains("Runs `x` through `Ns.B`, `fast`.", md);
        Assert.Contains("*To come: no comment is tagged `// Journey: later` yet.*", md);
        Assert.DoesNotContain("<summary>", md);
    }

    [Fact]
    public void Generate_PlainCommentBlock_KeepsItsLinesAndParagraphs()
    {
        var src = Source("""
            // Journey: first
            // One line,
            // and the next.
            //
            // A second paragraph.
            DoIt();
            """);

        string md = JourneyGenerator.Generate(Order, [src]);

        Assert.Contains("One line,\nand the next.\n\nA second paragraph.", md);
        Assert.Contains("`DoIt();`", md);
    }

    [Fact]
    public void Generate_ShowsTheMembersCode_DedentedAndCutWhereItsBracesClose()
    {
        var src = Source("""
            class A
            {
                // Journey: first
                /// <summary>Adds.</summary>
                public int Add(int a, int b)
                {
                    if (a == 0) { return b; } // "}" in a string: "{"
                    return a + b;
                }

                public int NotShown() => 0;
            }
            """);

        string md = JourneyGenerator.Generate(Order, [src]);

        Assert.Contains("```csharp\npublic int Add(int a, int b)\n{\n    if (a == 0) { return b; } // \"}\" in a string: \"{\"\n    return a + b;\n}\n```", md);
        Assert.DoesNotContain("NotShown", md);
    }

    [Fact]
    public void Generate_SkipAndResumeMarkers_FoldLinesIntoOneEllipsis()
    {
        var src = Source("""
            // Journey: first
            // Runs.
            void Run()
            {
                Setup();
                // Journey: skip
                Detail1();
                Detail2();
                // Journey: resume
                Loop();
            }
            """);

        string md = JourneyGenerator.Generate(Order, [src]);

        Assert.Contains("void Run()\n{\n    Setup();\n    // ...\n    Loop();\n}", md);
        Assert.DoesNotContain("Detail", md);
    }

    [Fact]
    public void Generate_LongMember_IsCutWithALineSayingHowMuchIsLeft()
    {
        string body = string.Concat(Enumerable.Range(0, 50).Select(i => $"    Step{i}();\n"));
        var src = Source("// Journey: first\n// Runs.\nvoid Run()\n{\n" + body + "}\n");

        string md = JourneyGenerator.Generate(Order, [src]);

        Assert.Contains($"    Step{JourneyGenerator.MaxExcerptLines - 3}();\n// ... (13 more lines in the file)\n```", md);
        Assert.DoesNotContain($"Step{JourneyGenerator.MaxExcerptLines - 2}()", md);
    }

    [Fact]
    public void Generate_TaggedTypeDeclaration_ShowsNoCode()
    {
        var src = Source("// Journey: first\n/// <summary>A type.</summary>\npublic sealed class B\n{\n    int x;\n}\n");

        string md = JourneyGenerator.Generate(Order, [src]);

        Assert.Contains("`public sealed class B`", md);
        Assert.DoesNotContain("```csharp", md);
    }

    [Fact]
    public void Generate_TagNotInTheOrder_IsAnError()
    {
        var src = Source("// Journey: stray\n// Not listed.\nint x;\n");

        var e = Assert.Throws<JourneyException>(() => JourneyGenerator.Generate(Order, [Tagged, src]));

        Assert.Contains("src/A.cs:1: tag 'stray' is not in docs/journey.order", e.Message);
    }

    [Fact]
    public void Generate_DuplicateTag_IsAnError()
    {
        var e = Assert.Throws<JourneyException>(() => JourneyGenerator.Generate(Order, [Tagged, Tagged]));

        Assert.Contains("tag 'first' is already used at src/A.cs:3", e.Message);
    }

    [Fact]
    public void Generate_DuplicateIdInTheOrder_IsAnError()
    {
        var e = Assert.Throws<JourneyException>(() => JourneyGenerator.Generate(Order + "\n@ first: Again\n", [Tagged]));

        Assert.Contains("'first' is already listed at line", e.Message);
    }

    [Fact]
    public void Generate_ListedIdThatIsNotPendingAndNotTagged_IsAnError()
    {
        var e = Assert.Throws<JourneyException>(() => JourneyGenerator.Generate(Order, []));

        Assert.Contains("'first' has no '// Journey: first' tag", e.Message);
    }

    [Fact]
    public void Generate_TagWithoutAComment_IsAnError()
    {
        var src = Source("// Journey: first\npublic void Run() { }\n");

        var e = Assert.Throws<JourneyException>(() => JourneyGenerator.Generate(Order, [src]));

        Assert.Contains("src/A.cs:1: tag 'first' has no comment under it", e.Message);
    }

    /// <summary>The checkout this test binary was built from: the folder above it that holds aot.sln.</summary>
    private static string RepoRoot() =>
        JourneyGenerator.FindRepoRoot(AppContext.BaseDirectory)
        ?? throw new InvalidOperationException($"no aot.sln above {AppContext.BaseDirectory}");
}
