using System.Text;
using Sharpvisor.Vmm.Launcher;

namespace Sharpvisor.Tests.Guests;

/// <summary>
/// Each C guest runs twice: as a static i386 Linux program on the host CPU
/// (the oracle) and in Sharpvisor with each engine. The guest's stdout must
/// be byte-identical, and both must exit 0.
/// </summary>
public class GuestRunTests
{
    public static TheoryData<string> Programs => new(GuestBinaries.Programs);

    public static TheoryData<string, string> ProgramsAndEngines
    {
        get
        {
            var data = new TheoryData<string, string>();
            foreach (string p in GuestBinaries.Programs)
                foreach (string engine in new[] { "il", "threaded", "x64" })
                    data.Add(p, engine);
            return data;
        }
    }

    /// <summary>The oracle itself: passes today, and shows the guests build and behave.</summary>
    [Theory]
    [MemberData(nameof(Programs))]
    public void NativeLinuxBuild_PrintsAChecksumAndExits0(string program)
    {
        GuestBinaries.RequireBuilt();
        ProcessResult native = ProcessResult.Run(GuestBinaries.Native(program), [], TimeSpan.FromMinutes(1));
        Assert.Equal(0, native.Status);
        string text = Encoding.UTF8.GetString(native.Stdout);
        Assert.Matches(@"(?m)^checksum 0x[0-9a-f]{8}\n\z", text);
        Assert.DoesNotContain("NOT", text);
        Assert.DoesNotContain("DISAGREE", text);
    }

    [Theory]
    [MemberData(nameof(ProgramsAndEngines))]
    public void Guest_OutputMatchesTheNativeRun_AndExits0(string program, string engine)
    {
        GuestBinaries.RequireBuilt();
        ProcessResult native = ProcessResult.Run(GuestBinaries.Native(program), [], TimeSpan.FromMinutes(1));
        Assert.Equal(0, native.Status);

        var stdout = new MemoryStream();
        var stderr = new StringWriter();
        int status = Cli.Execute(["run", GuestBinaries.Guest(program), "--engine", engine, "--timeout", "120"], stdout, stderr);

        Assert.Equal(Encoding.UTF8.GetString(native.Stdout), Encoding.UTF8.GetString(stdout.ToArray()));
        Assert.Equal(native.Stdout, stdout.ToArray()); // byte for byte, not just as text
        Assert.Equal("", stderr.ToString());
        Assert.Equal(0, status);
    }
}
