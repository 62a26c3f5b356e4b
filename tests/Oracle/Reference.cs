using System.Diagnostics;

namespace Sharpvisor.Tests.Oracle;

/// <summary>The two real x86 implementations the engines are checked against.</summary>
public enum OracleKind
{
    /// <summary>The host CPU through /dev/kvm (<see cref="KvmCpu"/>).</summary>
    Kvm,
    /// <summary>QEMU's x86 emulator as a library (<see cref="UnicornCpu"/>), with its known errors in <see cref="OracleGaps.Unicorn"/>.</summary>
    Unicorn,
}

/// <summary>Which oracle a run compares the engines against, and why; <see cref="Kind"/> null when there is none.</summary>
/// <param name="Line">What the run records and ./test.sh prints after "oracle: ".</param>
/// <param name="Invalid">The environment asked for something that is no oracle: the tests fail instead of skipping.</param>
internal sealed record OracleChoice(OracleKind? Kind, string Line, bool Invalid = false);

/// <summary>Where the reference has no answer of its own for a form, what may answer instead.</summary>
[Flags]
internal enum StandIns
{
    None = 0,
    /// <summary>Unicorn, for the forms the KVM at hand cannot run (<see cref="OracleGaps"/>).</summary>
    Unicorn = 1,
    /// <summary>The form's model, where Unicorn lacks the instruction too.</summary>
    Model = 2,
    All = Unicorn | Model,
}

/// <summary>A form's results from the reference (or its stand-in), with Unicorn's known error for the form when Unicorn gave them.</summary>
internal sealed record OracleRun(string Oracle, VectorResult[] Results, UnicornGap? Masked);

/// <summary>
/// The reference CPU: the one oracle every engine test in a run is compared
/// against, chosen once per test run. KVM where it runs guests, since it is
/// the hardware itself; Unicorn where it does not (no /dev/kvm, a sandbox
/// that forbids the ioctls, no nested virtualization), so that the suite
/// checks the engines' semantics on any Linux machine; otherwise the tests
/// skip and say why. <see cref="Variable"/> forces either.
/// </summary>
/// <remarks>
/// Setting <c>SHARPVISOR_ORACLE=unicorn</c> hides KVM from the whole run
/// (<see cref="KvmCpu.Unusable"/> says so), so a KVM machine behaves exactly
/// as one without /dev/kvm: ./test.sh runs the reference tests a second time
/// that way so that CI checks both oracles. <c>=kvm</c> makes KVM the only
/// acceptable reference (no fallback to Unicorn as the reference; it still
/// stands in for the few forms the KVM at hand cannot run).
/// </remarks>
internal static class Reference
{
    /// <summary>The switch: unset, empty or "auto" picks; "kvm" or "unicorn" forces.</summary>
    public const string Variable = "SHARPVISOR_ORACLE";

    /// <summary>When set, a file the choice is written to (one line), for ./test.sh to print.</summary>
    public const string RecordVariable = "SHARPVISOR_ORACLE_RECORD";

    /// <summary>The trait of the tests that compare against the reference: the subset ./test.sh runs again on Unicorn.</summary>
    public const string Trait = "Oracle";
    public const string TraitValue = "Reference";

    private static string? Requested => Environment.GetEnvironmentVariable(Variable);

    /// <summary>Non-null when the environment hides KVM from this run; <see cref="KvmCpu.Unusable"/> reports it.</summary>
    public static string? KvmHidden => Normalize(Requested) == "unicorn" ? $"{Variable}=unicorn hides KVM from this run" : null;

    private static readonly Lazy<OracleChoice> s_choice = new(() =>
    {
        OracleChoice choice = Choose(Requested, KvmCpu.Unusable, () => UnicornCpu.Unusable, () => UnicornCpu.Version);
        if (Environment.GetEnvironmentVariable(RecordVariable) is { Length: > 0 } path)
            File.WriteAllText(path, choice.Line + "\n");
        return choice;
    });

    /// <summary>This run's reference, decided at the first test that asks.</summary>
    public static OracleChoice Choice => s_choice.Value;

