namespace Sharpvisor.Tests.Oracle;

/// <summary>
/// Unicorn against KVM on every form both run here. Where KVM is unusable
/// Unicorn is the reference, so its word must be as good as KVM's wherever
/// this machine can tell: outside the errors <see cref="OracleGaps.Unicorn"/>
/// lists, the two agree on every form; and each listed error is real, seen on
/// KVM in every flag and register it masks. A new Unicorn error shows here
/// as a failing form, before it can hide an engine bug on a machine without
/// KVM; a row that no longer differs (a newer Unicorn) fails too.
/// </summary>
[Collection(OracleCollection.Name)]
public class UnicornMatchesKvmTests
{
    public static TheoryData<string> Forms => DifferentialTests.Forms;

    [Theory, MemberData(nameof(Forms))]
    public void Unicorn_MatchesKvm_OutsideItsKnownErrors(string form)
    {
        (SnippetProgram program, VectorResult[] kvm, VectorResult[] unicorn) = RunBoth(form);
        string? diff = ResultComparison.Compare(program, "KVM", kvm, "Unicorn", unicorn, maskUndefinedFlags: true, OracleGaps.UnicornGapFor(form));
        if (diff != null) Assert.Fail(diff);
    }

    /// <summary>A fact over the whole table rather than a theory per row, so that an empty table (a Unicorn with no known error) still runs.</summary>
    [Fact]
    public void UnicornGaps_DifferFromKvm_InEveryFlagAndRegisterTheyMask()
    {
        OracleCollection.SkipUnlessKvm();
        OracleCollection.SkipUnlessUnicorn();
        var failures = new List<string>();
        foreach (UnicornGap gap in OracleGaps.Unicorn)
        {
            (SnippetProgram program, VectorResult[] kvm, VectorResult[] unicorn) = RunBoth(gap.Form);
            uint flagsSeen = 0;
            int registersSeen = 0;
            for (int i = 0; i < program.Vectors.Length; i++)
            {
                // A difference the architecture allows proves nothing about Unicorn.
                Undefined undefined = program.Form.Undefined(program.Vectors[i]);
                flagsSeen |= (kvm[i].Eflags ^ unicorn[i].Eflags) & ~undefined.Flags;
                for (int g = 0; g < 8; g++)
                    if (kvm[i].Regs[g] != unicorn[i].Regs[g] && (undefined.Registers & (1 << g)) == 0)
                        registersSeen |= 1 << g;
            }
            var unseen = gap with { Flags = gap.Flags & ~flagsSeen, Registers = (byte)(gap.Registers & ~registersSeen) };
            if (unseen.Flags != 0 || unseen.Registers != 0)
                failures.Add($"'{gap.Form}': OracleGaps masks {ResultComparison.Describe(unseen)}, but Unicorn agrees with KVM there on every vector: narrow or drop the row");
        }
        Assert.True(failures.Count == 0, string.Join('\n', failures));
    }

    /// <summary>The table itself, on any machine: each row names a catalogue form once, masks something, and says why.</summary>
    [Fact]
    public void UnicornGaps_NameCatalogueForms_MaskSomething_AndSayWhy()
    {
        Assert.All(OracleGaps.Unicorn, g =>
        {
            Assert.Contains(InstructionForms.All, f => f.Name == g.Form);
            Assert.True(g.Flags != 0 || g.Registers != 0, $"'{g.Form}' masks nothing");
            Assert.True(g.Why.Length > 40, $"'{g.Form}': say why, with an example");
        });
        Assert.Equal(OracleGaps.Unicorn.Count, OracleGaps.Unicorn.Select(g => g.Form).Distinct().Count());
    }

    /// <summary>Both oracles' results, or a skip where either cannot run the form here.</summary>
    private static (SnippetProgram, VectorResult[] Kvm, VectorResult[] Unicorn) RunBoth(string form)
    {
        OracleCollection.SkipUnlessKvm();
        OracleCollection.SkipUnlessUnicorn();
        var program = SnippetProgram.Build(InstructionForms.Get(form));
        if (program.Form.OracleGap?.Invoke() is { } gap)
            Assert.Skip($"KVM here runs '{form}' wrongly, so it cannot judge Unicorn (UnicornSelfCheckTests does, with known answers): {gap}");
        VectorResult[] kvm;
        try { kvm = SnippetRunner.OnKvm(program); }
        catch (KvmExitException e) when (e.IsEmulationGap) { Assert.Skip($"KVM here cannot run '{form}': {e.Message}"); throw; }
        VectorResult[] unicorn;
        try { unicorn = SnippetRunner.OnUnicorn(program); }
        catch (UnicornException e) when (e.Err == UnicornInterop.UC_ERR_INSN_INVALID)
        {
            Assert.Skip($"Unicorn lacks '{form}' (the form's model stands in, checked by Model_MatchesReference): {e.Message}");
            throw;
        }
        return (program, kvm, unicorn);
    }
}
