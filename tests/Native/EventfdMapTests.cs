using Sharpvisor.Native;

namespace Sharpvisor.Tests.Native;

public class EventfdMapTests
{
    [Fact]
    public void TrySignal_OfAttachedValue_AddsOneToItsEventFd()
    {
        using var qsbr = new Qsbr();
        using var map = new EventfdMap(qsbr);
        using var a = EventFd.Create();
        using var b = EventFd.Create();
        map.Add(0x10, a.Handle);
        map.Add(0x20, b.Handle);
        Assert.True(map.TrySignal(0x20));
        Assert.True(map.TrySignal(0x20));
        Assert.True(map.TrySignal(0x10));
        Assert.Equal(1UL, FdSnapshot.EventFdCount(a.Handle.Fd));
        Assert.Equal(2UL, FdSnapshot.EventFdCount(b.Handle.Fd));
    }

    [Fact]
    public void TrySignal_OfUnattachedValue_IsAMiss()
    {
        using var qsbr = new Qsbr();
        using var map = new EventfdMap(qsbr);
        using var a = EventFd.Create();
        Assert.False(map.TrySignal(0x10));
        map.Add(0x10, a.Handle);
        Assert.False(map.TrySignal(0x11));
        Assert.False(map.TrySignal(0));
        Assert.Equal(0UL, FdSnapshot.EventFdCount(a.Handle.Fd));
    }

    [Fact]
    public void Lookup_FindsEveryValue_AcrossTheVectorLanes_AndAfterRemoves()
    {
        // The lookup compares four values at a time over arrays padded with
        // value 0: every count from 1 to 13 puts the wanted value in each lane
        // and leaves 0 to 3 padding lanes, which must never match.
        using var qsbr = new Qsbr();
        using var map = new EventfdMap(qsbr);
        using var efd = EventFd.Create();
        var attached = new List<uint>();
        for (uint i = 1; i <= 13; i++)
        {
            uint value = 0x1000 + i * 0x11;
            map.Add(value, efd);
            attached.Add(value);
            AssertLookups(map, attached);
        }
        foreach (uint gone in new[] { attached[0], attached[6], attached[^1], attached[3] })
        {
            Assert.True(map.Remove(gone));
            attached.Remove(gone);
            AssertLookups(map, attached);
            Assert.Equal(-1, map.Lookup(gone));
        }
    }

    private static void AssertLookups(EventfdMap map, List<uint> attached)
    {
        var fds = new HashSet<int>();
        foreach (uint v in attached)
        {
            int fd = map.Lookup(v);
            Assert.True(fd >= 0, $"0x{v:x} not found with {attached.Count} attached");
            Assert.True(fds.Add(fd), "two values found the same descriptor");
        }
        Assert.Equal(-1, map.Lookup(0));          // the padding's value
        Assert.Equal(-1, map.Lookup(0xffffffff));
        Assert.Equal(-1, map.Lookup(attached[0] + 1));
        Assert.Equal(attached, map.Values);
    }

    [Fact]
    public void Add_OfAnEventFd_DuplicatesIt_WithoutAskingTheKernelAgain()
    {
        using var qsbr = new Qsbr();
        using var map = new EventfdMap(qsbr);
        var efd = EventFd.Create();
        map.Add(7, efd);
        efd.Dispose(); // the map's duplicate keeps the eventfd alive
        int owned = map.Lookup(7);
        Assert.Contains("eventfd-count", FdSnapshot.Info(owned));
        Assert.True(map.TrySignal(7));
        Assert.Equal(1UL, FdSnapshot.EventFdCount(owned));
    }

    [Fact]
    public void Add_ValueZero_IsEinval()
    {
        using var qsbr = new Qsbr();
        using var map = new EventfdMap(qsbr);
        using var a = EventFd.Create();
        var e = Assert.Throws<ErrnoException>(() => map.Add(0, a.Handle));
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Equal(0, map.Count);
    }

    [Fact]
    public void Add_DuplicateValue_IsEexist_AndLeavesTheMapUnchanged()
    {
        using var qsbr = new Qsbr();
        using var map = new EventfdMap(qsbr);
        using var a = EventFd.Create();
        using var b = EventFd.Create();
        map.Add(0x10, a.Handle);
        var e = Assert.Throws<ErrnoException>(() => map.Add(0x10, b.Handle));
        Assert.Equal(Errno.EEXIST, e.Errno);
        Assert.Equal("EventfdMap.Add: EEXIST (value 0x10 is already attached)", e.Message);
        Assert.Equal([0x10u], map.Values);
        Assert.True(map.TrySignal(0x10));
        Assert.Equal(1UL, FdSnapshot.EventFdCount(a.Handle.Fd));
        Assert.Equal(0UL, FdSnapshot.EventFdCount(b.Handle.Fd));
    }

