using Sharpvisor.Jit.Runtime;

namespace Sharpvisor.Tests.Oracle;

/// <summary>
/// Every instruction form, run as one program on the reference CPU (KVM, or
/// Unicorn where KVM is unusable or hidden: <see cref="Reference"/>) and on
/// each of our engines, compared vector by vector with the architecturally
/// undefined flags masked, and Unicorn's known errors when Unicorn answered
/// (<see cref="OracleGaps"/>). Oracle results are computed once per form. For
/// the few forms the KVM here cannot run, Unicorn stands in for it, and where
/// Unicorn lacks the instruction too, the form's model; the failure message
/// names whichever oracle was used.
/// </summary>
[Collection(OracleCollection.Name), Trait(Reference.Trait, Reference.TraitValue)]
public class DifferentialTests
{
    public static TheoryData<string> Forms => new(InstructionForms.All.Select(f => f.Name));

    /// <summary>The oracle side alone: every program runs to its final hlt on the reference. Proves the programs, not the engine.</summary>
    [Theory, MemberData(nameof(Forms))]
    public void Program_RunsToItsEnd_OnReference(string form)
    {
        var program = SnippetProgram.Build(InstructionForms.Get(form));
        Assert.Equal(program.Vectors.Length, Reference.Run(program, StandIns.None).Results.Length);
    }

    [Theory, MemberData(nameof(Forms))]
    public void Threaded_MatchesReference(string form) => MatchesReference(form, EngineKind.Threaded);

    [Theory, MemberData(nameof(Forms))]
    public void Il_MatchesReference(string form) => MatchesReference(form, EngineKind.Il);

    [Theory, MemberData(nameof(Forms))]
    public void X64_MatchesReference(string form) => MatchesReference(form, EngineKind.X64);

    private static void MatchesReference(string form, EngineKind kind)
    {
        // With Unicorn as the reference the host need not be x86: the engines
        // that need one skip there, as elsewhere in the suite.
        if (kind == EngineKind.X64 && !Engines.IsX64Available)
            Assert.Skip("the x64 engine needs an x86-64 Linux host");
        if (kind == EngineKind.Il && !Engines.IsIlAvailable)
            Assert.Skip("the IL engine needs dynamic code");
        var program = SnippetProgram.Build(InstructionForms.Get(form));
        OracleRun expected = Reference.Run(program, StandIns.All);
        VectorResult[] actual = SnippetRunner.OnEngine(program, kind);
        string? diff = ResultComparison.Compare(program, expected.Oracle, expected.Results, kind.ToString(), actual, maskUndefinedFlags: true, expected.Masked);
        if (diff != null) Assert.Fail(diff);
    }
}

/// <summary>
/// The same programs on both engines, which must agree on everything except
/// architecturally undefined register results: they share one flags
/// implementation, so even undefined flags must match. Needs no oracle.
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
