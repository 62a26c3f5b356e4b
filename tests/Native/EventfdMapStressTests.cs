using System.Diagnostics;
using Sharpvisor.Native;

namespace Sharpvisor.Tests.Native;

/// <summary>
/// In the spirit of liburcu's test_urcu_qsbr and rcutorture: readers look up
/// and signal as fast as they can while a writer attaches and detaches values
/// without pause. Checking mode poisons every retired array, so a reader that
/// ever touches one after its grace period is counted; and every successful
/// signal must show up in the kernel's eventfd counters, value by value.
/// </summary>
[Collection(Serial.Name)]
public class EventfdMapStressTests
{
    private const int Values = 16;
    private const int Readers = 2;

    /// <summary>
    /// The values raced over, by index 1..Values: four buckets of four, so that
    /// updates copy arrays of several entries and readers scan while others
    /// in their bucket come and go.
    /// </summary>
    private static readonly uint[] ValueOf = [0, .. Enumerable.Range(1, 1_000_000).Select(i => (uint)i)
        .Where(v => EventfdMap.BucketOf(v) < 4).GroupBy(EventfdMap.BucketOf).SelectMany(g => g.Take(Values / 4)).Take(Values)];

    [Theory]
    [InlineData(EventfdMapReclaim.Synchronous)]
    [InlineData(EventfdMapReclaim.Deferred)]
    public void ReadersAndWriterRace_NoPoisonedRead_NoLostSignal(EventfdMapReclaim mode)
    {
        Assert.True(EventfdMap.Checking, "the stress test is meaningless without checking mode");
        TimeSpan duration = TimeSpan.FromSeconds(3);
        long poisonedBefore = EventfdMap.PoisonedReads;

        using var qsbr = new Qsbr();
        var efds = Enumerable.Range(0, Values).Select(_ => EventFd.Create()).ToArray();
        var hits = new long[Readers, Values + 1];
        long lookups = 0, updates = 0;
        var stop = new ManualResetEventSlim();
        var clock = new System.Diagnostics.Stopwatch();

        using (var map = new EventfdMap(qsbr, mode))
        {
            var readers = Enumerable.Range(0, Readers).Select(r => new Thread(() =>
            {
                using QsbrThread self = qsbr.Register($"reader{r}");
                var rng = new Random(r);
                long n = 0;
                while (!stop.IsSet)
                {
                    for (int i = 0; i < 256; i++)
                    {
                        uint v = (uint)rng.Next(1, Values + 1);
                        if (map.TrySignal(ValueOf[v])) hits[r, v]++;
                        self.QuiescentState();
                    }
                    n += 256;
                    if ((n & 0xfff) == 0) { self.Offline(); self.Online(); } // the blocking-call path too
                }
                Interlocked.Add(ref lookups, n);
            }) { Name = $"reader{r}" }).ToList();

            var writer = new Thread(() =>
            {
                var rng = new Random(42);
                var attached = new bool[Values + 1];
                while (!stop.IsSet)
                {
                    int v = rng.Next(1, Values + 1);
                    if (attached[v]) map.Remove(ValueOf[v]);
                    else map.Add(ValueOf[v], efds[v - 1].Handle);
                    attached[v] = !attached[v];
                    Interlocked.Increment(ref updates);
                }
            }) { Name = "writer" };

            readers.ForEach(t => t.Start());
            writer.Start();
            // At least `duration`, and on until the writer has raced enough
            // updates: a machine loaded by other builds gives the writer little
            // CPU, and a short race proves nothing. A minute without 500 is a failure.
            clock.Restart();
            Thread.Sleep(duration);
            while (Interlocked.Read(ref updates) <= 500 && clock.Elapsed < TimeSpan.FromMinutes(1))
                Thread.Sleep(50);
            stop.Set();
            writer.Join();
            readers.ForEach(t => t.Join());
        }

        long totalHits = 0;
        for (int v = 1; v <= Values; v++)
        {
            long expected = 0;
            for (int r = 0; r < Readers; r++) expected += hits[r, v];
            efds[v - 1].TryRead(out ulong counted);
            Assert.Equal((ulong)expected, counted);
            totalHits += expected;
            efds[v - 1].Dispose();
        }

        Assert.Equal(poisonedBefore, EventfdMap.PoisonedReads);
        // It really raced: plenty of updates, lookups, hits and misses.
        Assert.True(updates > 500, $"only {updates} updates");
        Assert.True(totalHits > 10_000, $"only {totalHits} hits");
        Assert.True(lookups - totalHits > 10_000, $"only {lookups - totalHits} misses");
        Assert.True(qsbr.GracePeriods > 0);
        TestContext.Current.TestOutputHelper?.WriteLine($"{mode}: {lookups} lookups, {totalHits} hits, {updates} updates, {qsbr.GracePeriods} grace periods in {clock.Elapsed.TotalSeconds:0.0} s");
    }
}
