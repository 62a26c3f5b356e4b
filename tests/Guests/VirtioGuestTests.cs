using Sharpvisor.Tests.Vmm;

namespace Sharpvisor.Tests.Guests;

/// <summary>
/// The C guests that drive virtio devices through guests/virtio.h, a driver
/// written from the virtio specification, on every engine, with interrupts
/// and by polling, with and without EVENT_IDX and indirect descriptors, on
/// one vCPU and on several. The oracle for the block device is the disk file
/// itself, read back on the host after the guest has gone.
/// </summary>
public class VirtioGuestTests
{
    /// <summary>Every engine with every build of a guest (guests/build.sh names them).</summary>
    private static TheoryData<string, string> EnginesAndBuilds(params string[] builds)
    {
        var data = new TheoryData<string, string>();
        foreach (string engine in new[] { "threaded", "il", "x64" })
            foreach (string build in builds)
                data.Add(engine, build);
        return data;
    }

    public static TheoryData<string, string> BlockCases() => EnginesAndBuilds("vblk", "vblk-poll", "vblk-plain");

    /// <summary>vblk.c's image pattern: byte k of sector s is (s * 7 + k) &amp; 0xff.</summary>
    private static byte ImagePattern(int sector, int k) => (byte)(sector * 7 + k);

    private static string NewDisk()
    {
        string path = Path.Combine(Path.GetTempPath(), $"sv-disk-{Guid.NewGuid():n}.img");
        var image = new byte[128 * 512];
        for (int s = 0; s < 128; s++)
            for (int k = 0; k < 512; k++)
                image[s * 512 + k] = ImagePattern(s, k);
        File.WriteAllBytes(path, image);
        return path;
    }

    [Theory]
    [MemberData(nameof(BlockCases))]
    public void Vblk_ReadsWritesAndFlushes_AndTheFileHoldsWhatItWrote(string engine, string guest)
    {
        GuestBinaries.RequireBuilt();
        GuestBinaries.RequireEngine(engine);
        string disk = NewDisk();
        try
        {
            CliTests.Result r = CliTests.Execute("run", GuestBinaries.Guest(guest), "--engine", engine, "--device", $"blk,path={disk}", "--timeout", "120");
            Assert.True(r.Status == 0, $"exit {r.Status}\n{r.Stdout}\n{r.Stderr}");
            Assert.Contains("vblk: 12 checks passed", r.Stdout);
            byte[] after = File.ReadAllBytes(disk);
            Assert.Equal(128 * 512, after.Length); // the write past the end did not extend it
            for (int s = 0; s < 128; s++)
            {
                bool written = s is >= 16 and <= 23 or 100;
                for (int k = 0; k < 512; k++)
                {
                    byte expected = written ? (byte)~ImagePattern(s, k) : ImagePattern(s, k);
                    if (after[s * 512 + k] != expected)
                        Assert.Fail($"sector {s} byte {k}: 0x{after[s * 512 + k]:x2}, expected 0x{expected:x2}");
                }
            }
        }
        finally
        {
            File.Delete(disk);
        }
    }

    [Theory]
    [InlineData("threaded")]
    [InlineData("il")]
    [InlineData("x64")]
    public void Vblk_OnAFourVcpuMachine_StillPasses(string engine)
    {
        // vCPU 0 drives the device; the others wait in hlt, where a device
        // interrupt must not be lost to them.
        GuestBinaries.RequireBuilt();
        GuestBinaries.RequireEngine(engine);
        string disk = NewDisk();
        try
        {
            CliTests.Result r = CliTests.Execute("run", GuestBinaries.Guest("vblk"), "--engine", engine, "--vcpus", "4", "--device", $"blk,path={disk}", "--timeout", "120");
            Assert.True(r.Status == 0, $"exit {r.Status}\n{r.Stdout}\n{r.Stderr}");
            Assert.Contains("vblk: 12 checks passed", r.Stdout);
        }
        finally
        {
            File.Delete(disk);
        }
    }

    [Fact]
    public void Vblk_ReadOnly_RefusesTheWrites_AndTheFileIsUnchanged()
    {
        GuestBinaries.RequireBuilt();
        string disk = NewDisk();
        try
        {
            byte[] before = File.ReadAllBytes(disk);
            CliTests.Result r = CliTests.Execute("run", GuestBinaries.Guest("vblk"), "--device", $"blk,path={disk},readonly=on", "--timeout", "120");
            Assert.True(r.Status == 0, $"exit {r.Status}\n{r.Stdout}\n{r.Stderr}");
            Assert.Contains("vblk: 11 checks passed", r.Stdout);
            Assert.Equal(before, File.ReadAllBytes(disk));
        }
        finally
        {
            File.Delete(disk);
        }
    }

    public static TheoryData<string, string> EntropyCases() => EnginesAndBuilds("vrng", "vrng-poll", "vrng-smp");

    [Theory]
    [MemberData(nameof(EntropyCases))]
    public void Vrng_DrawsBytesThatAreNotZeroAndDiffer(string engine, string guest)
    {
        GuestBinaries.RequireBuilt();
        GuestBinaries.RequireEngine(engine);
        string[] args = guest == "vrng-smp"
            ? ["run", GuestBinaries.Guest(guest), "--engine", engine, "--vcpus", "2", "--device", "rng", "--device", "rng", "--timeout", "120"]
            : ["run", GuestBinaries.Guest(guest), "--engine", engine, "--device", "rng", "--timeout", "120"];
        CliTests.Result r = CliTests.Execute(args);
        Assert.True(r.Status == 0, $"exit {r.Status}\n{r.Stdout}\n{r.Stderr}");
        Assert.Contains(guest == "vrng-smp" ? "vrng: 7 checks passed" : "vrng: 3 checks passed", r.Stdout);
    }

    [Theory]
    [InlineData("threaded")]
    [InlineData("il")]
    [InlineData("x64")]
    public void CodeReadFromTheDisk_OverAFunctionThatRanHot_RunsTheNewCode(string engine)
    {
        GuestBinaries.RequireBuilt();
        GuestBinaries.RequireEngine(engine);
        // Sector 0 begins with mov eax, 0x600dc0de; ret (vcode.c); the rest of the page is zeros.
        string disk = Path.Combine(Path.GetTempPath(), $"sv-code-{Guid.NewGuid():n}.img");
        var image = new byte[64 * 512];
        new byte[] { 0xb8, 0xde, 0xc0, 0x0d, 0x60, 0xc3 }.CopyTo(image, 0);
        File.WriteAllBytes(disk, image);
        try
        {
            CliTests.Result r = CliTests.Execute("run", GuestBinaries.Guest("vcode"), "--engine", engine, "--device", $"blk,path={disk}", "--timeout", "120");
            Assert.True(r.Status == 0, $"exit {r.Status}\n{r.Stdout}\n{r.Stderr}");
            Assert.Equal("vcode: before 1000\nvcode: after 0x600dc0de\n", r.Stdout);
        }
        finally
        {
            File.Delete(disk);
        }
    }

    [Fact]
    public void AGuestWaitingOnAnIdleDevice_IsADeadlock()
    {
        // hlt; jmp back: nothing was asked of the device, so nothing can come.
        string image = Path.Combine(Path.GetTempPath(), $"sv-idle-{Guid.NewGuid():n}.bin");
        File.WriteAllBytes(image, [0xF4, 0xEB, 0xFD]);
        try
        {
            CliTests.Result r = CliTests.Execute("run", image, "--flat", "0x100000", "--device", "rng", "--timeout", "120");
            Assert.Equal(81, r.Status);
        }
        finally
        {
            File.Delete(image);
        }
    }
}