    [Fact]
    public void Add_ClosedHandle_IsEbadf()
    {
        using var qsbr = new Qsbr();
        using var map = new EventfdMap(qsbr);
        var a = EventFd.Create();
        a.Dispose();
        Assert.Equal(Errno.EBADF, Assert.Throws<ErrnoException>(() => map.Add(1, a.Handle)).Errno);
        var notOpen = new SafeFdHandle(999_999, ownsHandle: false);
        Assert.Equal(Errno.EBADF, Assert.Throws<ErrnoException>(() => map.Add(1, notOpen)).Errno);
        Assert.Equal(0, map.Count);
    }

    [Fact]
    public void Add_DescriptorThatIsNoEventFd_IsEinval()
    {
        using var qsbr = new Qsbr();
        using var map = new EventfdMap(qsbr);
        var (r, w) = SafeFdHandle.CreatePipe();
        using (r)
        using (w)
        {
            var e = Assert.Throws<ErrnoException>(() => map.Add(1, w));
            Assert.Equal(Errno.EINVAL, e.Errno);
            Assert.Contains("not an eventfd", e.Message);
        }
        using var devnull = File.OpenHandle("/dev/null");
        Assert.Equal(Errno.EINVAL, Assert.Throws<ErrnoException>(() => map.Add(1, devnull)).Errno);
        Assert.Equal(0, map.Count);
    }

    [Fact]
    public void Add_RegistrantMayCloseItsCopyAtOnce()
    {
        using var qsbr = new Qsbr();
        using var map = new EventfdMap(qsbr);
        var efd = EventFd.Create();
        using SafeFdHandle observer = efd.Handle.Duplicate();
        map.Add(7, efd.Handle);
        efd.Dispose();
        Assert.True(map.TrySignal(7));
        Assert.Equal(1UL, FdSnapshot.EventFdCount(observer.Fd));
    }

    [Fact]
    public void Remove_DetachesTheValue_AndKeepsTheOthersInOrder()
    {
        using var qsbr = new Qsbr();
        using var map = new EventfdMap(qsbr);
        using var a = EventFd.Create();
        using var b = EventFd.Create();
        using var c = EventFd.Create();
        map.Add(1, a.Handle);
        map.Add(2, b.Handle);
        map.Add(3, c.Handle);
        Assert.True(map.Remove(2));
        Assert.False(map.Remove(2));
        Assert.Equal([1u, 3u], map.Values);
        Assert.False(map.TrySignal(2));
        Assert.True(map.TrySignal(3));
        Assert.Equal(1UL, FdSnapshot.EventFdCount(c.Handle.Fd));
        map.Add(2, b.Handle); // a removed value may come back
        Assert.True(map.TrySignal(2));
    }

    [Fact]
    public void Add_FromRegisteredThread_DoesNotDeadlock()
    {
        using var qsbr = new Qsbr();
        using var map = new EventfdMap(qsbr);
        using var reader = new RcuReader(qsbr);
        using var a = EventFd.Create();
        TaskAssert.Completes(reader.Run(_ => { map.Add(1, a.Handle); map.Remove(1); }));
    }

    [Fact]
    public void SynchronousUpdate_WaitsForAnOnlineReader()
    {
        using var qsbr = new Qsbr();
        using var map = new EventfdMap(qsbr, EventfdMapReclaim.Synchronous);
        using var reader = new RcuReader(qsbr);
        using var a = EventFd.Create();
        var add = TaskAssert.OnThread(() => map.Add(1, a.Handle));
        reader.AssertUpdaterWaiting(add);
        Assert.True(map.TrySignal(1)); // published before the wait: visible at once
        reader.Run(t => t.QuiescentState()).Wait();
        TaskAssert.Completes(add);
    }

    [Fact]
    public void DeferredUpdate_ReturnsAtOnce_WhileAReaderLags()
    {
        using var qsbr = new Qsbr();
        using var map = new EventfdMap(qsbr, EventfdMapReclaim.Deferred);
        using var reader = new RcuReader(qsbr);
        using var a = EventFd.Create();
        TaskAssert.Completes(TaskAssert.OnThread(() => { map.Add(1, a.Handle); map.Add(2, a.Handle); map.Remove(1); }), 5);
        reader.AssertUpdaterWaiting(); // the reclaimer's grace period
        // Offline, not one quiescent state: the three retirements may take more
        // than one reclaimer batch, and an online reader that never reports
        // again would (rightly) hold up the next grace period for ever.
        reader.Run(t => t.Offline()).Wait();
        qsbr.Barrier();
        Assert.Equal([2u], map.Values);
    }

