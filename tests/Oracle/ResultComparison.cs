using System.Text;

namespace Sharpvisor.Tests.Oracle;

/// <summary>Compares two runs of one snippet program vector by vector and says exactly what differs.</summary>
internal static class ResultComparison
{
    private const int MaxReported = 4;

    /// <summary>
    /// Null when the runs agree. Otherwise a message naming the form, each
    /// differing vector with its inputs, and every register, flag and memory
    /// dword that differs with both values.
    /// </summary>
    /// <param name="maskUndefinedFlags">
    /// Skip the flags the manuals leave undefined for the vector. Off when two
    /// of our own engines are compared: they share one flags implementation and
    /// must agree even where the architecture does not care. Undefined register
    /// results are skipped either way.
    /// </param>
    /// <param name="masked">
    /// The oracle's known error on this form (<see cref="OracleGaps.Unicorn"/>):
    /// its flags and registers are not compared, and the message says so.
    /// </param>
    public static string? Compare(SnippetProgram program, string nameA, VectorResult[] a, string nameB, VectorResult[] b, bool maskUndefinedFlags, UnicornGap? masked = null)
    {
        var failures = new List<string>();
        for (int i = 0; i < program.Vectors.Length; i++)
        {
            string? diff = CompareVector(program, i, nameA, a[i], nameB, b[i], maskUndefinedFlags, masked);
            if (diff != null) failures.Add(diff);
        }
        if (failures.Count == 0) return null;

        var sb = new StringBuilder();
        sb.Append($"'{program.Form.Name}': {failures.Count} of {program.Vectors.Length} vectors differ between {nameA} and {nameB}");
        if (program.Form.UndefinedFlags != 0 && maskUndefinedFlags)
            sb.Append($" (undefined, not compared: {SnippetProgram.FlagNames(program.Form.UndefinedFlags)})");
        if (masked != null)
            sb.Append($" (Unicorn's known error, not compared: {Describe(masked)})");
        foreach (string f in failures.Take(MaxReported)) sb.Append('\n').Append(f);
        if (failures.Count > MaxReported) sb.Append($"\n... and {failures.Count - MaxReported} more vectors");
        return sb.ToString();
    }

    private static string? CompareVector(SnippetProgram program, int i, string nameA, VectorResult a, string nameB, VectorResult b, bool maskUndefinedFlags, UnicornGap? masked)
    {
        Undefined undefined = program.Form.Undefined(program.Vectors[i]);
        int skipRegisters = undefined.Registers | (masked?.Registers ?? 0);
        var lines = new List<string>();
        for (int g = 0; g < 8; g++)
        {
            if ((skipRegisters & (1 << g)) != 0) continue;
            if (a.Regs[g] != b.Regs[g])
                lines.Add($"  {X86Regs.Names[g]}: {nameA} {a.Regs[g]:x8}, {nameB} {b.Regs[g]:x8}");
        }

        uint mask = (maskUndefinedFlags ? ~undefined.Flags : ~0u) & ~(masked?.Flags ?? 0);
        uint flagDiff = (a.Eflags ^ b.Eflags) & mask;
        foreach ((uint bit, string name) in SnippetProgram.FlagBits)
            if ((flagDiff & bit) != 0)
                lines.Add($"  {name}: {nameA} {Bit(a.Eflags, bit)}, {nameB} {Bit(b.Eflags, bit)}");
        uint otherBits = flagDiff & ~SnippetProgram.FlagBits.Aggregate(0u, (m, f) => m | f.Bit);
        if (otherBits != 0)
            lines.Add($"  EFLAGS bits {otherBits:x8}: {nameA} {a.Eflags:x8}, {nameB} {b.Eflags:x8}");

        int k = 0;
        foreach (Window w in program.Form.Windows)
            for (int d = 0; d < w.Dwords; d++, k++)
                if (a.Mem[k] != b.Mem[k])
                    lines.Add($"  mem 0x{w.Address + 4 * d:x}: {nameA} {a.Mem[k]:x8}, {nameB} {b.Mem[k]:x8}");

        if (lines.Count == 0) return null;
        string alsoUndefined = maskUndefinedFlags && (undefined.Flags & ~program.Form.UndefinedFlags) != 0
            ? $" (for these inputs also undefined: {SnippetProgram.FlagNames(undefined.Flags & ~program.Form.UndefinedFlags)})"
            : "";
        return $"vector {i}{alsoUndefined}\n  inputs: {program.DescribeInputs(i)}\n{string.Join('\n', lines)}";
    }

    /// <summary>"SF PF, EBX" and the like: what a gap leaves uncompared.</summary>
    public static string Describe(UnicornGap gap)
    {
        IEnumerable<string> registers = Enumerable.Range(0, 8).Where(g => (gap.Registers & (1 << g)) != 0).Select(g => X86Regs.Names[g]);
        return string.Join(", ", new[] { gap.Flags != 0 ? SnippetProgram.FlagNames(gap.Flags) : "", string.Join(' ', registers) }.Where(p => p.Length > 0));
    }

    private static int Bit(uint flags, uint bit) => (flags & bit) != 0 ? 1 : 0;
}
