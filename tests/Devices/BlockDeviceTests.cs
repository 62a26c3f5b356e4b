using System.Text;
using Sharpvisor.Devices.Block;

namespace Sharpvisor.Tests.Devices;

/// <summary>
/// virtio-blk (spec 5.2) through the test driver, against the oracle of the
/// disk file itself: what a read returns is what the file holds, and what a
/// write leaves is what reading the file back finds (TempDisk.ReadBack).
/// </summary>
[Collection("Devices")]
public sealed class BlockDeviceTests
{
    private const ulong Features = TestDriver.Version1 | TestDriver.IndirectDesc | TestDriver.EventIdx | (1UL << 9) | (1UL << 2) | (1UL << 6);
    private const int Sectors = 64;
    private const ulong Header = 0x20000, Data = 0x30000, StatusAt = 0x40000;

    private static (DeviceRig Rig, DriverQueue Q) Start(TempDisk disk, bool readOnly = false, ulong features = Features)
    {
        DeviceRig rig = DeviceRig.Block(disk, readOnly);
        DriverQueue q = rig.Driver.Initialize(features, DriverQueue.At(rig.Ram, 0, 16, 0x10000));
        return (rig, q);
    }

    private static byte StatusByte(DeviceRig rig) => Requests.ReadRam(rig.Ram, StatusAt, 1)[0];

    [Fact]
    public void ReadsWhatTheFileHolds()
    {
        using var disk = new TempDisk(Sectors * 512);
        (DeviceRig rig, DriverQueue q) = Start(disk);
        using (rig)
        {
            Requests.WriteHeader(rig.Ram, Header, 0, 3); // IN, sector 3
            Requests.WriteRam(rig.Ram, StatusAt, [0xee]);
            ushort head = Requests.Direct(q, 0, new Buf(Header, 16, false), new Buf(Data, 512, true), new Buf(Data + 0x1000, 512, true), new Buf(StatusAt, 1, true));
            (uint id, uint len) = Requests.Run(rig.Driver, q, head);
            Assert.Equal(head, id);
            Assert.Equal(1025u, len);
            Assert.Equal(0, StatusByte(rig)); // VIRTIO_BLK_S_OK
            byte[] file = disk.ReadBack();
            Assert.Equal(file.AsSpan(3 * 512, 512).ToArray(), Requests.ReadRam(rig.Ram, Data, 512));
            Assert.Equal(file.AsSpan(4 * 512, 512).ToArray(), Requests.ReadRam(rig.Ram, Data + 0x1000, 512));
            Assert.Contains((Data, 512ul), rig.Host.Written);
            Assert.Contains((StatusAt, 1ul), rig.Host.Written);
        }
    }

    [Fact]
    public void WritesReachTheFile()
    {
        using var disk = new TempDisk(Sectors * 512);
        (DeviceRig rig, DriverQueue q) = Start(disk);
        using (rig)
        {
            byte[] payload = new byte[3 * 512];
            new Random(7).NextBytes(payload);
            Requests.WriteHeader(rig.Ram, Header, 1, 5); // OUT, sector 5
            Requests.WriteRam(rig.Ram, Data, payload);
            // The header and the first data bytes share a descriptor's neighbour: data split unevenly.
            ushort head = Requests.Direct(q, 0, new Buf(Header, 16, false), new Buf(Data, 100, false), new Buf(Data + 100, 3 * 512 - 100, false), new Buf(StatusAt, 1, true));
            (_, uint len) = Requests.Run(rig.Driver, q, head);
            Assert.Equal(1u, len);
            Assert.Equal(0, StatusByte(rig));
            byte[] expected = (byte[])disk.Initial.Clone();
            payload.CopyTo(expected, 5 * 512);
            Assert.Equal(expected, disk.ReadBack());
        }
    }

    [Fact]
    public void AnIndirectReadAndAFlushAndGetId()
    {
        using var disk = new TempDisk(Sectors * 512);
        (DeviceRig rig, DriverQueue q) = Start(disk);
        using (rig)
        {
            Requests.WriteHeader(rig.Ram, Header, 0, 60);
            ushort head = Requests.Indirect(q, 2, 0x18000, new Buf(Header, 16, false), new Buf(Data, 4 * 512, true), new Buf(StatusAt, 1, true));
            Requests.Run(rig.Driver, q, head);
            Assert.Equal(0, StatusByte(rig));
            Assert.Equal(disk.ReadBack().AsSpan(60 * 512).ToArray(), Requests.ReadRam(rig.Ram, Data, 4 * 512));

            Requests.WriteHeader(rig.Ram, Header, 4, 0); // FLUSH
            Requests.Run(rig.Driver, q, Requests.Direct(q, 0, new Buf(Header, 16, false), new Buf(StatusAt, 1, true)));
            Assert.Equal(0, StatusByte(rig));

            Requests.WriteHeader(rig.Ram, Header, 8, 0); // GET_ID
            (_, uint len) = Requests.Run(rig.Driver, q, Requests.Direct(q, 0, new Buf(Header, 16, false), new Buf(Data, 20, true), new Buf(StatusAt, 1, true)));
            Assert.Equal(21u, len);
            Assert.Equal(0, StatusByte(rig));
            string id = Encoding.ASCII.GetString(Requests.ReadRam(rig.Ram, Data, 20));
            Assert.StartsWith("sharpvisor", id);
            Assert.Matches("^sharpvisor[0-9a-f]{10}$", id);
        }
    }

