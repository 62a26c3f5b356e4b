using Sharpvisor.Journey;

// Writes docs/JOURNEY.md from the `// Journey: id` comments in src/, in the
// order docs/journey.order gives (the format: JourneyGenerator's remarks).
//   dotnet run --project tools/Journey              regenerate the file
//   dotnet run --project tools/Journey -- --check   exit 1 if it is stale
// Exit 0 on success; 1, with one line on stderr, for a stale file or inputs
// that disagree (a tag the order does not list, an id used twice...); 64 for
// a bad argument.
bool check = false;
string? root = null;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--check": check = true; break;
        case "--root" when i + 1 < args.Length: root = args[++i]; break;
        case "-h" or "--help":
            Console.WriteLine("usage: journey [--check] [--root DIR]   (writes docs/JOURNEY.md; --check only compares)");
            return 0;
        default:
            Console.Error.WriteLine($"journey: unknown argument '{args[i]}' (usage: journey [--check] [--root DIR])");
            return 64;
    }
}
root ??= JourneyGenerator.FindRepoRoot(Directory.GetCurrentDirectory()) ?? JourneyGenerator.FindRepoRoot(AppContext.BaseDirectory);
if (root == null)
{
    Console.Error.WriteLine("journey: no aot.sln above the current directory: run it inside the repository, or pass --root");
    return 1;
}

string text;
try
{
    text = JourneyGenerator.GenerateFromRepo(root);
}
catch (JourneyException e)
{
    Console.Error.WriteLine($"journey: {e.Message}");
    return 1;
}

string output = Path.Combine(root, JourneyGenerator.OutputPath);
string? old = File.Exists(output) ? File.ReadAllText(output) : null;
if (check)
{
    if (old != text)
    {
        Console.Error.WriteLine($"journey: {JourneyGenerator.OutputPath} is stale: run {JourneyGenerator.Command}");
        return 1;
    }
    Console.WriteLine($"journey: {JourneyGenerator.OutputPath} is up to date");
    return 0;
}
if (old != text)
    File.WriteAllText(output, text);
Console.WriteLine($"journey: {(old == text ? "unchanged" : "wrote")} {JourneyGenerator.OutputPath}");
return 0;
