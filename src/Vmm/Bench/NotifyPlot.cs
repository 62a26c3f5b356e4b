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

    // One colour per floor, shared by the rows measured against it: a floor is
    // dashed, its rows solid, then dash-dot and dotted when several share it,
    // so each comparison reads as one colour.
    private static readonly OxyColor[] Palette =
    [
        OxyColor.FromRgb(0x1f, 0x77, 0xb4), OxyColor.FromRgb(0xff, 0x7f, 0x0e), OxyColor.FromRgb(0x2c, 0xa0, 0x2c),
        OxyColor.FromRgb(0xd6, 0x27, 0x28), OxyColor.FromRgb(0x94, 0x67, 0xbd), OxyColor.FromRgb(0x8c, 0x56, 0x4b),
        OxyColor.FromRgb(0xe3, 0x77, 0xc2), OxyColor.FromRgb(0x7f, 0x7f, 0x7f),
    ];

    private static readonly LineStyle[] RowStyles = [LineStyle.Solid, LineStyle.DashDot, LineStyle.Dot, LineStyle.LongDash];

    public static string Svg(IReadOnlyList<BenchRow> rows, string mode)
    {
        var model = new PlotModel
        {
            Title = $"sharpvisor bench notify ({mode} mode)",
            // The managed SVG exporter estimates text widths, on the short
            // side: room to the right keeps the legend's longer names whole.
            Padding = new OxyThickness(10, 24, 110, 10),
        };
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
        model.Legends.Add(new Legend
        {
            LegendPosition = LegendPosition.RightTop, LegendPlacement = LegendPlacement.Outside,
            LegendOrientation = LegendOrientation.Vertical, LegendFontSize = 11,
        });
        var colourOf = new Dictionary<string, OxyColor>();
        var rowsOf = new Dictionary<string, int>();
        foreach (BenchRow r in rows)
        {
            string key = r.Group == "floor" ? r.Name : r.Floor ?? r.Name;
            if (!colourOf.TryGetValue(key, out OxyColor colour))
                colourOf[key] = colour = Palette[colourOf.Count % Palette.Length];
            LineStyle style = LineStyle.Dash;
            if (r.Group != "floor")
            {
                int n = rowsOf.GetValueOrDefault(key);
                rowsOf[key] = n + 1;
                style = RowStyles[n % RowStyles.Length];
            }
            var line = new LineSeries { Title = r.Name, Color = colour, LineStyle = style, StrokeThickness = 1.6 };
            foreach (double p in Steps)
                line.Points.Add(new DataPoint(Math.Max(0.001, r.Histogram.GetValueAtPercentile(p) / 1000.0), p));
            model.Series.Add(line);
        }
        return SvgExporter.ExportToString(model, 1200, 600, isDocument: true);
    }
}
