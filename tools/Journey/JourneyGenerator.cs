using System.Text;
using System.Text.RegularExpressions;
using System.Xml;
using System.Xml.Linq;

namespace Sharpvisor.Journey;

/// <summary>A source file as the generator sees it: its path relative to the repository root, with '/'.</summary>
public sealed record SourceFile(string Path, string Text);

/// <summary>A Journey that cannot be generated; the message is one line that names the file and line to fix.</summary>
public sealed class JourneyException(string message) : Exception(message);

/// <summary>
/// lguest's Journey for Sharpvisor: the comments on the main path carry a tag
/// line, <c>// Journey: id</c>, right above them, and docs/journey.order says
/// in which order the ids are read and how the chapters begin. This class
/// turns the two into docs/JOURNEY.md. It is pure (text in, text out), so the
/// test project compiles this same file and regenerates the document in
/// memory to catch a stale copy.
/// </summary>
/// <remarks>
/// The order file, line by line:
/// <list type="bullet">
/// <item><description><c># ...</c>: a comment, not printed.</description></item>
/// <item><description><c>== Title</c>: starts a chapter.</description></item>
/// <item><description><c>@ id: Title</c>: a step, the comment tagged <c>// Journey: id</c>. <c>@ id (pending): Title</c> may have no tag yet: it prints as "to come" until one exists.</description></item>
/// <item><description>anything else: Markdown prose, printed where it stands (before the first chapter, the preface). Blank lines separate paragraphs.</description></item>
/// </list>
/// Under each step's comment comes its code: the member or statement the
/// comment sits on, cut where its braces close (see <see cref="Excerpt"/>),
/// so the document reads as lguest's does, the code with its comments.
/// Errors, each one line naming where: a tag whose id the order does not
/// list, an id tagged twice, an id listed twice, a listed id (not pending)
/// that nothing tags, a tag with no comment under it, a doc comment that is
/// not well-formed XML.
/// </remarks>
public static partial class JourneyGenerator
{
    public const string OrderPath = "docs/journey.order";
    public const string OutputPath = "docs/JOURNEY.md";
    public const string Command = "dotnet run --project tools/Journey";

    private abstract record Item;
    private sealed record Prose(string Text) : Item;
    private sealed record Step(string Id, string Title, bool Pending, int Line) : Item;
    private sealed record Chapter(string Title, List<Item> Items);
    private sealed record Tag(string Id, string File, int Line, string Member, string Markdown);

    [GeneratedRegex(@"^\s*//\s*Journey:(.*)$")]
    private static partial Regex TagLine();
    [GeneratedRegex(@"^[a-z0-9][a-z0-9-]*$")]
    private static partial Regex Id();
    [GeneratedRegex(@"^@\s*(?<id>\S+?)(?<pending>\s+\(pending\))?\s*:\s*(?<title>\S.*)$")]
    private static partial Regex StepLine();
    [GeneratedRegex(@"\s+")]
    private static partial Regex Spaces();

    /// <summary>The repository's own inputs: every .cs file under src/ (not bin/ or obj/), in a fixed order.</summary>
    public static IReadOnlyList<SourceFile> ReadSources(string root) =>
        Directory.EnumerateFiles(Path.Combine(root, "src"), "*.cs", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(root, f).Replace('\\', '/'))
            .Where(p => !p.Contains("/obj/") && !p.Contains("/bin/"))
            .Order(StringComparer.Ordinal)
            .Select(p => new SourceFile(p, File.ReadAllText(Path.Combine(root, p))))
            .ToList();

