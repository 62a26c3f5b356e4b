using System.Diagnostics;
using Sharpvisor.Jit.Runtime;

namespace Sharpvisor.Tests.Oracle;

/// <summary>
/// Every instruction form, run as one program on the real CPU (KVM) and on
/// each of our engines, compared vector by vector with the architecturally
/// undefined flags masked. KVM results are computed once per form. For the
/// few forms the KVM here cannot run (<see cref="OracleGaps"/>), Unicorn
/// stands in for it, and where Unicorn lacks the instruction too, the form's
/// model; the failure message names whichever oracle was used.
/// </summary>
[Collection(KvmCollection.Name)]
public class DifferentialTests
{
    public static TheoryData<string> Forms => new(InstructionForms.All.Select(f => f.Name));

    /// <summary>The oracle side alone: every program runs to its final hlt on KVM. Proves the programs, not the engine.</summary>
    [Theory, MemberData(nameof(Forms))]
    public void Program_RunsToItsEnd_OnKvm(string form)
    {
        KvmCollection.SkipUnlessUsable();
        var program = SnippetProgram.Build(InstructionForms.Get(form));
        Assert.Equal(program.Vectors.Length, KvmResultsOrSkip(program, allowStandIns: false).Results.Length);
    }

    [Theory, MemberData(nameof(Forms))]
    public void Threaded_MatchesKvm(string form) => MatchesKvm(form, EngineKind.Threaded);

    [Theory, MemberData(nameof(Forms))]
    public void Il_MatchesKvm(string form) => MatchesKvm(form, EngineKind.Il);

    [Theory, MemberData(nameof(Forms))]
    public void X64_MatchesKvm(string form) => MatchesKvm(form, EngineKind.X64);

    private static void MatchesKvm(string form, EngineKind kind)
    {
        KvmCollection.SkipUnlessUsable();
        var program = SnippetProgram.Build(InstructionForms.Get(form));
        (string oracle, VectorResult[] expected) = KvmResultsOrSkip(program, allowStandIns: true);
        VectorResult[] actual = SnippetRunner.OnEngine(program, kind);
        string? diff = ResultComparison.Compare(program, oracle, expected, kind.ToString(), actual, maskUndefinedFlags: true);
        if (diff != null) Assert.Fail(diff);
    }

    /// <summary>
    /// The KVM results, where KVM here is an oracle for the form. Where it is
    /// not (a probe found it runs the instruction wrongly, or its emulator
    /// lacks the instruction altogether), and <paramref name="allowStandIns"/>
    /// allows: the second oracle, Unicorn, if it is installed and runs the
    /// instruction; failing that the form's model if it has one. Otherwise a
    /// skip that says why. Anything else KVM reports (a triple fault, say) is a broken
    /// program and fails.
    /// </summary>
    private static (string Oracle, VectorResult[] Results) KvmResultsOrSkip(SnippetProgram program, bool allowStandIns)
    {
        string? gap = program.Form.OracleGap?.Invoke();
        if (gap == null)
        {
            try
            {
                return ("KVM", SnippetRunner.OnKvm(program));
            }
            catch (KvmExitException e) when (e.IsEmulationGap)
            {
                gap = e.Message;
            }
        }
        if (!allowStandIns)
            Assert.Skip($"KVM here cannot run '{program.Form.Name}' (the engine tests compare it with Unicorn or a model instead): {gap}");
        string? unicornGap = UnicornCpu.Unusable;
        if (unicornGap == null)
        {
            try
            {
                return ("Unicorn", SnippetRunner.OnUnicorn(program));
            }
            catch (UnicornException e) when (e.Err == UnicornInterop.UC_ERR_INSN_INVALID)
            {
                unicornGap = $"Unicorn lacks it too: {e.Message}";
            }
        }
        if (program.Form.Model is { } model)
            return ("model", program.Vectors.Select(model).ToArray());
        Assert.Skip($"no oracle here for '{program.Form.Name}': KVM: {gap}; {unicornGap}");
        throw new UnreachableException(); // Skip throws
    }
}

/// <summary>
/// The same programs on both engines, which must agree on everything except
/// architecturally undefined register results: they share one flags
/// implementation, so even undefined flags must match. Needs no KVM.
/// </summary>
public class CrossEngineTests
{
    public static TheoryData<string> Forms => DifferentialTests.Forms;

    [Theory, MemberData(nameof(Forms))]
    public void Il_MatchesThreaded(string form)
    {
        var program = SnippetProgram.Build(InstructionForms.Get(form));
        VectorResult[] threaded = SnippetRunner.OnEngine(program, EngineKind.Threaded);
        VectorResult[] il = SnippetRunner.OnEngine(program, EngineKind.Il);
        string? diff = ResultComparison.Compare(program, "Threaded", threaded, "Il", il, maskUndefinedFlags: false);
        if (diff != null) Assert.Fail(diff);
    }

    /// <summary>
    /// The forms the IL engine's regions compute through the shared
    /// semantics or in line besides the common ones (rotates, double shifts,
    /// wide multiplies, carry chains). The other IL tests run each block
    /// once, below the threshold for a region; here every block is compiled.
    /// </summary>
    public static TheoryData<string> RegionForms => new(InstructionForms.All.Select(f => f.Name)
        .Where(n => n.Split(' ')[0] is "rol" or "ror" or "rcl" or "rcr" or "shld" or "shrd" or "mul" or "imul" or "adc" or "sbb"
            || n.Contains("; adc") || n.Contains("; sbb") || n.Contains("; inc") || n.Contains("; dec")));

    [Theory, MemberData(nameof(RegionForms))]
    public void IlRegion_MatchesThreaded(string form)
    {
        if (!Engines.IsIlAvailable)
            Assert.Skip("the IL engine needs dynamic code");
        var program = SnippetProgram.Build(InstructionForms.Get(form));
        VectorResult[] threaded = SnippetRunner.OnEngine(program, EngineKind.Threaded);
        VectorResult[] il = SnippetRunner.OnEngine(program, EngineKind.Il, ilRegions: true);
        string? diff = ResultComparison.Compare(program, "Threaded", threaded, "Il (regions)", il, maskUndefinedFlags: false);
        if (diff != null) Assert.Fail(diff);
    }

    /// <summary>The x64 engine's machine code hands uncommon ops to the threaded engine, so even undefined flags must match it.</summary>
    [Theory, MemberData(nameof(Forms))]
    public void X64_MatchesThreaded(string form)
    {
        if (!Engines.IsX64Available)
            Assert.Skip("the x64 engine needs an x86-64 Linux host");
        var program = SnippetProgram.Build(InstructionForms.Get(form));
        VectorResult[] threaded = SnippetRunner.OnEngine(program, EngineKind.Threaded);
        VectorResult[] x64 = SnippetRunner.OnEngine(program, EngineKind.X64);
        string? diff = ResultComparison.Compare(program, "Threaded", threaded, "X64", x64, maskUndefinedFlags: false);
        if (diff != null) Assert.Fail(diff);
    }
}
