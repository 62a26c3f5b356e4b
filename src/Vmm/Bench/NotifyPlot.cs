namespace Sharpvisor.Vmm.Bench;

/// <summary><c>bench notify --plot</c>: one panel per floor, with the rows measured against it (<see cref="LatencyPlot"/>).</summary>
internal static class NotifyPlot
{
    /// <summary>What each panel compares, keyed by the floor the panel is built around.</summary>
    private static readonly Dictionary<string, string> PanelTitles = new()
    {
        ["raw one-way, read"] = "one-way to a reader blocked in read(2)",
        ["raw one-way, epoll_wait"] = "one-way to a reader in epoll_wait",
        ["raw one-way, busy-poll"] = "one-way to a busy-polling reader",
        ["raw round trip"] = "round trip: notify, irq, halt",
        ["bare eventfd write"] = "vCPU cost of one notify",
        ["host clock bracket"] = "the clock bracket alone",
    };

    public static string Svg(IReadOnlyList<BenchRow> rows, string mode) =>
        LatencyPlot.Svg($"sharpvisor bench notify ({mode} mode): percentile against latency, each floor dashed",
            [.. rows.Where(r => r.Group == "floor")
                .Select(f => new LatencyPanel(PanelTitles.GetValueOrDefault(f.Name, f.Name), f, [.. rows.Where(r => r.Floor == f.Name)]))]);
}