    /// <summary>
    /// The decision, apart from the probes so that it can be tested: the
    /// requested value, why KVM cannot run guests here (null when it can), and
    /// the same for Unicorn, asked only when needed (probing it loads the
    /// library).
    /// </summary>
    public static OracleChoice Choose(string? requested, string? kvmUnusable, Func<string?> unicornUnusable, Func<string> unicornVersion)
    {
        switch (Normalize(requested))
        {
            case "auto":
                if (kvmUnusable == null) return new(OracleKind.Kvm, "kvm");
                if (unicornUnusable() is { } noUnicorn)
                    return new(null, $"none (no usable KVM: {kvmUnusable}; {noUnicorn}): the reference tests skip");
                return new(OracleKind.Unicorn, $"unicorn {unicornVersion()} (no usable KVM: {kvmUnusable})");
            case "kvm":
                return kvmUnusable == null
                    ? new(OracleKind.Kvm, $"kvm (forced by {Variable}=kvm)")
                    : new(null, $"none ({Variable}=kvm, but {kvmUnusable}): the reference tests skip");
            case "unicorn":
                return unicornUnusable() is { } reason
                    ? new(null, $"none ({Variable}=unicorn, but {reason}): the reference tests skip")
                    : new(OracleKind.Unicorn, $"unicorn {unicornVersion()} (forced by {Variable}=unicorn)");
            default:
                return new(null, $"invalid ({Variable}={requested}: expected kvm, unicorn or auto)", Invalid: true);
        }
    }

    private static string Normalize(string? requested) =>
        string.IsNullOrWhiteSpace(requested) ? "auto" : requested.Trim().ToLowerInvariant();

    /// <summary>Skips the calling test where this run has no reference; fails it where the switch is mistyped.</summary>
    public static OracleKind SkipUnlessChosen()
    {
        OracleChoice c = Choice;
        if (c.Invalid) Assert.Fail($"oracle: {c.Line}");
        if (c.Kind is { } kind) return kind;
        Assert.Skip($"oracle: {c.Line}");
        throw new UnreachableException(); // Skip throws
    }

    /// <summary>
    /// The program's results on the reference, or where the reference has no
    /// answer and <paramref name="standIns"/> allows, on a stand-in: on a KVM
    /// run Unicorn for the forms this KVM runs wrongly or its emulator lacks,
    /// and on either run the form's model where Unicorn lacks the instruction
    /// too. Otherwise a skip that says why. Anything else an oracle reports (a
    /// triple fault, an unmapped access) is a broken program and fails.
    /// </summary>
    public static OracleRun Run(SnippetProgram program, StandIns standIns)
    {
        OracleKind kind = SkipUnlessChosen();
        string? gap = null;
        if (kind == OracleKind.Kvm)
        {
            gap = program.Form.OracleGap?.Invoke();
            if (gap == null)
            {
                try { return new("KVM", SnippetRunner.OnKvm(program), null); }
                catch (KvmExitException e) when (e.IsEmulationGap) { gap = e.Message; }
            }
            gap = $"KVM here cannot run '{program.Form.Name}': {gap}";
            if ((standIns & StandIns.Unicorn) == 0)
                Assert.Skip($"{gap} (the engine tests compare it with Unicorn or the form's model instead)");
            if (UnicornCpu.Unusable is { } noUnicorn)
                gap = $"{gap}; {noUnicorn}";
        }
        if (kind == OracleKind.Unicorn || UnicornCpu.Unusable == null)
        {
            try { return new("Unicorn", SnippetRunner.OnUnicorn(program), OracleGaps.UnicornGapFor(program.Form.Name)); }
            catch (UnicornException e) when (e.Err == UnicornInterop.UC_ERR_INSN_INVALID)
            {
                gap = gap == null ? $"Unicorn lacks '{program.Form.Name}': {e.Message}" : $"{gap}; Unicorn lacks it too: {e.Message}";
            }
        }
        if ((standIns & StandIns.Model) != 0 && program.Form.Model is { } model)
            return new("model", program.Vectors.Select(model).ToArray(), null);
        Assert.Skip($"no oracle here for '{program.Form.Name}': {gap}");
        throw new UnreachableException(); // Skip throws
    }
}
