using System.Xml.Linq;
using HdrHistogram;
using Sharpvisor.Vmm.Bench;

namespace Sharpvisor.Tests.Vmm.Bench;

/// <summary>
/// <c>bench notify --plot</c>: small multiples, one panel per floor. The SVG
/// is checked as XML, as a viewer reads it; how it looks is checked by eye.
/// </summary>
public class NotifyPlotTests
{
    private static BenchRow Row(string name, string group, string? floor, long ns)
    {
        LongHistogram h = BenchReport.NewHistogram();
        for (int i = 0; i < 100; i++) h.RecordValue(ns + i * 10);
        return new BenchRow(name, group, h, floor, null);
    }

    private static readonly BenchRow[] Rows =
    [
        Row("raw one-way, read", "floor", null, 3_000),
        Row("raw round trip", "floor", null, 7_000),
        Row("bare eventfd write", "floor", null, 300),
        Row("guest notify -> read", "one-way", "raw one-way, read", 3_200),
        Row("guest notify -> other process, read", "one-way", "raw one-way, read", 4_000),
        Row("guest notify -> irq -> halt", "round trip", "raw round trip", 8_000),
        Row("guest notify, 1 attached", "vcpu cost", "bare eventfd write", 320),
        Row("guest notify, 16 attached", "vcpu cost", "bare eventfd write", 330),
    ];

    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    [Fact]
    public void Svg_IsOneWellFormedDocumentWithOnePanelPerFloor()
    {
        XDocument doc = XDocument.Parse(NotifyPlot.Svg(Rows, "default"));

        Assert.Equal(Svg + "svg", doc.Root!.Name);
        Assert.Equal(3, doc.Root.Elements(Svg + "g").Count(g => g.Elements(Svg + "svg").Any()));
    }

    [Fact]
    public void Svg_EachPanelHoldsItsFloorAndOnlyTheRowsMeasuredAgainstIt()
    {
        XDocument doc = XDocument.Parse(NotifyPlot.Svg(Rows, "default"));

        string[] panels = [.. doc.Root!.Elements(Svg + "g").Select(g => string.Concat(g.Descendants(Svg + "text").Select(t => t.Value + "\n")))];
        Assert.Equal(3, panels.Length);
        Assert.Contains("guest notify -> other process, read", panels[0]);
        Assert.DoesNotContain("halt", panels[0]);
        Assert.Contains("raw round trip", panels[1]);
        Assert.Contains("guest notify -> irq -> halt", panels[1]);
        Assert.Contains("guest notify, 16 attached", panels[2]);
        Assert.DoesNotContain("raw one-way", panels[2]);
    }

    [Fact]
    public void Svg_ClipPathIdsAreUniqueAcrossPanels()
    {
        XDocument doc = XDocument.Parse(NotifyPlot.Svg(Rows, "default"));

        string[] ids = [.. doc.Descendants(Svg + "clipPath").Select(c => (string)c.Attribute("id")!)];
        Assert.NotEmpty(ids);
        Assert.Equal(ids.Length, ids.Distinct().Count());
        foreach (XAttribute use in doc.Descendants().Attributes("clip-path"))
            Assert.Contains(use.Value["url(#".Length..^1], ids);
    }
}
