using System.Diagnostics;

namespace Sharpvisor.Tests.Guests;

/// <summary>
/// The C guests under guests/, built once per test run by guests/build.sh
/// (idempotent: after test.sh built them it only checks timestamps). Where
/// gcc cannot build 32-bit code, the tests that need guests skip, saying why.
/// </summary>
internal static class GuestBinaries
{
    public static readonly string[] Programs = ["hello", "sort", "int64", "switch", "strings", "recursion", "hash"];

    private static readonly Lazy<string?> s_unavailable = new(Build);

    public static string RepoRoot { get; } = FindRepoRoot();

    public static string BuildDir => Path.Combine(RepoRoot, "guests", "build");

    public static string Guest(string name) => Path.Combine(BuildDir, name + ".elf");

    public static string Native(string name) => Path.Combine(BuildDir, name + ".linux");

    /// <summary>Skips the calling test unless the guests are built.</summary>
    public static void RequireBuilt()
    {
        if (s_unavailable.Value is string why)
            Assert.Skip(why);
    }

    /// <summary>Skips the calling test unless this build and host can run <paramref name="engine"/> (il, x64, threaded).</summary>
    public static void RequireEngine(string engine)
    {
        if (engine == "il" && !Sharpvisor.Jit.Runtime.Engines.IsIlAvailable) Assert.Skip("the IL engine needs dynamic code");
        if (engine == "x64" && !Sharpvisor.Jit.Runtime.Engines.IsX64Available) Assert.Skip("the x64 engine needs an x86-64 Linux host");
    }

    private static string? Build()
    {
        ProcessResult r = ProcessResult.Run("bash", [Path.Combine(RepoRoot, "guests", "build.sh")], TimeSpan.FromMinutes(5));
        if (r.Status == 0) return null;
        return $"guests could not be built (gcc -m32 missing? test.sh installs gcc-multilib): {r.Stderr.Trim()}";
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "aot.sln")))
                return dir.FullName;
        throw new InvalidOperationException($"no aot.sln above {AppContext.BaseDirectory}");
    }
}

/// <summary>A finished child process: status and everything it wrote.</summary>
internal sealed record ProcessResult(int Status, byte[] Stdout, string Stderr)
{
    public static ProcessResult Run(string file, IEnumerable<string> args, TimeSpan limit)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in args) start.ArgumentList.Add(a);
        using Process p = Process.Start(start)!;
        // Both pipes drain concurrently, so neither can fill and block the child.
        var stdout = new MemoryStream();
        Task copy = p.StandardOutput.BaseStream.CopyToAsync(stdout);
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(limit))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} ran longer than {limit}");
        }
        copy.Wait();
        return new ProcessResult(p.ExitCode, stdout.ToArray(), stderr.Result);
    }
}
