namespace Sharpvisor.Tests.Devices;

/// <summary>virtio-rng (spec 5.4) through the test driver: what it writes, and the notification rules of spec 2.7.7 and 2.7.10.</summary>
[Collection("Devices")]
public sealed class EntropyDeviceTests
{
    private const ulong Features = TestDriver.Version1 | TestDriver.IndirectDesc | TestDriver.EventIdx;

    [Theory]
    [InlineData(TestDriver.Version1)]
    [InlineData(Features)]
    public void FillsEveryWritableBufferWithFreshRandomBytes(ulong features)
    {
        using DeviceRig rig = DeviceRig.Entropy();
        TestDriver d = rig.Driver;
        DriverQueue q = d.Initialize(features, DriverQueue.At(rig.Ram, 0, 8, 0x10000));
        ushort head = Requests.Direct(q, 0, new Buf(0x20000, 64, true), new Buf(0x30000, 100, true));
        (uint id, uint len) = Requests.Run(d, q, head);
        Assert.Equal(head, id);
        Assert.Equal(164u, len);
        Assert.Equal(0u, d.Read(0x060)); // InterruptACK cleared what InterruptStatus showed
        byte[] first = [.. Requests.ReadRam(rig.Ram, 0x20000, 64), .. Requests.ReadRam(rig.Ram, 0x30000, 100)];
        Assert.Contains(first, b => b != 0);
        // The byte after each buffer is untouched.
        Assert.Equal(0, Requests.ReadRam(rig.Ram, 0x20000 + 64, 1)[0]);
        Assert.Equal(0, Requests.ReadRam(rig.Ram, 0x30000 + 100, 1)[0]);

        Requests.Run(d, q, Requests.Direct(q, 0, new Buf(0x20000, 64, true), new Buf(0x30000, 100, true)));
        byte[] second = [.. Requests.ReadRam(rig.Ram, 0x20000, 64), .. Requests.ReadRam(rig.Ram, 0x30000, 100)];
        Assert.NotEqual(first, second);
        // The VM heard about exactly the bytes written.
        Assert.Contains((0x20000ul, 64ul), rig.Host.Written);
        Assert.Contains((0x30000ul, 100ul), rig.Host.Written);
        Assert.Equal(0, rig.Host.WritesOutsideRam);
    }

    [Fact]
    public void ServesAnIndirectTable()
    {
        using DeviceRig rig = DeviceRig.Entropy();
        TestDriver d = rig.Driver;
        DriverQueue q = d.Initialize(Features, DriverQueue.At(rig.Ram, 0, 8, 0x10000));
        ushort head = Requests.Indirect(q, 3, 0x18000, new Buf(0x20000, 32, true), new Buf(0x20100, 32, true), new Buf(0x20200, 32, true));
        (uint id, uint len) = Requests.Run(d, q, head);
        Assert.Equal(3u, id);
        Assert.Equal(96u, len);
        Assert.Contains(Requests.ReadRam(rig.Ram, 0x20200, 32), b => b != 0);
    }

    [Fact]
    public void AReadableBufferNeedsReset()
    {
        using DeviceRig rig = DeviceRig.Entropy();
        TestDriver d = rig.Driver;
        DriverQueue q = d.Initialize(Features, DriverQueue.At(rig.Ram, 0, 8, 0x10000));
        q.Offer(Requests.Direct(q, 0, new Buf(0x20000, 16, false)));
        d.Notify(0);
        d.WaitUsedOrReset(q, 1);
        Assert.Equal((ushort)0, q.UsedIdx);
        MmioRegisterTests.AssertNeedsReset(rig, "device-readable");
    }

    [Fact]
    public void NoInterruptIsHonouredWithoutEventIdx()
    {
        using DeviceRig rig = DeviceRig.Entropy();
        TestDriver d = rig.Driver;
        DriverQueue q = d.Initialize(TestDriver.Version1, DriverQueue.At(rig.Ram, 0, 8, 0x10000));
        q.SetAvailFlags(1); // VIRTQ_AVAIL_F_NO_INTERRUPT
        q.Offer(Requests.Direct(q, 0, new Buf(0x20000, 8, true)));
        d.Notify(0);
        Requests.SpinUntilUsed(q, 1);
        Requests.SpinUntilIdle(d.Transport);
        Assert.Equal(0, rig.Host.Interrupts);
        q.SetAvailFlags(0);
        q.Offer(Requests.Direct(q, 1, new Buf(0x20100, 8, true)));
        d.Notify(0);
        d.WaitUsedOrReset(q, 2);
        rig.Host.WaitUntil(() => rig.Host.Interrupts >= 1, "the second request's interrupt");
        Assert.Equal(1, rig.Host.Interrupts);
        Assert.Equal(1u, d.TakeInterrupt());
    }

