using Sharpvisor.Native;

namespace Sharpvisor.Tests.Native;

/// <summary>Delivery counters per value and per reader slot (one slot per vCPU in a VM).</summary>
public class EventfdMapCounterTests
{
    [Fact]
    public void TrySignalWithSlot_CountsDeliveriesPerValue_InAttachOrder()
    {
        using var qsbr = new Qsbr();
        using var map = new EventfdMap(qsbr, counterSlots: 2);
        using var a = EventFd.Create();
        using var b = EventFd.Create();
        map.Add(0x20, b.Handle);
        map.Add(0x10, a.Handle);
        Assert.True(map.TrySignal(0x10, 0));
        Assert.True(map.TrySignal(0x10, 1));
        Assert.True(map.TrySignal(0x20, 1));
        Assert.False(map.TrySignal(0x30, 0)); // a miss counts nothing here
        Assert.Equal([new(0x20u, 1L), new(0x10u, 2L)], map.DeliveredCounts());
        Assert.Equal(2UL, FdSnapshot.EventFdCount(a.Handle.Fd));
    }

    [Theory]
    [InlineData(EventfdMapReclaim.Synchronous)]
    [InlineData(EventfdMapReclaim.Deferred)]
    public void Counts_SurviveRemoveAndReattach(EventfdMapReclaim reclaim)
    {
        using var qsbr = new Qsbr();
        using var map = new EventfdMap(qsbr, reclaim, counterSlots: 1);
        using var a = EventFd.Create();
        using var b = EventFd.Create();
        map.Add(7, a.Handle);
        map.Add(8, b.Handle);
        for (int i = 0; i < 5; i++) Assert.True(map.TrySignal(7, 0));
        Assert.True(map.Remove(7));   // moves the other entry's block into a new array
        Assert.True(map.TrySignal(8, 0));
        Assert.False(map.TrySignal(7, 0));
        map.Add(7, a.Handle);
        Assert.True(map.TrySignal(7, 0));
        qsbr.Barrier();
        Assert.Equal([new(7u, 6L), new(8u, 1L)], map.DeliveredCounts());
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(2)]             // == CounterSlots: one line past the block
    [InlineData(int.MaxValue)]
    [InlineData(int.MinValue)]
    public void TrySignalWithSlot_OutsideTheSlots_DeliversButCountsNothing(int slot)
    {
        using var qsbr = new Qsbr();
        using var map = new EventfdMap(qsbr, counterSlots: 2);
        using var a = EventFd.Create();
        using var b = EventFd.Create();
        map.Add(0x10, a);
        map.Add(0x11, b);
        Assert.True(map.TrySignal(0x10, slot));
        Assert.True(map.TrySignal(0x11, 1));
        Assert.Equal(1UL, FdSnapshot.EventFdCount(a.Handle.Fd));
        Assert.Equal([new(0x10u, 0L), new(0x11u, 1L)], map.DeliveredCounts());
    }

    [Fact]
    public void WithoutCounterSlots_NothingIsCounted_ButDeliveryWorks()
    {
        using var qsbr = new Qsbr();
        using var map = new EventfdMap(qsbr);
        using var a = EventFd.Create();
        map.Add(1, a.Handle);
        Assert.True(map.TrySignal(1, 0));
        Assert.Equal([new(1u, 0L)], map.DeliveredCounts());
    }

    [Fact]
    public void Counts_AreStillThereAfterDispose()
    {
        using var qsbr = new Qsbr();
        using var a = EventFd.Create();
        var map = new EventfdMap(qsbr, counterSlots: 3);
        map.Add(5, a.Handle);
        Assert.True(map.TrySignal(5, 2));
        map.Dispose();
        Assert.Equal([new(5u, 1L)], map.DeliveredCounts());
    }

    [Fact]
    public void TwoReaders_WhileAWriterAttachesAndDetaches_CountExactly()
    {
        // Each reader counts in its own slot with plain increments; the kernel's
        // eventfd counts are the oracle.
        using var qsbr = new Qsbr();
        using var map = new EventfdMap(qsbr, EventfdMapReclaim.Deferred, counterSlots: 2);
        using var a = EventFd.Create();
        using var b = EventFd.Create();
        map.Add(1, a.Handle);
        const int PerReader = 20_000;
        var hits = new long[2, 3];
        var readers = Enumerable.Range(0, 2).Select(r => new Thread(() =>
        {
            using QsbrThread t = qsbr.Register();
            for (int i = 0; i < PerReader; i++)
            {
                uint v = (uint)(i % 2 + 1);
                if (map.TrySignal(v, r)) hits[r, v]++;
                t.QuiescentState();
            }
        })).ToArray();
        foreach (var t in readers) t.Start();
        bool attached2 = false;
        while (readers.Any(t => t.IsAlive))
        {
            if (attached2) map.Remove(2); else map.Add(2, b.Handle);
            attached2 = !attached2;
        }
        foreach (var t in readers) t.Join();
        qsbr.Barrier();
        var counts = map.DeliveredCounts().ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.Equal(hits[0, 1] + hits[1, 1], counts[1]);
        Assert.Equal(hits[0, 2] + hits[1, 2], counts[2]);
        Assert.Equal((ulong)counts[1], FdSnapshot.EventFdCount(a.Handle.Fd));
        Assert.Equal((ulong)counts[2], FdSnapshot.EventFdCount(b.Handle.Fd));
        Assert.Equal(PerReader, hits[0, 1] + hits[1, 1]); // value 1 never left the map
    }
}
