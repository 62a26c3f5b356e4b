using Sharpvisor.Devices.Virtio.Mmio;

namespace Sharpvisor.Tests.Devices;

/// <summary>
/// The register file against the ABI's table and spec 4.2.2: every register's
/// value or effect, the access rules, reserved offsets, and the ring checks
/// made when a queue becomes ready.
/// </summary>
[Collection("Devices")]
public sealed class MmioRegisterTests
{
    // The ABI table's offsets, typed in from docs/guest-abi.md (not from the device's enum).
    private static readonly uint[] Defined =
    [
        0x000, 0x004, 0x008, 0x00c, 0x010, 0x014, 0x020, 0x024, 0x030, 0x034, 0x038, 0x044, 0x050,
        0x060, 0x064, 0x070, 0x080, 0x084, 0x090, 0x094, 0x0a0, 0x0a4, 0x0ac, 0x0b0, 0x0b4, 0x0b8,
        0x0bc, 0x0c0, 0x0fc,
    ];

    [Fact]
    public void IdentityRegistersReadTheSpecsValues()
    {
        using var disk = new TempDisk(4096);
        using DeviceRig blk = DeviceRig.Block(disk);
        using DeviceRig rng = DeviceRig.Entropy();
        foreach ((DeviceRig rig, uint id) in new[] { (blk, 2u), (rng, 4u) })
        {
            Assert.Equal(0x74726976u, rig.Driver.Read(0x000)); // "virt"
            Assert.Equal(2u, rig.Driver.Read(0x004));
            Assert.Equal(id, rig.Driver.Read(0x008));
            Assert.Equal(0x56535653u, rig.Driver.Read(0x00c)); // "SVSV"
        }
    }

    [Theory]
    [InlineData(false, new[] { 2, 6, 9, 28, 29, 32 })]
    [InlineData(true, new[] { 2, 5, 6, 9, 28, 29, 32 })]
    public void BlockOffersExactlyTheAbisFeatures(bool readOnly, int[] bits)
    {
        using var disk = new TempDisk(4096);
        using DeviceRig rig = DeviceRig.Block(disk, readOnly);
        Assert.Equal(bits.Aggregate(0UL, (m, b) => m | (1UL << b)), Offered(rig.Driver));
    }

    [Fact]
    public void EntropyOffersTheCommonFeatures()
    {
        using DeviceRig rig = DeviceRig.Entropy();
        Assert.Equal((1UL << 28) | (1UL << 29) | (1UL << 32), Offered(rig.Driver));
        rig.Driver.Write(0x014, 2);
        Assert.Equal(0u, rig.Driver.Read(0x010)); // past the 64 bits
    }

    private static ulong Offered(TestDriver d)
    {
        d.Write(0x014, 0);
        ulong low = d.Read(0x010);
        d.Write(0x014, 1);
        return low | ((ulong)d.Read(0x010) << 32);
    }

    [Fact]
    public void FeaturesOkIsRefusedWithoutVersion1()
    {
        using DeviceRig rig = DeviceRig.Entropy();
        Assert.Null(rig.Driver.Negotiate(TestDriver.IndirectDesc));
        Assert.Equal(TestDriver.Acknowledge | TestDriver.Driver, rig.Driver.Status);
    }

    [Fact]
    public void FeaturesOkIsRefusedForABitNotOffered()
    {
        using DeviceRig rig = DeviceRig.Entropy();
        TestDriver d = rig.Driver;
        d.Write(0x070, TestDriver.Acknowledge | TestDriver.Driver);
        d.Write(0x024, 1);
        d.Write(0x020, 1); // VERSION_1
        d.Write(0x024, 0);
        d.Write(0x020, 1u << 5); // VIRTIO_BLK_F_RO: not an entropy device's
        d.Write(0x070, TestDriver.Acknowledge | TestDriver.Driver | TestDriver.FeaturesOk);
        Assert.Equal(0u, d.Status & TestDriver.FeaturesOk);
    }

    [Fact]
    public void FeaturesOkIsAcceptedForVersion1Alone()
    {
        using DeviceRig rig = DeviceRig.Entropy();
        Assert.Equal(TestDriver.Version1, rig.Driver.Negotiate(TestDriver.Version1));
    }

    [Fact]
    public void QueueRegistersFollowQueueSel()
    {
        using DeviceRig rig = DeviceRig.Entropy();
        TestDriver d = rig.Driver;
        d.Write(0x030, 0);
        Assert.Equal(256u, d.Read(0x034));
        Assert.Equal(0u, d.Read(0x044));
        d.Write(0x030, 1); // the entropy device has one queue
        Assert.Equal(0u, d.Read(0x034));
        d.Write(0x044, 1);
        Assert.Equal(0u, d.Read(0x044));
    }