    [Fact]
    public void EventIdxInterruptsOnlyWhenUsedEventIsPassedAndPublishesAvailEvent()
    {
        using DeviceRig rig = DeviceRig.Entropy();
        TestDriver d = rig.Driver;
        DriverQueue q = d.Initialize(Features, DriverQueue.At(rig.Ram, 0, 8, 0x10000));
        q.SetUsedEvent(2); // interrupt once the used idx moves past 2
        for (int i = 0; i < 3; i++)
        {
            q.Offer(Requests.Direct(q, i, new Buf(0x20000 + (ulong)i * 0x100, 8, true)));
            d.Notify(0);
            Requests.SpinUntilUsed(q, (ushort)(i + 1));
            Requests.SpinUntilIdle(d.Transport);
            if (i < 2) Assert.Equal(0, rig.Host.Interrupts);
        }
        rig.Host.WaitUntil(() => rig.Host.Interrupts >= 1, "the third request's interrupt");
        Assert.Equal(1, rig.Host.Interrupts);
        // The device asks to be notified of the next slot it has not seen.
        Assert.Equal((ushort)3, q.AvailEvent);
    }

    [Fact]
    public void EventIdxInterruptComesAsSoonAsUsedEventIsPassed_NotWhenTheBatchEnds()
    {
        // Six requests made available at once with used_event 1: the driver
        // wants to hear of the second completion, and to take it while the
        // device serves the other four (2.7.10). So the interrupt comes with
        // the used idx at 2, not at 6, and only once.
        using DeviceRig rig = DeviceRig.Entropy();
        TestDriver d = rig.Driver;
        var q = DriverQueue.At(rig.Ram, 0, 8, 0x10000);
        Assert.NotNull(d.Negotiate(Features));
        d.SetUpQueue(q);
        var usedAtInterrupt = new System.Collections.Concurrent.ConcurrentQueue<ushort>();
        rig.Host.OnInterrupt = () => usedAtInterrupt.Enqueue(q.UsedIdx);
        q.SetUsedEvent(1);
        // All six before DRIVER_OK, so that the device finds them in one round:
        // a device that looks only when the ring runs dry would interrupt at 6.
        for (int i = 0; i < 6; i++)
            q.Offer(Requests.Direct(q, i, new Buf(0x20000 + (ulong)i * 0x100, 8, true)));
        d.DriverReady();
        Requests.SpinUntilUsed(q, 6);
        Requests.SpinUntilIdle(d.Transport);
        Assert.Equal([(ushort)2], usedAtInterrupt);
    }

    [Fact]
    public void BuffersMadeAvailableBeforeDriverOkAreServedAfterIt()
    {
        using DeviceRig rig = DeviceRig.Entropy();
        TestDriver d = rig.Driver;
        var q = DriverQueue.At(rig.Ram, 0, 8, 0x10000);
        Assert.NotNull(d.Negotiate(TestDriver.Version1));
        d.SetUpQueue(q);
        q.Offer(Requests.Direct(q, 0, new Buf(0x20000, 8, true)));
        d.Notify(0); // ignored: not DRIVER_OK yet
        d.DriverReady();
        d.WaitUsedOrReset(q, 1);
        Assert.Equal((0u, 8u), q.UsedEntry(0));
    }

    [Fact]
    public void QueueResetDuringTrafficLeavesTheQueueAloneAndItComesBack()
    {
        using DeviceRig rig = DeviceRig.Entropy();
        TestDriver d = rig.Driver;
        DriverQueue q = d.Initialize(Features, DriverQueue.At(rig.Ram, 0, 64, 0x10000));
        for (int i = 0; i < 64; i++) q.Offer(Requests.Direct(q, i, new Buf(0x20000 + (ulong)i * 0x1000, 4096, true)));
        d.Notify(0);
        d.Write(0x030, 0);
        d.Write(0x0c0, 1); // QueueReset: complete when the store returns
        Assert.Equal(0u, d.Read(0x044));
        Assert.Equal(0u, d.Read(0x0c0));
        ushort used = q.UsedIdx;
        // The same queue set up again elsewhere is served; the old ring is not touched.
        var q2 = DriverQueue.At(rig.Ram, 0, 8, 0x60000);
        d.SetUpQueue(q2);
        (uint id, uint len) = Requests.Run(d, q2, Requests.Direct(q2, 5, new Buf(0x70000, 32, true)));
        Assert.Equal((5u, 32u), (id, len));
        Assert.Equal(used, q.UsedIdx);
        Assert.Equal(0u, d.Status & TestDriver.NeedsReset);
    }
}
