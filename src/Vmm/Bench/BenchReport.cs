using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using HdrHistogram;

namespace Sharpvisor.Vmm.Bench;

/// <summary>One row of a latency report: a histogram, the floor it is compared with, and the issue's target for that ratio.</summary>
/// <remarks><see cref="Rounds"/> holds the same samples by round, for the paired ratio.</remarks>
internal sealed record BenchRow(string Name, string Group, LongHistogram Histogram, string? Floor, double? Target)
{
    public IReadOnlyList<LongHistogram> Rounds { get; init; } = [Histogram];
}

/// <summary>
/// What the latency benchmarks (<c>bench notify</c>, <c>bench virtio</c>)
/// share: the clock and histograms, the ratio paired by round, and the
/// table and JSON forms of latency rows.
/// </summary>
internal static class BenchReport
{
    public static readonly double[] Percentiles = [50, 90, 99, 99.9];

    /// <summary>Nanoseconds to 60 s, three significant digits.</summary>
    public static LongHistogram NewHistogram() => new(60_000_000_000L, 3);

    public static LongHistogram Merge(IEnumerable<LongHistogram> parts)
    {
        LongHistogram all = NewHistogram();
        foreach (LongHistogram h in parts) all.Add(h);
        return all;
    }

    /// <summary>The monotonic clock in nanoseconds (Stopwatch, CLOCK_MONOTONIC: the same in every process).</summary>
    public static long NowNs() => (long)(Stopwatch.GetTimestamp() * (1_000_000_000.0 / Stopwatch.Frequency));

    public static void SpinFor(long ns, Func<long> now)
    {
        long until = now() + ns;
        while (now() < until) Thread.SpinWait(1);
    }

    public static double P50(LongHistogram h) => h.GetValueAtPercentile(50);

    /// <summary>
    /// A row's p50 against its floor's: the median, over the rounds, of the
    /// ratio of the two p50s taken in the same round (null for a floor). Paired
    /// by round because this machine's speed drifts by more than the targets'
    /// margins from one second to the next, and a row and its floor taken in
    /// the same round share that second; one ratio of the merged p50s would
    /// let a slow second weigh on one side only.
    /// </summary>
    public static double? Ratio(BenchRow row, IReadOnlyList<BenchRow> rows)
    {
        if (rows.FirstOrDefault(r => r.Name == row.Floor) is not BenchRow f) return null;
        var pairs = new List<(double, double)>();
        for (int i = 0; i < Math.Min(row.Rounds.Count, f.Rounds.Count); i++)
            if (row.Rounds[i].TotalCount != 0 && f.Rounds[i].TotalCount != 0)
                pairs.Add((P50(row.Rounds[i]), P50(f.Rounds[i])));
        return MedianRatio(pairs);
    }

    /// <summary>The median of row / floor over pairs taken in the same round (pairs with a floor of 0 left out); null if none.</summary>
    public static double? MedianRatio(IEnumerable<(double Row, double Floor)> pairs)
    {
        List<double> ratios = [.. pairs.Where(p => p.Floor > 0).Select(p => p.Row / p.Floor)];
        if (ratios.Count == 0) return null;
        ratios.Sort();
        int n = ratios.Count;
        return n % 2 == 1 ? ratios[n / 2] : (ratios[n / 2 - 1] + ratios[n / 2]) / 2;
    }

    public static string Us(double ns) => (ns / 1000.0).ToString("0.000", CultureInfo.InvariantCulture);

    public static string Fixed(double x, string format) => x.ToString(format, CultureInfo.InvariantCulture);

    /// <summary>The latency rows as a Markdown table, times in µs, each ratio against its floor and its target (at most).</summary>
    public static void AppendTable(StringBuilder s, IReadOnlyList<BenchRow> rows)
    {
        s.AppendLine("| measurement | group | p50 | p90 | p99 | p99.9 | max | vs | p50 ratio (median of rounds) | target |");
        s.AppendLine("|---|---|---:|---:|---:|---:|---:|---|---:|---|");
        foreach (BenchRow r in rows)
        {
            LongHistogram h = r.Histogram;
            double? ratio = Ratio(r, rows);
            string target = r.Target is double t && ratio is double q ? $"<= {Fixed(t, "0.0")}: {(q <= t ? "met" : "missed")}" : "";
            s.AppendLine(CultureInfo.InvariantCulture,
                $"| {r.Name} | {r.Group} | {string.Join(" | ", Percentiles.Select(p => Us(h.GetValueAtPercentile(p))))} | {Us(h.GetMaxValue())} | {r.Floor ?? ""} | {(ratio is double x ? Fixed(x, "0.00") : "")} | {target} |");
        }
    }

    /// <summary>The latency rows as the JSON array <c>measurements</c>, times in ns.</summary>
    public static void WriteMeasurements(Utf8JsonWriter w, IReadOnlyList<BenchRow> rows)
    {
        w.WriteStartArray("measurements");
        foreach (BenchRow r in rows)
        {
            LongHistogram h = r.Histogram;
            double? ratio = Ratio(r, rows);
            w.WriteStartObject();
            w.WriteString("name", r.Name);
            w.WriteString("group", r.Group);
            w.WriteNumber("count", h.TotalCount);
            w.WriteNumber("p50_ns", h.GetValueAtPercentile(50));
            w.WriteNumber("p90_ns", h.GetValueAtPercentile(90));
            w.WriteNumber("p99_ns", h.GetValueAtPercentile(99));
            w.WriteNumber("p99_9_ns", h.GetValueAtPercentile(99.9));
            w.WriteNumber("max_ns", h.GetMaxValue());
            if (r.Floor is string f) w.WriteString("floor", f); else w.WriteNull("floor");
            WriteNumberOrNull(w, "ratio", ratio is double q ? Math.Round(q, 3) : null);
            WriteNumberOrNull(w, "target", r.Target);
            if (r.Target is double t && ratio is double q2) w.WriteBoolean("met", q2 <= t); else w.WriteNull("met");
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    public static void WriteNumberOrNull(Utf8JsonWriter w, string name, double? value)
    {
        if (value is double v) w.WriteNumber(name, v); else w.WriteNull(name);
    }

    /// <summary>One JSON object, as <paramref name="write"/> fills it, as a string.</summary>
    public static string JsonObject(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            write(w);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }
}