    [Fact]
    public unsafe void SetEntry_OutsideTheArray_Throws()
    {
        // The publisher's entry writer checks its index: an update that
        // miscounted a bucket fails instead of writing past the array.
        var array = (EventfdMap.Header*)EventfdMap.AllocateArray(3);
        try
        {
            EventfdMap.SetEntry(array, 2, 0x10, 5);
            Assert.Equal(2, EventfdMap.IndexOf(array, 0x10));
            Assert.Throws<ArgumentOutOfRangeException>(() => EventfdMap.SetEntry(array, 3, 0x11, 6));
            Assert.Throws<ArgumentOutOfRangeException>(() => EventfdMap.SetEntry(array, -1, 0x11, 6));
            Assert.Equal(-1, EventfdMap.IndexOf(array, 0x11));
            Assert.Throws<ArgumentOutOfRangeException>(() => EventfdMap.AllocateArray(-1));
            Assert.Throws<ArgumentOutOfRangeException>(() => EventfdMap.AllocateArray(EventfdMap.MaxEntries + 1));
        }
        finally
        {
            System.Runtime.InteropServices.NativeMemory.AlignedFree(array);
        }
    }
}

[Collection(Serial.Name)]
public class EventfdMapLifetimeTests
{
    [Theory]
    [InlineData(EventfdMapReclaim.Synchronous)]
    [InlineData(EventfdMapReclaim.Deferred)]
    public void RemovedEntrysDescriptor_IsClosedOnlyAfterTheGracePeriod(EventfdMapReclaim mode)
    {
        using var qsbr = new Qsbr();
        using var map = new EventfdMap(qsbr, mode);
        using var efd = EventFd.Create();
        map.Add(5, efd.Handle);
        int owned = map.Lookup(5);
        Assert.NotEqual(efd.Handle.Fd, owned); // its own duplicate
        using var reader = new RcuReader(qsbr);

        var remove = TaskAssert.OnThread(() => map.Remove(5));
        if (mode == EventfdMapReclaim.Deferred) TaskAssert.Completes(remove);
        reader.AssertUpdaterWaiting(mode == EventfdMapReclaim.Synchronous ? remove : null);
        Thread.Sleep(50);
        Assert.True(FdSnapshot.IsOpen(owned), "closed while a reader could still hold it");

        // The reader leaves (as an idle vCPU does): every pending grace period can end.
        reader.Run(t => t.Offline()).Wait();
        TaskAssert.Completes(remove);
        qsbr.Barrier();
        Assert.False(FdSnapshot.IsOpen(owned));
    }

    [Fact]
    public void Duplicates_SitEachAloneInALineOfTheDescriptorTable()
    {
        using var qsbr = new Qsbr();
        using var map = new EventfdMap(qsbr, EventfdMapReclaim.Deferred);
        using var efd = EventFd.Create();
        for (uint v = 1; v <= 5; v++) map.Add(v, efd);
        int[] fds = [.. map.Values.Select(map.Lookup)];
        Assert.All(fds, fd => Assert.True(fd >= HotDescriptors.Base, $"descriptor {fd} below {HotDescriptors.Base}"));
        Assert.Equal(fds.Length, fds.Select(fd => fd / HotDescriptors.PerLine).Distinct().Count());

        // A line is given back when its descriptor closes, after the grace period.
        int freed = map.Lookup(3);
        Assert.True(map.Remove(3));
        qsbr.Barrier();
        Assert.False(FdSnapshot.IsOpen(freed));
        map.Add(6, efd);
        Assert.Equal(freed / HotDescriptors.PerLine, map.Lookup(6) / HotDescriptors.PerLine);
    }

    [Fact]
    public void FailedAdds_LeakNoDescriptor()
    {
        using var qsbr = new Qsbr();
        using var map = new EventfdMap(qsbr);
        using var a = EventFd.Create();
        var (r, w) = SafeFdHandle.CreatePipe();
        map.Add(1, a.Handle);
        var before = FdSnapshot.Open();
        Assert.Throws<ErrnoException>(() => map.Add(1, a.Handle));
        Assert.Throws<ErrnoException>(() => map.Add(2, w));
        Assert.Throws<ErrnoException>(() => map.Add(0, a.Handle));
        Assert.Equal(before, FdSnapshot.Open());
        r.Dispose();
        w.Dispose();
    }

