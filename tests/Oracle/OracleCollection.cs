namespace Sharpvisor.Tests.Oracle;

/// <summary>
/// The tests that run reference CPUs share one collection. Concurrent VMs
/// work (KvmCpuTests runs several at once), but nested KVM on a 2-core
/// machine is slow per exit and parallel runs only make each slower; serial
/// runs also keep the timings the differential suite reports meaningful.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class OracleCollection
{
    public const string Name = "oracle";

    /// <summary>Skips the calling test where KVM cannot run guests (or the run hides it): for tests of KVM itself.</summary>
    internal static void SkipUnlessKvm()
    {
        if (KvmCpu.Unusable is { } reason) Assert.Skip(reason);
    }

    /// <summary>Skips the calling test where Unicorn is not installed: for tests of Unicorn itself.</summary>
    internal static void SkipUnlessUnicorn()
    {
        if (UnicornCpu.Unusable is { } reason) Assert.Skip(reason);
    }

    /// <summary>Skips unless <paramref name="kind"/> can run here: for the harness checks made on each oracle.</summary>
    internal static void SkipUnless(OracleKind kind)
    {
        if (kind == OracleKind.Kvm) SkipUnlessKvm();
        else SkipUnlessUnicorn();
    }
}
