using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using Sharpvisor.Native;

namespace Sharpvisor.Bench;

/// <summary>
/// The read side of the RCU eventfd map: what a vCPU pays to find the eventfd
/// for a notification value, against a scan of one plain array holding every
/// entry (the seed's layout, which the map used before its buckets). Both
/// look up the last value attached, so the plain scan sees every entry and
/// the map only the value's bucket; the ratio is what the buckets save, net
/// of reading the map under QSBR (volatile loads of the table and the
/// bucket's pointer).
/// </summary>
/// <remarks>
/// The host under our VMs stretches some iterations by up to 80%. Noise only
/// adds time, so the Min column (the fastest iteration) is the steadiest figure.
/// </remarks>
[MinColumn]
public unsafe class MapLookupBench
{
    [Params(1, 16, 256)]
    public int Entries;

    private Qsbr _qsbr = null!;
    private QsbrThread _reader = null!;
    private EventfdMap _map = null!;
    private PlainMap _plain = null!;
    private uint _last;
    private int _setupThread;

    /// <summary>
    /// The baseline's array, behind one object reference as the map's table
    /// is, scanned by the same loop (<see cref="EventfdMap.Find"/>).
    /// </summary>
    private sealed class PlainMap
    {
        public EventfdMap.Header* Array;
    }

    [GlobalSetup]
    public void Setup()
    {
        // BenchmarkDotNet runs GlobalSetup, the workload and GlobalCleanup on
        // one thread, so the thread registered here is the one that reads.
        _setupThread = Environment.CurrentManagedThreadId;
        _qsbr = new Qsbr();
        _reader = _qsbr.Register("bench reader");
        _map = new EventfdMap(_qsbr);
        for (int i = 0; i < Entries; i++)
        {
            // The map keeps its own duplicate, so ours can close at once.
            using var efd = EventFd.Create();
            _map.Add(ValueAt(i), efd.Handle);
        }
        _last = ValueAt(Entries - 1);

        // The map's own allocator, so the baseline's layout cannot drift from the map's.
        var array = (EventfdMap.Header*)EventfdMap.AllocateArray(Entries);
        for (int i = 0; i < Entries; i++)
            EventfdMap.SetEntry(array, i, ValueAt(i), _map.Lookup(ValueAt(i)));
        _plain = new PlainMap { Array = array };

        if (PlainScan() != MapLookup() || MapLookup() < 0)
            throw new InvalidOperationException("baseline and map disagree on the last value's descriptor");
    }

    // Values spread out as a device's would be, none of them 0 (reserved).
    private static uint ValueAt(int i) => 0x1000u + 0x10u * (uint)i;

    [Benchmark(Baseline = true)]
    public int PlainScan() => EventfdMap.Find(_plain.Array, _last);

    [Benchmark]
    public int MapLookup() => _map.Lookup(_last);

    [GlobalCleanup]
    public void Cleanup()
    {
        if (Environment.CurrentManagedThreadId != _setupThread)
            throw new InvalidOperationException("GlobalCleanup ran on another thread than GlobalSetup: the reader was not the registered thread");
        _map.Dispose();
        _reader.Dispose();
        _qsbr.Dispose();
        NativeMemory.AlignedFree(_plain.Array);
    }
}