    [Fact]
    public void TheIdIsStableForAFileAndDiffersBetweenFiles()
    {
        using var a = new TempDisk(512);
        using var b = new TempDisk(512);
        using BlockDevice? a1 = BlockDevice.Open(a.Path, true, out _, out _);
        using BlockDevice? a2 = BlockDevice.Open(a.Path, true, out _, out _);
        using BlockDevice? b1 = BlockDevice.Open(b.Path, true, out _, out _);
        Assert.Equal(a1!.Id.ToArray(), a2!.Id.ToArray());
        Assert.NotEqual(a1.Id.ToArray(), b1!.Id.ToArray());
        Assert.Equal(20, a1.Id.Length);
    }

    [Theory]
    [InlineData(0u, 63ul, 2)]  // IN past the end
    [InlineData(1u, 64ul, 1)]  // OUT at the end
    [InlineData(1u, ulong.MaxValue, 1)] // a sector whose byte offset overflows
    [InlineData(0u, 0ul, 0)]  // IN of a length that is not whole sectors (the test adds 3 bytes)
    public void RequestsPastTheEndFailWithIoErrAndLeaveTheFile(uint type, ulong sector, int count)
    {
        using var disk = new TempDisk(Sectors * 512);
        (DeviceRig rig, DriverQueue q) = Start(disk);
        using (rig)
        {
            uint bytes = (uint)(count * 512 + (count == 0 ? 3 : 0));
            Requests.WriteHeader(rig.Ram, Header, type, sector);
            ushort head = Requests.Direct(q, 0, new Buf(Header, 16, false), new Buf(Data, bytes, type == 0), new Buf(StatusAt, 1, true));
            Requests.Run(rig.Driver, q, head);
            Assert.Equal(1, StatusByte(rig)); // VIRTIO_BLK_S_IOERR
            Assert.Equal(disk.Initial, disk.ReadBack());
        }
    }

    [Fact]
    public void AReadOnlyDiskRefusesWritesAndServesReads()
    {
        using var disk = new TempDisk(Sectors * 512);
        (DeviceRig rig, DriverQueue q) = Start(disk, readOnly: true, Features | (1UL << 5));
        using (rig)
        {
            Requests.WriteHeader(rig.Ram, Header, 1, 0);
            Requests.WriteRam(rig.Ram, Data, new byte[512]);
            Requests.Run(rig.Driver, q, Requests.Direct(q, 0, new Buf(Header, 16, false), new Buf(Data, 512, false), new Buf(StatusAt, 1, true)));
            Assert.Equal(1, StatusByte(rig));
            Assert.Equal(disk.Initial, disk.ReadBack());

            Requests.WriteHeader(rig.Ram, Header, 0, 1);
            Requests.Run(rig.Driver, q, Requests.Direct(q, 0, new Buf(Header, 16, false), new Buf(Data, 512, true), new Buf(StatusAt, 1, true)));
            Assert.Equal(0, StatusByte(rig));
            Assert.Equal(disk.Initial.AsSpan(512, 512).ToArray(), Requests.ReadRam(rig.Ram, Data, 512));
        }
    }

    [Fact]
    public void AnUnknownTypeIsUnsupported()
    {
        using var disk = new TempDisk(Sectors * 512);
        (DeviceRig rig, DriverQueue q) = Start(disk);
        using (rig)
        {
            Requests.WriteHeader(rig.Ram, Header, 99, 0);
            Requests.Run(rig.Driver, q, Requests.Direct(q, 0, new Buf(Header, 16, false), new Buf(StatusAt, 1, true)));
            Assert.Equal(2, StatusByte(rig)); // VIRTIO_BLK_S_UNSUPP
        }
    }

