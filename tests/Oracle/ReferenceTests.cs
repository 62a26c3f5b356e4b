namespace Sharpvisor.Tests.Oracle;

/// <summary>The choice of the reference CPU, apart from the probes: every value of the switch, with and without each oracle.</summary>
public class ReferenceTests
{
    private const string NoKvm = "/dev/kvm is absent";
    private const string NoUnicorn = "Unicorn (libunicorn.so.2) is unusable here";

    private static OracleChoice Choose(string? requested, bool kvm, bool unicorn) =>
        Reference.Choose(requested, kvm ? null : NoKvm, () => unicorn ? null : NoUnicorn, () => "2.0");

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("auto")]
    [InlineData(" AUTO ")]
    public void Choose_WhenKvmRuns_PicksKvm(string? requested)
    {
        OracleChoice c = Choose(requested, kvm: true, unicorn: true);
        Assert.Equal(OracleKind.Kvm, c.Kind);
        Assert.Equal("kvm", c.Line);
    }

    [Fact]
    public void Choose_WhenKvmIsUnusable_PicksUnicornAndSaysWhy()
    {
        OracleChoice c = Choose(null, kvm: false, unicorn: true);
        Assert.Equal(OracleKind.Unicorn, c.Kind);
        Assert.Equal($"unicorn 2.0 (no usable KVM: {NoKvm})", c.Line);
    }

    [Fact]
    public void Choose_WhenNeitherRuns_ChoosesNoneAndSaysWhyForBoth()
    {
        OracleChoice c = Choose(null, kvm: false, unicorn: false);
        Assert.Null(c.Kind);
        Assert.False(c.Invalid);
        Assert.Contains(NoKvm, c.Line);
        Assert.Contains(NoUnicorn, c.Line);
    }

    [Fact]
    public void Choose_WhenUnicornIsForced_PicksItOverAWorkingKvm()
    {
        OracleChoice c = Choose("unicorn", kvm: true, unicorn: true);
        Assert.Equal(OracleKind.Unicorn, c.Kind);
        Assert.Equal("unicorn 2.0 (forced by SHARPVISOR_ORACLE=unicorn)", c.Line);
    }

    [Fact]
    public void Choose_WhenKvmIsForcedButUnusable_ChoosesNone_NotUnicorn()
    {
        OracleChoice c = Choose("kvm", kvm: false, unicorn: true);
        Assert.Null(c.Kind);
        Assert.Contains(NoKvm, c.Line);
    }

    [Fact]
    public void Choose_WhenUnicornIsForcedButMissing_ChoosesNone_NotKvm()
    {
        OracleChoice c = Choose("unicorn", kvm: true, unicorn: false);
        Assert.Null(c.Kind);
        Assert.Contains(NoUnicorn, c.Line);
    }

    [Fact]
    public void Choose_WhenTheSwitchIsMistyped_IsInvalid()
    {
        OracleChoice c = Choose("qemu", kvm: true, unicorn: true);
        Assert.Null(c.Kind);
        Assert.True(c.Invalid);
        Assert.Contains("SHARPVISOR_ORACLE=qemu", c.Line);
    }

    /// <summary>What this run chose agrees with the probes: forcing Unicorn hides KVM from the KVM tests too.</summary>
    [Fact]
    public void Choice_AgreesWithTheProbes()
    {
        OracleChoice c = Reference.Choice;
        if (c.Kind == OracleKind.Kvm) Assert.Null(KvmCpu.Unusable);
        if (c.Kind == OracleKind.Unicorn)
        {
            Assert.Null(UnicornCpu.Unusable);
            Assert.NotNull(KvmCpu.Unusable);
        }
        if (Reference.KvmHidden != null) Assert.NotEqual(OracleKind.Kvm, c.Kind);
    }
}
