using Sharpvisor.Tests.Guests;

namespace Sharpvisor.Tests.Vmm;

/// <summary>
/// <c>--device</c> on the command line (docs/guest-abi.md, "Devices"): every
/// mistake is one line and a documented status, found before the guest runs
/// or any target is opened.
/// </summary>
public class DeviceOptionTests
{
    private static void AssertOneLine(CliTests.Result r, int status, string contains) => CliTests.AssertOneLineError(r, status, contains);

    [Theory]
    [InlineData("floppy", "unknown kind 'floppy'")]
    [InlineData("", "unknown kind ''")]
    [InlineData("blk", "blk needs path=")]
    [InlineData("blk,path=", "option 'path' needs a value")]
    [InlineData("blk,path=a,path=b", "option 'path' is given twice")]
    [InlineData("blk,path=a,readonly=yes", "readonly is on or off, not 'yes'")]
    [InlineData("blk,path=a,cache=none", "unknown option 'cache'")]
    [InlineData("rng,x=1", "rng takes no options")]
    [InlineData("console,port=1", "console takes no options")]
    public void ABadSpec_IsAUsageError(string spec, string message)
    {
        GuestBinaries.RequireBuilt();
        AssertOneLine(CliTests.Execute("run", GuestBinaries.Guest("hello"), "--device", spec), 64, message);
    }

    [Fact]
    public void SeventeenDevices_AreAUsageError()
    {
        GuestBinaries.RequireBuilt();
        var args = new List<string> { "run", GuestBinaries.Guest("hello") };
        for (int i = 0; i < 17; i++) args.AddRange(["--device", "rng"]);
        AssertOneLine(CliTests.Execute([.. args]), 64, "at most 16 devices");
    }

    [Fact]
    public void TwoConsoles_AreAUsageError()
    {
        GuestBinaries.RequireBuilt();
        AssertOneLine(CliTests.Execute("run", GuestBinaries.Guest("hello"), "--device", "console", "--device", "rng", "--device", "console"),
            64, "--device console: a VM has at most one console device");
    }

    [Fact]
    public void AnIrqOnADevicesLine_IsAUsageError_BeforeItsTargetIsOpened()
    {
        GuestBinaries.RequireBuilt();
        // fd:99 is not open: were the target opened first, this would be 69.
        AssertOneLine(CliTests.Execute("run", GuestBinaries.Guest("hello"), "--device", "rng", "--device", "rng", "--irq", "17=fd:99"),
            64, "interrupt 17 is the line of device 1");
    }

    [Theory]
    [InlineData("rng", "0xd0000000", 0)]
    [InlineData("console", "0xd0000003", 3)] // the control transmitq's, a queue that exists only with MULTIPORT
    public void ANotifyOfADoorbell_IsAUsageError(string device, string value, int queue)
    {
        GuestBinaries.RequireBuilt();
        AssertOneLine(CliTests.Execute("run", GuestBinaries.Guest("hello"), "--device", device, "--notify", $"{value}=fd:99"),
            64, $"doorbell of queue {queue} of device 0");
    }

    [Fact]
    public void AMissingDiskImage_Is66()
    {
        GuestBinaries.RequireBuilt();
        AssertOneLine(CliTests.Execute("run", GuestBinaries.Guest("hello"), "--device", "blk,path=/nonexistent/disk.img"), 66, "/nonexistent/disk.img");
    }

    [Fact]
    public void ADiskImageNotWholeSectors_IsAUsageError()
    {
        GuestBinaries.RequireBuilt();
        string path = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(path, new byte[1000]);
            AssertOneLine(CliTests.Execute("run", GuestBinaries.Guest("hello"), "--device", $"blk,path={path}"), 64, "512");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ADiskImageLockedByAnotherVm_Is69()
    {
        GuestBinaries.RequireBuilt();
        string path = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(path, new byte[4096]);
            // Another VM's lock: flock taken by a process that holds it, as a running VM does.
            using var holder = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("flock", ["-x", path, "sleep", "600"]))!;
            try
            {
                WaitForLock(path);
                AssertOneLine(CliTests.Execute("run", GuestBinaries.Guest("hello"), "--device", $"blk,path={path}"), 69, "lock");
            }
            finally
            {
                holder.Kill(entireProcessTree: true);
                holder.WaitForExit();
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Until flock(1) holds the lock: a non-blocking attempt of our own fails (bounded, generously).</summary>
    private static void WaitForLock(string path)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            var probe = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("flock", ["-n", "-s", path, "true"]))!;
            probe.WaitForExit();
            if (probe.ExitCode != 0) return;
            Thread.Sleep(20);
        }
        throw new TimeoutException("flock(1) did not take the lock in 60 s");
    }
}
