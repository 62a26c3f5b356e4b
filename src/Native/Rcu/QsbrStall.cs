namespace Sharpvisor.Native;

/// <summary>
/// A grace period that has waited longer than <see cref="Qsbr.StallThreshold"/>
/// for one thread: which thread, and since when.
/// </summary>
public readonly record struct QsbrStall(string ThreadName, int Tid, ulong GracePeriod, DateTime WaitingSinceUtc, TimeSpan Waited)
{
    public override string ToString() =>
        $"qsbr: grace period {GracePeriod} has waited {Waited.TotalSeconds:F2} s for thread '{ThreadName}' (tid {Tid}), " +
        $"waiting since {WaitingSinceUtc:HH:mm:ss.fff} UTC without a quiescent state";
}
