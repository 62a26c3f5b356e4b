using Sharpvisor.Native;
using Sharpvisor.Tests.Vmm;

namespace Sharpvisor.Tests.Native;

// File.SetUnixFileMode is Unix-only, like everything Sharpvisor does.
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class ProgramPathTests
{
    [Fact]
    public void Find_OfAProgramOnPath_ReturnsItsPath()
    {
        string? sh = ProgramPath.Find("sh");
        Assert.NotNull(sh);
        Assert.EndsWith("/sh", sh);
        Assert.True(ProgramPath.IsExecutableFile(sh));
    }

    [Fact]
    public void Find_OfAnUnknownProgram_ReturnsNull()
    {
        Assert.Null(ProgramPath.Find("sharpvisor-no-such-program"));
        Assert.Null(ProgramPath.Find(""));
    }

    [Fact]
    public void Find_WithASlash_ChecksThatPathOnly()
    {
        Assert.Equal("/bin/sh", ProgramPath.Find("/bin/sh"));
        Assert.Null(ProgramPath.Find("/etc/passwd"));   // exists, not executable
        Assert.Null(ProgramPath.Find("/nonexistent/sh"));
    }

    [Fact]
    public void Find_SkipsFilesWithoutExecutePermission_AndDirectories()
    {
        using var first = new TempDir();
        using var second = new TempDir();
        string plain = first.Write("tool", [(byte)'#', (byte)'!']);
        Directory.CreateDirectory(Path.Combine(second.Path, "tool"));
        string search = $"{first.Path}:{second.Path}";
        Assert.Null(ProgramPath.Find("tool", search));

        File.SetUnixFileMode(plain, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        Assert.Equal(plain, ProgramPath.Find("tool", search));
    }

    [Fact]
    public void Find_TakesTheFirstMatchInPathOrder()
    {
        using var first = new TempDir();
        using var second = new TempDir();
        string a = first.Write("tool", []);
        string b = second.Write("tool", []);
        File.SetUnixFileMode(a, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        File.SetUnixFileMode(b, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        Assert.Equal(b, ProgramPath.Find("tool", $"/nonexistent:{second.Path}:{first.Path}"));
    }
}