    [Fact]
    public void QueueReadyReadsBackAndQueueResetClearsIt()
    {
        using DeviceRig rig = DeviceRig.Entropy();
        TestDriver d = rig.Driver;
        Assert.NotNull(d.Negotiate(TestDriver.Version1));
        var q = DriverQueue.At(rig.Ram, 0, 16, 0x10000);
        d.SetUpQueue(q);
        Assert.Equal(1u, d.Read(0x044));
        Assert.Equal(0u, d.Read(0x0c0));
        d.Write(0x0c0, 1);
        Assert.Equal(0u, d.Read(0x044));
        Assert.Equal(0u, d.Read(0x0c0));
        d.SetUpQueue(q); // and it can be set up again
        Assert.Equal(1u, d.Read(0x044));
        d.Write(0x044, 0);
        Assert.Equal(0u, d.Read(0x044));
        Assert.Empty(rig.Host.Reports);
    }

    [Fact]
    public void SharedMemoryRegistersReadAllOnes()
    {
        using DeviceRig rig = DeviceRig.Entropy();
        foreach (uint sel in new uint[] { 0, 1, 7 })
        {
            rig.Driver.Write(0x0ac, sel);
            foreach (uint off in new uint[] { 0x0b0, 0x0b4, 0x0b8, 0x0bc })
                Assert.Equal(0xffff_ffffu, rig.Driver.Read(off));
        }
    }

    [Fact]
    public void InterruptStatusStartsClearAndConfigGenerationIsStable()
    {
        using DeviceRig rig = DeviceRig.Entropy();
        Assert.Equal(0u, rig.Driver.Read(0x060));
        uint gen = rig.Driver.Read(0x0fc);
        Assert.Equal(gen, rig.Driver.Read(0x0fc));
        rig.Driver.Write(0x064, 3); // acknowledging nothing is harmless
        Assert.Equal(0u, rig.Driver.Read(0x060));
    }

    [Fact]
    public void ReservedOffsetsReadZeroAndIgnoreWrites()
    {
        using DeviceRig rig = DeviceRig.Entropy();
        TestDriver d = rig.Driver;
        d.Write(0x070, TestDriver.Acknowledge);
        for (uint off = 0; off < 0x100; off += 4)
        {
            if (Defined.Contains(off)) continue;
            Assert.Equal(0u, d.Read(off));
            d.Write(off, 0xffff_ffff);
            Assert.Equal(0u, d.Read(off));
        }
        Assert.Equal(TestDriver.Acknowledge, d.Status);
        Assert.Equal(0x74726976u, d.Read(0x000));
        d.Write(0x000, 0); // a read-only register ignores writes
        Assert.Equal(0x74726976u, d.Read(0x000));
    }

    [Fact]
    public void EveryRegisterInTheDevicesTableIsInTheAbisTable()
    {
        Assert.Equal(Defined.Order(), MmioRegisters.All.Select(r => r.Offset).Order());
    }

    [Theory]
    [InlineData(0x070u, 1)]
    [InlineData(0x070u, 2)]
    [InlineData(0x071u, 4)]
    [InlineData(0x072u, 4)]
    [InlineData(0x000u, 8)]
    [InlineData(0x000u, 3)]
    [InlineData(0x000u, 0)]
    [InlineData(0x101u, 2)]
    [InlineData(0x102u, 4)]
    [InlineData(0x1000u, 4)]
    [InlineData(0xffeu, 4)]
    [InlineData(0xffff_fffcu, 4)]
    public void MalformedAccessesAreFaults(uint offset, int size)
    {
        using DeviceRig rig = DeviceRig.Entropy();
        Assert.False(rig.Transport.TryRead(offset, size, out _, out string? readFault));
        Assert.False(rig.Transport.TryWrite(offset, size, 0, out string? writeFault));
        Assert.StartsWith("virtio-rng0: ", readFault);
        Assert.StartsWith("virtio-rng0: ", writeFault);
        Assert.DoesNotContain("\n", readFault!);
    }

    [Theory]
    [InlineData(0x100u, 1)]
    [InlineData(0x101u, 1)]
    [InlineData(0x102u, 2)]
    [InlineData(0x104u, 4)]
    [InlineData(0xfffu, 1)]
    [InlineData(0xffcu, 4)]
    public void ConfigurationSpaceTakesAlignedSmallAccesses(uint offset, int size)
    {
        using DeviceRig rig = DeviceRig.Entropy();
        Assert.True(rig.Transport.TryRead(offset, size, out uint value, out string? fault), fault);
        Assert.Equal(0u, value); // the entropy device has no configuration space
        Assert.True(rig.Transport.TryWrite(offset, size, 0xff, out fault), fault);
    }

