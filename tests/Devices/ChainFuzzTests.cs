using System.Globalization;
using Sharpvisor.Devices.Virtio.Queues;

namespace Sharpvisor.Tests.Devices;

/// <summary>
/// The fuzzer (<see cref="ChainFuzzer"/>) against each device, over guest RAM
/// between guard pages: no crash, nothing escaping a queue thread, every
/// well-formed request served as the spec says, every malformed one refused
/// with DEVICE_NEEDS_RESET. And its negative control: with one chain check
/// switched off, the same fuzzer must notice.
/// </summary>
[Collection("Devices")]
public sealed class ChainFuzzTests(ITestOutputHelper output)
{
    private const int Iterations = 3000;
    private const int DiskSectors = 256;

    [Fact]
    public void TheGuardPagesAreInaccessible()
    {
        using var ram = new GuardedRam(1 << 20);
        // /proc/self/maps: the kernel's own account of the protections around RAM.
        ulong before = (ulong)ram.GuardBefore;
        ulong after = before + 4096 + (1 << 20);
        string[] maps = File.ReadAllLines("/proc/self/maps");
        Assert.Equal("---p", PermissionsAt(maps, before));
        Assert.Equal("rw-p", PermissionsAt(maps, before + 4096));
        Assert.Equal("rw-p", PermissionsAt(maps, after - 1));
        Assert.Equal("---p", PermissionsAt(maps, after));
    }

    private static string? PermissionsAt(string[] maps, ulong address)
    {
        foreach (string line in maps)
        {
            string[] fields = line.Split(' ', 3);
            string[] range = fields[0].Split('-');
            ulong start = ulong.Parse(range[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            ulong end = ulong.Parse(range[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            if (address >= start && address < end) return fields[1];
        }
        return null;
    }

    [Fact]
    public void EntropyRefusesEveryMalformedChainAndServesTheRest()
    {
        using DeviceRig rig = DeviceRig.Entropy(ChainFuzzer.RamSize);
        FuzzResult r = new ChainFuzzer(rig, seed: 1234, disk: null).Run(Iterations);
        output.WriteLine(r.ToString());
        AssertClean(r, rig);
    }

    [Fact]
    public void ConsoleTransmitRefusesEveryMalformedChainAndSendsTheRest()
    {
        using var stdin = new InputPipe();
        using (DeviceRig rig = new(new Sharpvisor.Devices.Console.ConsoleDevice(stdin.ReadEnd), "virtio-console0", ChainFuzzer.RamSize))
        {
            FuzzResult r = new ChainFuzzer(rig, seed: 2468, disk: null, transmitQueue: 1).Run(Iterations);
            output.WriteLine(r.ToString());
            AssertClean(r, rig);
        }
    }

    [Fact]
    public void BlockRefusesEveryMalformedChainAndServesTheRest()
    {
        using var disk = new TempDisk(DiskSectors * 512, seed: 5);
        byte[] model;
        using (DeviceRig rig = DeviceRig.Block(disk, ramSize: ChainFuzzer.RamSize))
        {
            var fuzzer = new ChainFuzzer(rig, seed: 4321, disk);
            FuzzResult r = fuzzer.Run(Iterations);
            output.WriteLine(r.ToString());
            AssertClean(r, rig);
            model = fuzzer.Model!;
        }
        // The oracle nobody here wrote: the file on disk, after every write the fuzzer modelled.
        Assert.Equal(model, disk.ReadBack());
    }

    private static void AssertClean(FuzzResult r, DeviceRig rig)
    {
        Assert.True(r.AcceptedMalformed.Count is 0 && r.RejectedValid.Count is 0 && r.WrongResults.Count is 0, r.ToString());
        Assert.Equal(Iterations, r.Iterations);
        // Every kind of malformation and every shape was actually tried.
        foreach (Mutation m in Enum.GetValues<Mutation>())
            Assert.True(r.Seen.GetValueOrDefault(m) > 0, $"{m} never ran: {r}");
        foreach (Shape s in Enum.GetValues<Shape>())
            Assert.True(r.Shapes.GetValueOrDefault(s) > 0, $"shape {s} never ran");
        Assert.True(r.ValidServed > Iterations / 4, r.ToString());
        Assert.True(r.MalformedRejected > Iterations / 4, r.ToString());
        Assert.Equal(0, rig.Host.WritesOutsideRam);
        Assert.DoesNotContain(rig.Host.Reports, l => l.Contains("internal error"));
        Assert.All(rig.Host.Reports, l => Assert.StartsWith(rig.Transport.Name + ": ", l));
    }

    [Fact]
    public void NegativeControl_WithTheOrderCheckOffTheFuzzerFindsTheHole()
    {
        using var disk = new TempDisk(DiskSectors * 512, seed: 6);
        using DeviceRig rig = DeviceRig.Block(disk, ramSize: ChainFuzzer.RamSize);
        ChainWalker.SkipOrderCheckForTests = true;
        FuzzResult r;
        try
        {
            r = new ChainFuzzer(rig, seed: 4321, disk).Run(Iterations);
        }
        finally
        {
            ChainWalker.SkipOrderCheckForTests = false;
        }
        output.WriteLine(r.ToString());
        Assert.True(r.AcceptedMalformed.Count > 0, $"the fuzzer missed a disabled check: {r}");
        // Only chains whose fault is the order the check looks at get through.
        Assert.All(r.AcceptedMalformed, a => Assert.True(
            a.Contains(nameof(Mutation.ReadableAfterWritable)) || a.Contains(nameof(Mutation.WrongDirection)), a));
    }
}