    /// <summary>The folder holding aot.sln, walking up from <paramref name="start"/>; null if there is none.</summary>
    public static string? FindRepoRoot(string start)
    {
        for (var d = new DirectoryInfo(start); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "aot.sln")))
                return d.FullName;
        return null;
    }

    /// <summary>Generates docs/JOURNEY.md from the repository at <paramref name="root"/>.</summary>
    public static string GenerateFromRepo(string root) =>
        Generate(File.ReadAllText(Path.Combine(root, OrderPath)), ReadSources(root));

    /// <summary>The text of docs/JOURNEY.md for this order file and these sources.</summary>
    /// <exception cref="JourneyException">The inputs disagree; the message says where.</exception>
    public static string Generate(string order, IReadOnlyList<SourceFile> sources)
    {
        var (preface, chapters) = ParseOrder(order);
        var steps = chapters.SelectMany(c => c.Items).OfType<Step>().ToDictionary(s => s.Id);
        var tags = new Dictionary<string, Tag>();
        foreach (var tag in sources.SelectMany(ExtractTags))
        {
            if (!steps.ContainsKey(tag.Id))
                throw new JourneyException($"{tag.File}:{tag.Line}: tag '{tag.Id}' is not in {OrderPath} (add '@ {tag.Id}: Title' where it belongs in the story)");
            if (tags.TryGetValue(tag.Id, out var first))
                throw new JourneyException($"{tag.File}:{tag.Line}: tag '{tag.Id}' is already used at {first.File}:{first.Line}");
            tags.Add(tag.Id, tag);
        }
        foreach (var step in steps.Values)
            if (!step.Pending && !tags.ContainsKey(step.Id))
                throw new JourneyException($"{OrderPath}:{step.Line}: '{step.Id}' has no '// Journey: {step.Id}' tag in src/ (tag a comment, or mark the step '(pending)')");
        return Render(preface, chapters, tags);
    }

    // ---- the order file ----

    private static (List<Item> Preface, List<Chapter> Chapters) ParseOrder(string order)
    {
        var preface = new List<Item>();
        var chapters = new List<Chapter>();
        var seen = new Dictionary<string, int>();
        var paragraph = new List<string>();
        List<Item> Current() => chapters.Count == 0 ? preface : chapters[^1].Items;
        void EndParagraph()
        {
            if (paragraph.Count > 0) Current().Add(new Prose(string.Join("\n", paragraph)));
            paragraph.Clear();
        }

        string[] lines = Lines(order);
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].TrimEnd();
            int number = i + 1;
            if (line.StartsWith('#'))
                continue;
            if (line.Length == 0)
            {
                EndParagraph();
            }
            else if (line.StartsWith("=="))
            {
                EndParagraph();
                string title = line[2..].Trim();
                if (title.Length == 0) throw new JourneyException($"{OrderPath}:{number}: a chapter needs a title ('== Title')");
                chapters.Add(new Chapter(title, []));
            }
            else if (line.StartsWith('@'))
            {
                EndParagraph();
                var m = StepLine().Match(line);
                if (!m.Success || !Id().IsMatch(m.Groups["id"].Value))
                    throw new JourneyException($"{OrderPath}:{number}: a step is '@ id: Title' or '@ id (pending): Title', with an id of a-z, 0-9 and '-'");
                string id = m.Groups["id"].Value;
                if (chapters.Count == 0) throw new JourneyException($"{OrderPath}:{number}: step '{id}' comes before the first chapter ('== Title')");
                if (seen.TryGetValue(id, out int other)) throw new JourneyException($"{OrderPath}:{number}: '{id}' is already listed at line {other}");
                seen.Add(id, number);
                Current().Add(new Step(id, m.Groups["title"].Value.Trim(), m.Groups["pending"].Success, number));
            }
            else
            {
                paragraph.Add(line);
            }
        }
        EndParagraph();
        return (preface, chapters);
    }

    // ---- tags and the comments under them ----

    private static IEnumerable<Tag> ExtractTags(SourceFile file)
    {
        string[] lines = Lines(file.Text);
        for (int i = 0; i < lines.Length; i++)
        {
            var m = TagLine().Match(lines[i]);
            if (!m.Success) continue;
            string id = m.Groups[1].Value.Trim();
            if (id is "skip" or "resume") continue; // excerpt markers (see Excerpt), not tags
            int number = i + 1;
            if (!Id().IsMatch(id))
                throw new JourneyException($"{file.Path}:{number}: malformed tag '// Journey:{m.Groups[1].Value}': the line is '// Journey: id', with an id of a-z, 0-9 and '-'");

            // The comment directly below: all /// lines, or all // lines.
            int j = i + 1;
            bool doc = j < lines.Length && lines[j].TrimStart().StartsWith("///");
            var comment = new List<string>();
            for (; j < lines.Length; j++)
            {
                string t = lines[j].TrimStart();
                bool isDoc = t.StartsWith("///");
                if (!t.StartsWith("//") || isDoc != doc || TagLine().IsMatch(t)) break;
                string body = t[(doc ? 3 : 2)..];
                comment.Add(body.StartsWith(' ') ? body[1..] : body);
            }
            if (comment.All(string.IsNullOrWhiteSpace))
                throw new JourneyException($"{file.Path}:{number}: tag '{id}' has no comment under it (the /// or // lines directly below the tag are the excerpt)");

            // The code the comment is about: the next line that is not blank or an attribute.
            while (j < lines.Length && (lines[j].Trim().Length == 0 || lines[j].TrimStart().StartsWith('[')))
                j++;
            string member = j < lines.Length ? Member(lines[j]) : "";

            string markdown = doc ? DocToMarkdown(comment, file.Path, number, id) : PlainToMarkdown(comment);
            if (j < lines.Length && Excerpt(lines, j) is { } code)
                markdown += "\n\n```csharp\n" + code + "\n```";
            yield return new Tag(id, file.Path, number, member, markdown);
        }
    }

    /// <summary>The most lines of code a step shows; a longer member is cut with a line saying so.</summary>
    public const int MaxExcerptLines = 40;

    /// <summary>Inside an excerpt, the lines from this marker to <see cref="ResumeMarker"/> print as one <c>// ...</c>.</summary>
    public const string SkipMarker = "// Journey: skip";
    public const string ResumeMarker = "// Journey: resume";

    [GeneratedRegex(@"^\s*(?:(?:public|internal|private|protected|static|sealed|abstract|readonly|unsafe|partial|ref|file)\s+)*(?:class|struct|interface|enum|record(?:\s+(?:class|struct))?)\s")]
    private static partial Regex TypeDeclaration();
    // String and character literals, so that braces inside them are not counted.
    [GeneratedRegex("""@"(?:[^"]|"")*"|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)+'""")]
    private static partial Regex Literals();

    /// <summary>
    /// The code under a tagged comment, as lguest's Journey shows it: the
    /// member (or statement) from its first line to where its braces and
    /// parentheses close, dedented, with <see cref="SkipMarker"/> ...
    /// <see cref="ResumeMarker"/> runs folded to <c>// ...</c> and at most
    /// <see cref="MaxExcerptLines"/> lines. Null for a type declaration: a
    /// whole class is no excerpt, its members carry their own tags.
    /// </summary>
    private static string? Excerpt(string[] lines, int start)
    {
        if (TypeDeclaration().IsMatch(lines[start]))
            return null;
        var taken = new List<string>();
        int depth = 0;
        for (int k = start; k < lines.Length; k++)
        {
            string line = lines[k];
            taken.Add(line);
            string code = Literals().Replace(line, "\"\"");
            int comment = code.IndexOf("//", StringComparison.Ordinal);
            if (comment >= 0) code = code[..comment];
            foreach (char ch in code)
                depth += ch is '{' or '(' or '[' ? 1 : ch is '}' or ')' or ']' ? -1 : 0;
            string end = code.TrimEnd();
            if (depth <= 0 && (end.EndsWith(';') || end.EndsWith('}')))
                break;
        }

        var shown = new List<string>();
        bool skipping = false;
        foreach (string line in taken)
        {
            string t = line.Trim();
            if (t == SkipMarker)
            {
                skipping = true;
                shown.Add(line[..(line.Length - line.TrimStart().Length)] + "// ...");
                continue;
            }
            if (t == ResumeMarker) { skipping = false; continue; }
            if (!skipping) shown.Add(line);
        }
        int more = shown.Count - MaxExcerptLines;
        if (more > 0)
            shown = shown.Take(MaxExcerptLines).ToList();
        int indent = shown.Where(l => l.Trim().Length > 0).Select(l => l.Length - l.TrimStart().Length).DefaultIfEmpty(0).Min();
        var result = shown.Select(l => (l.Length >= indent ? l[indent..] : l.TrimStart()).TrimEnd()).ToList();
        if (more > 0)
            result.Add($"// ... ({more} more line{(more == 1 ? "" : "s")} in the file)");
        return string.Join("\n", result);
    }

    /// <summary>A declaration without its body: <c>public VcpuExit Run()</c>.</summary>
    private static string Member(string line)
    {
        string s = line.Trim();
        int arrow = s.IndexOf(" =>", StringComparison.Ordinal);
        if (arrow >= 0) s = s[..arrow];
        s = s.TrimEnd('{', ' ');
        return s;
    }

    private static string PlainToMarkdown(List<string> comment)
    {
        var paragraphs = new List<string>();
        var current = new List<string>();
        foreach (string line in comment.Append(""))
        {
            if (line.Trim().Length > 0) { current.Add(line.TrimEnd()); continue; }
            if (current.Count > 0) paragraphs.Add(string.Join("\n", current));
            current.Clear();
        }
        return string.Join("\n\n", paragraphs);
    }

    // Paragraph breaks and code blocks survive the whitespace folding as these markers.
    private const char Break = '\u0001';
    private const char CodeMark = '\u0002';

    private static string DocToMarkdown(List<string> comment, string path, int line, string id)
    {
        XElement root;
        try
        {
            root = XElement.Parse("<doc>" + string.Join("\n", comment) + "</doc>", LoadOptions.PreserveWhitespace);
        }
        catch (XmlException e)
        {
            throw new JourneyException($"{path}:{line}: the doc comment under tag '{id}' is not well-formed XML: {e.Message}");
        }
        var code = new List<string>();
        var sb = new StringBuilder();
        RenderBlock(root, sb, code);
        var paragraphs = new List<string>();
        foreach (string part in sb.ToString().Split(Break))
        {
            string text = Spaces().Replace(part, " ").Trim();
            if (text.Length == 0) continue;
            if (text.Length > 2 && text[0] == CodeMark && text[^1] == CodeMark && int.TryParse(text[1..^1], out int k))
                text = code[k];
            paragraphs.Add(text);
        }
        return string.Join("\n\n", paragraphs);
    }

    private static void RenderBlock(XElement e, StringBuilder sb, List<string> code)
    {
        foreach (var node in e.Nodes())
        {
            if (node is XText text) { sb.Append(text.Value); continue; }
            if (node is not XElement x) continue;
            switch (x.Name.LocalName)
            {
                case "summary" or "remarks" or "value" or "para":
                    sb.Append(Break); RenderBlock(x, sb, code); sb.Append(Break);
                    break;
                case "returns":
                    sb.Append(Break).Append("Returns "); RenderBlock(x, sb, code); sb.Append(Break);
                    break;
                case "param" or "typeparam":
                    sb.Append(Break).Append("- `").Append(Attr(x, "name")).Append("`: "); RenderBlock(x, sb, code); sb.Append(Break);
                    break;
                case "exception":
                    sb.Append(Break).Append("Throws `").Append(Cref(Attr(x, "cref"))).Append("`: "); RenderBlock(x, sb, code); sb.Append(Break);
                    break;
                case "list":
                    foreach (var item in x.Elements("item"))
                    {
                        sb.Append(Break).Append("- ");
                        if (item.Element("term") is { } term) { RenderBlock(term, sb, code); sb.Append(": "); }
                        RenderBlock(item.Element("description") ?? item, sb, code);
                    }
                    sb.Append(Break);
                    break;
                case "term" or "description":
                    break; // rendered by "list"
                case "see" when x.Attribute("cref") is { } cref:
                    sb.Append('`').Append(x.Value.Length > 0 ? x.Value : Cref(cref.Value)).Append('`');
                    break;
                case "see" when x.Attribute("langword") is { } word:
                    sb.Append('`').Append(word.Value).Append('`');
                    break;
                case "see" when x.Attribute("href") is { } href:
                    sb.Append('[').Append(x.Value.Length > 0 ? x.Value : href.Value).Append("](").Append(href.Value).Append(')');
                    break;
                case "paramref" or "typeparamref":
                    sb.Append('`').Append(Attr(x, "name")).Append('`');
                    break;
                case "c":
                    sb.Append('`').Append(x.Value).Append('`');
                    break;
                case "code":
                    code.Add("```csharp\n" + x.Value.Trim('\n').TrimEnd() + "\n```");
                    sb.Append(Break).Append(CodeMark).Append(code.Count - 1).Append(CodeMark).Append(Break);
                    break;
                case "inheritdoc" or "seealso":
                    break;
                default:
                    RenderBlock(x, sb, code);
                    break;
            }
        }
    }

    private static string Attr(XElement x, string name) => x.Attribute(name)?.Value ?? "";

    /// <summary><c>T:Ns.Type</c> and <c>M:Type.Method(int)</c> read as <c>Ns.Type</c>, <c>Type.Method(int)</c>.</summary>
    private static string Cref(string cref) => cref.Length > 2 && cref[1] == ':' ? cref[2..] : cref;

    // ---- the document ----

    private static string Render(List<Item> preface, List<Chapter> chapters, Dictionary<string, Tag> tags)
    {
        var sb = new StringBuilder();
        sb.Append("# The Journey through Sharpvisor\n\n");
        sb.Append($"<!-- Generated by `{Command}` from the `// Journey: id` tags in src/ and the order in {OrderPath}. Do not edit by hand. -->\n\n");
        sb.Append($"> This file is generated: `{Command}` collects the comments tagged\n");
        sb.Append($"> `// Journey: id` in `src/` and prints them in the order, and under the\n");
        sb.Append($"> chapters, that [`{OrderPath}`](journey.order) gives. Do not edit it by\n");
        sb.Append("> hand: change the comments or the order file and run the command again.\n");
        sb.Append("> `tests/Docs/JourneyTests.cs` fails while this file is stale.\n\n");
        RenderItems(preface, sb, tags);

        sb.Append("## Contents\n\n");
        for (int i = 0; i < chapters.Count; i++)
            sb.Append($"{i + 1}. {chapters[i].Title}\n");
        sb.Append('\n');

        for (int i = 0; i < chapters.Count; i++)
        {
            sb.Append($"## {i + 1}. {chapters[i].Title}\n\n");
            RenderItems(chapters[i].Items, sb, tags);
        }
        return sb.ToString().TrimEnd('\n') + "\n";
    }

    private static void RenderItems(List<Item> items, StringBuilder sb, Dictionary<string, Tag> tags)
    {
        foreach (var item in items)
        {
            if (item is Prose prose)
            {
                sb.Append(prose.Text).Append("\n\n");
                continue;
            }
            var step = (Step)item;
            sb.Append($"### {step.Title}\n\n");
            if (!tags.TryGetValue(step.Id, out var tag))
            {
                sb.Append($"*To come: no comment is tagged `// Journey: {step.Id}` yet.*\n\n");
                continue;
            }
            string where = $"[`{tag.File}`](../{tag.File})";
            sb.Append(tag.Member.Length > 0 ? $"{where}: `{tag.Member.Replace("`", "'")}`\n\n" : $"{where}\n\n");
            sb.Append(tag.Markdown).Append("\n\n");
        }
    }

    private static string[] Lines(string text) => text.Replace("\r\n", "\n").Split('\n');
}
