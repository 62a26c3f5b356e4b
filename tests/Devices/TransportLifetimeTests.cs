namespace Sharpvisor.Tests.Devices;

/// <summary>
/// A transport's threads and descriptors: named per queue, stopped and closed
/// by Dispose with nothing left behind (in the serial collection, so the
/// descriptor list is this test's alone).
/// </summary>
[Collection(Serial.Name)]
public sealed class TransportLifetimeTests
{
    [Fact]
    public void DisposeStopsTheQueueThreadsAndClosesEveryDescriptor()
    {
        using var disk = new TempDisk(4096);
        HashSet<int> before = FdSnapshot.Open();
        var rig = DeviceRig.Block(disk);
        Assert.Equal("virtio-blk0-q0", rig.Transport.ThreadName(0));
        Assert.Equal(1, rig.Transport.QueueCount);
        // Serve one request, so the thread has run and holds its poll set.
        DriverQueue q = rig.Driver.Initialize(TestDriver.Version1, DriverQueue.At(rig.Ram, 0, 4, 0x10000));
        Requests.WriteHeader(rig.Ram, 0x20000, 0, 0);
        Requests.Run(rig.Driver, q, Requests.Direct(q, 0, new Buf(0x20000, 16, false), new Buf(0x30000, 513, true)));
        rig.Dispose();
        Assert.Equal(before, FdSnapshot.Open());
    }
}