    [Fact]
    public void Dispose_ClosesEveryOwnedDescriptor()
    {
        var before = FdSnapshot.Open();
        var qsbr = new Qsbr();
        var map = new EventfdMap(qsbr, EventfdMapReclaim.Deferred);
        var efds = Enumerable.Range(1, 8).Select(_ => EventFd.Create()).ToArray();
        for (int i = 0; i < efds.Length; i++) map.Add((uint)i + 1, efds[i].Handle);
        map.Remove(3);
        foreach (var e in efds) e.Dispose();
        map.Dispose();
        qsbr.Dispose();
        Assert.Equal(before, FdSnapshot.Open());
        Assert.False(map.TrySignal(1)); // after Dispose: an empty map, never freed memory
    }

    private const uint Held = 0x7777;

    /// <summary>Another value in Held's bucket: attaching it retires the array a reader of Held holds.</summary>
    private static readonly uint SameBucketAsHeld = Enumerable.Range(1, 100_000).Select(i => (uint)i)
        .First(v => v != Held && EventfdMap.BucketOf(v) == EventfdMap.BucketOf(Held));

    /// <summary>
    /// Starts <c>TrySignal(Held)</c> on a reader and holds it between loading
    /// the array and scanning it (checking mode's hook), then runs
    /// <paramref name="whileHeld"/>, which retires that array, and lets the
    /// reader finish. Returns what the signal returned and how many poisoned
    /// reads it made.
    /// </summary>
    private static (bool Signalled, long Poisoned) SignalWithReaderHeldInScan(
        EventfdMap map, RcuReader reader, Action whileHeld, Action? afterRelease = null)
    {
        Assert.True(EventfdMap.Checking, "tests must run with the map's checking mode on");
        long poisonedBefore = EventfdMap.PoisonedReads;
        bool signalled = false;
        using var inScan = new ManualResetEventSlim();
        using var resume = new ManualResetEventSlim();
        EventfdMap.s_afterLoadHook = v => { if (v == Held) { inScan.Set(); resume.Wait(); } };
        try
        {
            var signal = reader.Run(_ => signalled = map.TrySignal(Held));
            Assert.True(inScan.Wait(TimeSpan.FromSeconds(10)));
            whileHeld();
            resume.Set();
            TaskAssert.Completes(signal);
            afterRelease?.Invoke();
        }
        finally
        {
            EventfdMap.s_afterLoadHook = null;
            resume.Set();
        }
        return (signalled, EventfdMap.PoisonedReads - poisonedBefore);
    }

    [Fact]
    public void GracePeriod_HoldsTheWriterBack_WhileAReaderScansTheOldArray()
    {
        using var qsbr = new Qsbr();
        using var map = new EventfdMap(qsbr);
        using var efd = EventFd.Create();
        map.Add(Held, efd.Handle);
        using var reader = new RcuReader(qsbr);
        Task add = Task.CompletedTask;

        var (signalled, poisoned) = SignalWithReaderHeldInScan(map, reader,
            whileHeld: () =>
            {
                add = TaskAssert.OnThread(() => map.Add(SameBucketAsHeld, efd.Handle)); // retires the array the reader holds
                reader.AssertUpdaterWaiting(add);
            },
            afterRelease: () =>
            {
                reader.Run(t => t.QuiescentState()).Wait();
                TaskAssert.Completes(add);
            });

        Assert.True(signalled);
        Assert.Equal(0, poisoned);
        Assert.Equal(1UL, FdSnapshot.EventFdCount(efd.Handle.Fd));
    }

    [Fact]
    public void WithoutAGracePeriod_TheReaderSeesPoison()
    {
        // Negative control for the test above and the stress test: if updates
        // did not wait, checking mode would catch the reader in freed memory.
        using var qsbr = new Qsbr();
        using var map = new EventfdMap(qsbr) { UnsafeSkipGracePeriodForTests = true };
        using var efd = EventFd.Create();
        map.Add(Held, efd.Handle);
        using var reader = new RcuReader(qsbr);

        var (signalled, poisoned) = SignalWithReaderHeldInScan(map, reader,
            whileHeld: () => TaskAssert.Completes(TaskAssert.OnThread(() => map.Add(SameBucketAsHeld, efd.Handle))));

        Assert.False(signalled);
        Assert.Equal(1, poisoned);
    }
}
