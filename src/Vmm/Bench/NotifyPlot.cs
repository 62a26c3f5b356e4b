using OxyPlot;
using OxyPlot.Axes;
using OxyPlot.Legends;
using OxyPlot.Series;

namespace Sharpvisor.Vmm.Bench;

/// <summary>
/// <c>--plot FILE.svg</c>: each measurement's latency distribution as a
/// curve, percentile against latency on a log axis, drawn by OxyPlot.Core's
/// managed SVG exporter (no native library, so the AOT binary stays one file).
/// </summary>
internal static class NotifyPlot
{
    private static readonly double[] Steps =
        [.. Enumerable.Range(0, 100).Select(i => (double)i), 99.5, 99.9, 99.99, 100];

    public static string Svg(IReadOnlyList<BenchRow> rows, string mode)
    {
        var model = new PlotModel { Title = $"sharpvisor bench notify ({mode} mode)" };
        model.Axes.Add(new LogarithmicAxis
        {
            Position = AxisPosition.Bottom, Title = "latency (µs)",
            MajorGridlineStyle = LineStyle.Solid, MinorGridlineStyle = LineStyle.Dot,
        });
        model.Axes.Add(new LinearAxis
        {
            Position = AxisPosition.Left, Title = "percentile", Minimum = 0, Maximum = 100,
            MajorGridlineStyle = LineStyle.Solid,
        });
        model.Legends.Add(new Legend { LegendPosition = LegendPosition.RightTop, LegendPlacement = LegendPlacement.Outside, LegendFontSize = 10 });
        foreach (BenchRow r in rows)
        {
            var line = new LineSeries
            {
                Title = r.Name,
                LineStyle = r.Group == "floor" ? LineStyle.Dash : LineStyle.Solid,
                StrokeThickness = 1.5,
            };
            foreach (double p in Steps)
                line.Points.Add(new DataPoint(Math.Max(0.001, r.Histogram.GetValueAtPercentile(p) / 1000.0), p));
            model.Series.Add(line);
        }
        return SvgExporter.ExportToString(model, 1100, 550, isDocument: true);
    }
}
