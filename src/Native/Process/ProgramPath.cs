namespace Sharpvisor.Native;

/// <summary>
/// Finds a program the way a shell would before running it, so that a
/// command that cannot start is refused before anything else starts
/// (exit 69, "unavailable"), rather than found out from a child that dies at once.
/// </summary>
public static class ProgramPath
{
    /// <summary>
    /// Where <paramref name="program"/> would be run from: itself if it holds
    /// a '/', otherwise the first directory of <paramref name="searchPath"/>
    /// (default: $PATH, or glibc's "/bin:/usr/bin" when PATH is unset) that
    /// has an executable file of that name. An empty directory entry means
    /// the current directory, as in execvp. Returns null if there is none.
    /// </summary>
    public static string? Find(string program, string? searchPath = null)
    {
        ArgumentNullException.ThrowIfNull(program);
        if (program.Length == 0) return null;
        if (program.Contains('/')) return IsExecutableFile(program) ? program : null;
        searchPath ??= Environment.GetEnvironmentVariable("PATH") ?? "/bin:/usr/bin";
        foreach (string dir in searchPath.Split(':'))
        {
            string candidate = dir.Length == 0 ? program : Path.Join(dir, program);
            if (IsExecutableFile(candidate)) return dir.Length == 0 ? Path.GetFullPath(candidate) : candidate;
        }
        return null;
    }

    /// <summary>
    /// True if <paramref name="path"/> (symlinks followed) is not a directory
    /// and access(2) grants execute. access alone is not enough: directories
    /// are "executable" too, and for root it succeeds on any file with an x bit.
    /// </summary>
    public static bool IsExecutableFile(string path) =>
        File.Exists(path) && Interop.Access(path, Interop.X_OK) == 0;
}
