using System.Runtime.CompilerServices;

namespace Sharpvisor.Vmm.Notify;

/// <summary>
/// LHCALL_NOTIFY values that found no eventfd, counted exactly per value for
/// the first <see cref="DistinctValues"/> distinct ones, and together as
/// "other" after that. Each vCPU counts in its own row, so counting needs no
/// lock and no interlocked instruction; a compare-and-swap claims a value's
/// column once, the first time any vCPU misses it, at most 64 times per VM.
/// </summary>
public sealed class MissTable
{
    /// <summary>Values that get a line of their own in --stats; the rest are "other".</summary>
    public const int DistinctValues = 64;

    /// <summary>Column of the misses past the first 64 distinct values.</summary>
    private const int Other = DistinctValues;

    /// <summary>A row: 64 values, other, padded to whole cache lines so that rows never share one.</summary>
    private const int RowLength = 72;

    private readonly uint[] _values = new uint[DistinctValues]; // 0 = free (0 never misses: it is a guest fault)
    private readonly long[] _counts;                            // [vcpu * RowLength + column]
    private readonly int _vcpus;

    public MissTable(int vcpus)
    {
        _vcpus = vcpus;
        _counts = new long[vcpus * RowLength];
    }

    /// <summary>Counts one miss of <paramref name="value"/> (nonzero) by vCPU <paramref name="vcpu"/>, on that vCPU's thread.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // the miss path stays out of the hypercall's body
    public void Count(uint value, int vcpu) => _counts[vcpu * RowLength + Column(value)]++;

    private int Column(uint value)
    {
        for (int i = 0; i < DistinctValues; i++)
        {
            uint seen = Volatile.Read(ref _values[i]);
            if (seen == value) return i;
            if (seen != 0) continue;
            // A free column: claim it, unless another vCPU just claimed it
            // (for this value or another one; then look further on).
            seen = Interlocked.CompareExchange(ref _values[i], value, 0);
            if (seen == 0 || seen == value) return i;
        }
        return Other;
    }

    /// <summary>Misses per value in the order the values first missed, then the "other" total (0 if none).</summary>
    public (IReadOnlyList<KeyValuePair<uint, long>> Values, long Other) Snapshot()
    {
        var values = new List<KeyValuePair<uint, long>>();
        for (int i = 0; i < DistinctValues; i++)
        {
            uint value = Volatile.Read(ref _values[i]);
            if (value == 0) break;
            values.Add(new(value, Sum(i)));
        }
        return (values, Sum(Other));
    }

    private long Sum(int column)
    {
        long sum = 0;
        for (int v = 0; v < _vcpus; v++) sum += Volatile.Read(ref _counts[v * RowLength + column]);
        return sum;
    }
}
