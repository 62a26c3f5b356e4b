using System.Globalization;
using System.Text;
using OxyPlot;
using OxyPlot.Axes;
using OxyPlot.Legends;
using OxyPlot.Series;

namespace Sharpvisor.Vmm.Bench;

/// <summary>One panel of a latency plot: its title, the floor (dashed) and the rows drawn against it.</summary>
internal sealed record LatencyPanel(string Title, BenchRow Floor, IReadOnlyList<BenchRow> Rows);

/// <summary>
/// <c>--plot FILE.svg</c> of the latency benchmarks: small multiples, one
/// panel per comparison of a few curves (percentile against latency on a log
/// axis), each around its floor. Drawn by OxyPlot.Core's managed SVG
/// exporter (no native library, so the AOT binary stays one file), one plot
/// model per panel, and composed here into one SVG document.
/// </summary>
internal static class LatencyPlot
{
    private static readonly double[] Steps =
        [.. Enumerable.Range(0, 100).Select(i => (double)i), 99.5, 99.9, 99.99, 100];

    // The floor is grey and dashed in every panel; the rows against it take
    // the colours in order, so a panel's few curves read apart at a glance.
    private static readonly OxyColor FloorColour = OxyColor.FromRgb(0x55, 0x55, 0x55);
    private static readonly OxyColor[] Palette =
    [
        OxyColor.FromRgb(0x1f, 0x77, 0xb4), OxyColor.FromRgb(0xd6, 0x27, 0x28),
        OxyColor.FromRgb(0x2c, 0xa0, 0x2c), OxyColor.FromRgb(0x94, 0x67, 0xbd),
    ];

    private const int Columns = 2;
    private const double PanelWidth = 600, PanelHeight = 330, TitleHeight = 36;

