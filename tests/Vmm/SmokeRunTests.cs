using Sharpvisor.Vmm;

namespace Sharpvisor.Tests.Vmm;

public class SmokeRunTests
{
    [Fact]
    public void SmokeRun_DeliversEveryHitToItsEventFd()
    {
        var output = new StringWriter();
        Assert.Equal(0, SmokeRun.Run(20_000, output));
        Assert.Contains("smoke: ok", output.ToString());
    }

    [Fact]
    public void Main_WithUnknownCommand_IsUsageError64()
    {
        Assert.Equal(64, Program.Main(["frobnicate"]));
        Assert.Equal(64, Program.Main(["smoke", "-3"]));
    }
}