    [Theory]
    [InlineData(0u, true)]   // IN whose data is device-readable
    [InlineData(1u, false)]  // OUT whose data is device-writable
    [InlineData(8u, true)]   // GET_ID whose data is device-readable
    public void DataInTheWrongDirectionNeedsReset(uint type, bool dataReadable)
    {
        using var disk = new TempDisk(Sectors * 512);
        (DeviceRig rig, DriverQueue q) = Start(disk);
        using (rig)
        {
            Requests.WriteHeader(rig.Ram, Header, type, 0);
            q.Offer(Requests.Direct(q, 0, new Buf(Header, 16, false), new Buf(Data, 512, !dataReadable), new Buf(StatusAt, 1, true)));
            rig.Driver.Notify(0);
            rig.Driver.WaitUsedOrReset(q, 1);
            Assert.Equal((ushort)0, q.UsedIdx);
            Assert.Equal(disk.Initial, disk.ReadBack());
            MmioRegisterTests.AssertNeedsReset(rig, "request at head 0");
        }
    }

    [Fact]
    public void OpenReportsMissingFilesLocksAndBadSizes()
    {
        string missing = Path.Combine(Path.GetTempPath(), $"sharpvisor-missing-{Guid.NewGuid():N}.img");
        Assert.Null(BlockDevice.Open(missing, false, out BlockOpenError e, out string? m));
        Assert.Equal(BlockOpenError.Missing, e);
        Assert.Equal(66, e.ExitStatus());
        Assert.Contains(missing, m);

        using var odd = new TempDisk(1000);
        Assert.Null(BlockDevice.Open(odd.Path, false, out e, out _));
        Assert.Equal(BlockOpenError.BadSize, e);
        Assert.Equal(64, e.ExitStatus());

        Assert.Null(BlockDevice.Open(Path.GetTempPath(), true, out e, out _));
        Assert.Equal(BlockOpenError.Unavailable, e);

        using var disk = new TempDisk(4096);
        using (BlockDevice? writer = BlockDevice.Open(disk.Path, false, out e, out m))
        {
            Assert.True(writer is not null, m);
            Assert.Null(BlockDevice.Open(disk.Path, false, out e, out m));
            Assert.Equal(BlockOpenError.Unavailable, e);
            Assert.Equal(69, e.ExitStatus());
            Assert.Contains("locked", m);
            Assert.Null(BlockDevice.Open(disk.Path, true, out e, out _));
            Assert.Equal(BlockOpenError.Unavailable, e);
        }
        // Shared locks for read-only disks: two at once, and a writer is refused.
        using BlockDevice? r1 = BlockDevice.Open(disk.Path, true, out _, out m);
        Assert.True(r1 is not null, m);
        using BlockDevice? r2 = BlockDevice.Open(disk.Path, true, out _, out m);
        Assert.True(r2 is not null, m);
        Assert.Null(BlockDevice.Open(disk.Path, false, out e, out _));
        Assert.Equal(BlockOpenError.Unavailable, e);
    }

    [Fact]
    public void ResetDuringTrafficLeavesNoRequestHeld()
    {
        using var disk = new TempDisk(Sectors * 512);
        (DeviceRig rig, DriverQueue q) = Start(disk);
        using (rig)
        {
            // Fill the ring with reads, ring once and reset at once: whatever
            // the queue thread was doing, the reset store returns with it idle.
            for (int i = 0; i < 8; i++)
            {
                Requests.WriteHeader(rig.Ram, Header + (ulong)i * 16, 0, (ulong)i);
                q.Offer(Requests.Direct(q, i * 2, new Buf(Header + (ulong)i * 16, 16, false), new Buf(Data + (ulong)i * 512, 513, true)));
            }
            rig.Driver.Notify(0);
            rig.Driver.Write(0x070, 0);
            Assert.Equal(0u, rig.Driver.Status);
            Assert.Equal(0u, rig.Driver.Read(0x060));
            Assert.Equal(0u, rig.Driver.Read(0x044));
            ushort used = q.UsedIdx;
            // And the device comes back for a new driver.
            DriverQueue q2 = rig.Driver.Initialize(Features, DriverQueue.At(rig.Ram, 0, 16, 0x50000));
            Requests.WriteHeader(rig.Ram, Header, 0, 9);
            Requests.Run(rig.Driver, q2, Requests.Direct(q2, 0, new Buf(Header, 16, false), new Buf(Data, 512, true), new Buf(StatusAt, 1, true)));
            Assert.Equal(disk.Initial.AsSpan(9 * 512, 512).ToArray(), Requests.ReadRam(rig.Ram, Data, 512));
            Assert.Equal(used, q.UsedIdx); // the old rings were not touched after the reset
        }
    }
}