    /// <param name="title">The document's title line.</param>
    public static string Svg(string title, IReadOnlyList<LatencyPanel> panels)
    {
        int lines = (panels.Count + Columns - 1) / Columns;
        double width = Columns * PanelWidth, height = TitleHeight + lines * PanelHeight;

        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture,
            $"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>{'\n'}<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">{'\n'}""");
        svg.Append(CultureInfo.InvariantCulture,
            $"""<rect width="{width}" height="{height}" fill="white"/>{'\n'}<text x="{width / 2}" y="24" text-anchor="middle" font-family="Segoe UI, sans-serif" font-size="16" font-weight="bold">{Escape(title)}</text>{'\n'}""");
        for (int i = 0; i < panels.Count; i++)
        {
            double x = i % Columns * PanelWidth, y = TitleHeight + i / Columns * PanelHeight;
            string panel = Export(Panel(panels[i]));
            svg.Append(CultureInfo.InvariantCulture, $"""<g transform="translate({x},{y})">{'\n'}""")
               .Append(Unique(WithoutDeclaration(panel), $"p{i}"))
               .Append("</g>\n");
        }
        return svg.Append("</svg>\n").ToString();
    }

    private static string Export(PlotModel model)
    {
        var exporter = new SvgExporter
        {
            Width = PanelWidth, Height = PanelHeight, IsDocument = false,
            // librsvg and some browsers ignore dominant-baseline: without this
            // every text sits half a line above where it was measured.
            UseVerticalTextAlignmentWorkaround = true,
            TextMeasurer = new WideTextMeasurer(),
        };
        using var stream = new MemoryStream();
        exporter.Export(model, stream);
        return Encoding.UTF8.GetString(stream.ToArray()).TrimStart('\uFEFF'); // the writer starts with a byte-order mark
    }

    private static PlotModel Panel(LatencyPanel panel)
    {
        (BenchRow floor, IReadOnlyList<BenchRow> rows) = (panel.Floor, panel.Rows);
        var model = new PlotModel
        {
            Title = panel.Title,
            TitleFontSize = 14,
            Padding = new OxyThickness(8, 8, 16, 8),
            DefaultFont = "Arial, Helvetica, sans-serif",
        };
        // Up to the 99.9th percentile: beyond it lie a few scheduler time
        // slices, which would squeeze the distribution into the left edge.
        double high = Math.Max(floor.Histogram.GetValueAtPercentile(99.9), rows.Select(r => r.Histogram.GetValueAtPercentile(99.9)).DefaultIfEmpty(0).Max());
        double low = Math.Min(floor.Histogram.GetValueAtPercentile(0), rows.Select(r => r.Histogram.GetValueAtPercentile(0)).DefaultIfEmpty(long.MaxValue).Min());
        model.Axes.Add(new LogarithmicAxis
        {
            Position = AxisPosition.Bottom, Title = "latency (µs), to the 99.9th percentile",
            AxisTitleDistance = 6,
            Minimum = Math.Max(0.001, low / 1000.0 / 1.1), Maximum = Math.Max(0.002, high / 1000.0 * 1.1),
            MajorGridlineStyle = LineStyle.Solid, MinorGridlineStyle = LineStyle.Dot,
        });
        model.Axes.Add(new LinearAxis
        {
            Position = AxisPosition.Left, Title = "percentile", Minimum = 0, Maximum = 100,
            MajorGridlineStyle = LineStyle.Solid,
        });
        // Bottom right is where a distribution curve never goes (long
        // latencies at low percentiles), so the legend covers nothing there.
        model.Legends.Add(new Legend
        {
            LegendPosition = LegendPosition.RightBottom, LegendPlacement = LegendPlacement.Inside,
            LegendOrientation = LegendOrientation.Vertical, LegendFontSize = 11,
            LegendBackground = OxyColor.FromAColor(220, OxyColors.White), LegendBorder = OxyColors.LightGray,
        });
        model.Series.Add(Curve(floor, FloorColour, LineStyle.Dash));
        for (int i = 0; i < rows.Count; i++)
            model.Series.Add(Curve(rows[i], Palette[i % Palette.Length], LineStyle.Solid));
        return model;
    }

    private static LineSeries Curve(BenchRow row, OxyColor colour, LineStyle style)
    {
        // The title is the row's name as the table and --json spell it, so
        // a curve is found by the same words.
        var line = new LineSeries
        {
            Title = row.Name,
            Color = colour, LineStyle = style, StrokeThickness = 1.6,
        };
        foreach (double p in Steps)
            line.Points.Add(new DataPoint(Math.Max(0.001, row.Histogram.GetValueAtPercentile(p) / 1000.0), p));
        return line;
    }

    /// <summary>
    /// Each exported panel numbers its clip paths from 1; in one document the
    /// ids must differ, or every panel would clip to the first panel's paths.
    /// </summary>
    private static string Unique(string panel, string prefix) =>
        panel.Replace("id=\"clipPath", $"id=\"{prefix}clipPath", StringComparison.Ordinal)
             .Replace("url(#clipPath", $"url(#{prefix}clipPath", StringComparison.Ordinal);

    /// <summary>
    /// OxyPlot's managed exporter measures text with its PDF metrics, which
    /// come out narrower than any font a viewer draws the SVG in (by 1.5x for
    /// DejaVu Sans, most Linux desktops' default), so legend entries ran past
    /// their box and were clipped. Measured this wide, the box holds them in
    /// DejaVu Sans and leaves some air with Arial.
    /// </summary>
    private sealed class WideTextMeasurer : RenderContextBase
    {
        private const double Widening = 1.6;
        private readonly PdfRenderContext _metrics = new(PanelWidth, PanelHeight, OxyColors.White);

        public override OxySize MeasureText(string text, string fontFamily = null!, double fontSize = 10, double fontWeight = 500)
        {
            OxySize size = _metrics.MeasureText(text, fontFamily, fontSize, fontWeight);
            return new OxySize(size.Width * Widening, size.Height);
        }

        public override void DrawText(ScreenPoint p, string text, OxyColor fill, string fontFamily = null!, double fontSize = 10, double fontWeight = 500,
            double rotation = 0, HorizontalAlignment halign = HorizontalAlignment.Left, VerticalAlignment valign = VerticalAlignment.Top, OxySize? maxSize = null)
        {
        }

        // It only measures: the exporter draws through its own context.
        public override int ClipCount => 0;
        public override void PopClip() { }
        public override void PushClip(OxyRect clippingRectangle) { }
        public override void DrawLine(IList<ScreenPoint> points, OxyColor stroke, double thickness, EdgeRenderingMode edgeRenderingMode, double[] dashArray = null!, LineJoin lineJoin = LineJoin.Miter) { }
        public override void DrawPolygon(IList<ScreenPoint> points, OxyColor fill, OxyColor stroke, double thickness, EdgeRenderingMode edgeRenderingMode, double[] dashArray = null!, LineJoin lineJoin = LineJoin.Miter) { }
    }

    /// <summary>The exporter starts even a fragment with an XML declaration, which may only open a document.</summary>
    private static string WithoutDeclaration(string panel) =>
        panel.StartsWith("<?xml", StringComparison.Ordinal) ? panel[(panel.IndexOf("?>", StringComparison.Ordinal) + 2)..].TrimStart() : panel;

    private static string Escape(string text) =>
        text.Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal).Replace(">", "&gt;", StringComparison.Ordinal);
}
