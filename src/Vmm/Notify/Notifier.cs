using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Sharpvisor.Native;

namespace Sharpvisor.Vmm.Notify;

/// <summary>
/// The VM's notification side: the RCU map from values to eventfds that
/// LHCALL_NOTIFY signals, with exact per-value counts of what was delivered
/// and what missed, for <c>--stats</c> and for tests.
/// </summary>
/// <remarks>
/// Counting design: nothing on the notify path may take a lock, allocate or
/// throw, and the counts must be exact (tests compare them with what the
/// receivers read). So each vCPU counts only in words no other thread
/// writes. Deliveries go to the map entry's counter block, in the vCPU's own
/// slot (see <see cref="EventfdMap"/>): the block moves with the entry when
/// the map is copied, and is retired after a grace period like the entry's
/// descriptor, so no increment is ever lost to an update. Misses go to the
/// vCPU's own row of a <see cref="MissTable"/>. Both are summed over the vCPUs
/// when the VM reports, after the vCPU threads have been joined.
/// </remarks>
public sealed class Notifier : IDisposable
{
    private readonly EventfdMap _map;
    private readonly MissTable _misses;

    /// <param name="qsbr">The VM's RCU domain, in which every vCPU thread is registered.</param>
    /// <param name="vcpus">How many vCPUs notify (each counts in its own slot).</param>
    public Notifier(Qsbr qsbr, int vcpus)
    {
        // Deferred: an update never waits for a grace period itself, so a
        // controller attaching values is not held up by a busy vCPU.
        _map = new EventfdMap(qsbr, EventfdMapReclaim.Deferred, counterSlots: vcpus);
        _misses = new MissTable(vcpus);
    }

    /// <summary>
    /// Attaches <paramref name="value"/> to an eventfd (the map keeps its own
    /// duplicate); any thread, at any time, also while vCPUs notify.
    /// </summary>
    /// <exception cref="ErrnoException">See <see cref="EventfdMap.Add"/>: EEXIST, EINVAL, EBADF, ENOSPC.</exception>
    public void Attach(uint value, SafeHandle eventFd) => _map.Add(value, eventFd);

    /// <summary>
    /// <see cref="Attach(uint, SafeHandle)"/> for an <see cref="EventFd"/>,
    /// an eventfd by construction, which the map does not check again.
    /// </summary>
    public void Attach(uint value, EventFd eventFd) => _map.Add(value, eventFd);

    // Doorbells: attached once, before the VM runs, and read by the control thread.
    private readonly HashSet<uint> _doorbells = [];

    /// <summary>
    /// Attaches a device queue's doorbell: <paramref name="value"/> then rings
    /// <paramref name="eventFd"/> like any notify value, and stays attached
    /// for the machine's life (the control socket cannot detach it).
    /// </summary>
    public void AttachDoorbell(uint value, EventFd eventFd)
    {
        lock (_doorbells)
        {
            _map.Add(value, eventFd);
            _doorbells.Add(value);
        }
    }

    /// <summary>True if <paramref name="value"/> is a device queue's doorbell.</summary>
    public bool IsDoorbell(uint value)
    {
        lock (_doorbells) return _doorbells.Contains(value);
    }

    /// <summary>Detaches <paramref name="value"/>; false if it was not attached.</summary>
    public bool Detach(uint value) => _map.Remove(value);

    /// <summary>The values attached now.</summary>
    public uint[] Attached => _map.Values;

    /// <summary>
    /// The notify path, on vCPU <paramref name="vcpu"/>'s thread (online in
    /// the VM's QSBR domain): signals the eventfd attached to
    /// <paramref name="value"/>, or counts a miss. True if delivered.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Signal(uint value, int vcpu)
    {
        if (_map.TrySignal(value, vcpu)) return true;
        _misses.Count(value, vcpu);
        return false;
    }

    /// <summary>Deliveries per value, for every value ever attached, in first-attach order.</summary>
    public IReadOnlyList<KeyValuePair<uint, long>> Delivered() => _map.DeliveredCounts();

    /// <summary>Misses per value (the first 64 distinct values, in order), and the rest together.</summary>
    public (IReadOnlyList<KeyValuePair<uint, long>> Values, long Other) Missed() => _misses.Snapshot();

    /// <summary>The canonical spelling of a notification value in every message: lowercase hex, 0x, no padding.</summary>
    public static string Name(uint value) => $"0x{value:x}";

    /// <summary>
    /// The <c>--stats</c> lines: <c>notify 0x10 delivered N</c> per attached
    /// value, then <c>notify 0x20 missed N</c> per value that missed, then
    /// <c>notify other missed N</c> if more than 64 distinct values missed.
    /// </summary>
    public IEnumerable<string> StatsLines()
    {
        foreach ((uint value, long n) in Delivered())
            yield return $"notify {Name(value)} delivered {n}";
        (IReadOnlyList<KeyValuePair<uint, long>> missed, long other) = Missed();
        foreach ((uint value, long n) in missed)
            yield return $"notify {Name(value)} missed {n}";
        if (other > 0)
            yield return $"notify other missed {other}";
    }

    public void Dispose() => _map.Dispose();
}