    [Fact]
    public void BlockConfigurationSpaceFollowsSpec524()
    {
        const int sectors = 48;
        using var disk = new TempDisk(sectors * 512);
        using DeviceRig rig = DeviceRig.Block(disk);
        TestDriver d = rig.Driver;
        Assert.Equal((uint)sectors, d.Read(0x100));  // capacity, low half
        Assert.Equal(0u, d.Read(0x104));             // capacity, high half
        Assert.Equal(254u, d.Read(0x10c));           // seg_max: queue size 256 less 2
        Assert.Equal(512u, d.Read(0x114));           // blk_size at offset 20
        // Byte and half-word reads see the same little-endian bytes.
        Assert.True(rig.Transport.TryRead(0x114, 2, out uint half, out _));
        Assert.Equal(512u, half);
        Assert.True(rig.Transport.TryRead(0x115, 1, out uint b, out _));
        Assert.Equal(2u, b);
        // The configuration space is read-only: a write changes nothing.
        d.Write(0x100, 0);
        Assert.Equal((uint)sectors, d.Read(0x100));
    }

    [Theory]
    [InlineData(0xffff0ul, 0x11000ul, 0x12000ul, "descriptor table")]  // crosses the end of 1 MiB
    [InlineData(0x10008ul, 0x11000ul, 0x12000ul, "aligned")]          // descriptors need 16
    [InlineData(0x10000ul, 0x11001ul, 0x12000ul, "aligned")]          // available ring needs 2
    [InlineData(0x10000ul, 0x11000ul, 0x12002ul, "aligned")]          // used ring needs 4
    [InlineData(0x10000ul, 0x11000ul, 0x1_0000_0000ul, "used ring")]  // a nonzero high half
    [InlineData(0x10000ul, 0xfffff0ul, 0x12000ul, "available ring")]
    public void ARingOutsideRamAtQueueReadyNeedsReset(ulong desc, ulong avail, ulong used, string clause)
    {
        using DeviceRig rig = DeviceRig.Entropy();
        TestDriver d = rig.Driver;
        Assert.NotNull(d.Negotiate(TestDriver.Version1));
        d.SetUpQueue(new DriverQueue(rig.Ram, 0, 16, desc, avail, used));
        AssertNeedsReset(rig, clause);
    }

    [Theory]
    [InlineData(3u)]
    [InlineData(0u)]
    [InlineData(512u)]
    public void AQueueSizeNotAPowerOfTwoUpTo256NeedsReset(uint size)
    {
        using DeviceRig rig = DeviceRig.Entropy();
        TestDriver d = rig.Driver;
        Assert.NotNull(d.Negotiate(TestDriver.Version1));
        d.Write(0x030, 0);
        d.Write(0x038, size);
        d.Write(0x080, 0x10000);
        d.Write(0x090, 0x11000);
        d.Write(0x0a0, 0x12000);
        d.Write(0x044, 1);
        AssertNeedsReset(rig, "queue size");
    }

    internal static void AssertNeedsReset(DeviceRig rig, string clause)
    {
        TestDriver d = rig.Driver;
        Assert.Equal(TestDriver.NeedsReset, d.Status & TestDriver.NeedsReset);
        Assert.Equal(2u, d.Read(0x060) & 2);    // configuration change
        Assert.True(rig.Host.Interrupts >= 1);
        string line = Assert.Single(rig.Host.Reports);
        Assert.StartsWith("virtio-", line);
        Assert.Contains(clause, line);
        // A reset brings the device back.
        d.Write(0x070, 0);
        Assert.Equal(0u, d.Status);
        Assert.Equal(0u, d.Read(0x060));
        Assert.Equal(0u, d.Read(0x044));
    }

    [Fact]
    public void ResetOfALiveDeviceClearsEverythingTheAbiNames()
    {
        using DeviceRig rig = DeviceRig.Entropy();
        TestDriver d = rig.Driver;
        d.Initialize(TestDriver.Version1, DriverQueue.At(rig.Ram, 0, 8, 0x10000));
        Assert.Equal(1u, d.Read(0x044));
        d.Write(0x070, 0);
        Assert.Equal(0u, d.Status);
        Assert.Equal(0u, d.Read(0x060));
        Assert.Equal(0u, d.Read(0x044));
        // DRIVER_OK rang the doorbell; once the thread has taken it, nothing keeps the device busy.
        Requests.SpinUntilIdle(rig.Transport);
    }
}
