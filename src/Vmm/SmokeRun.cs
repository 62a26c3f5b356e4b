using System.Diagnostics;
using Sharpvisor.Native;

namespace Sharpvisor.Vmm;

/// <summary>The native layer's smoke run: real eventfds, a real grace period per update.</summary>
internal static class SmokeRun
{
    internal static int Run(int notifications, TextWriter output)
    {
        const int values = 4;
        using var qsbr = new Qsbr();
        using var map = new EventfdMap(qsbr);
        var eventFds = new EventFd[values];
        for (int i = 0; i < values; i++) eventFds[i] = EventFd.Create();

        // Values 1 and 2 are attached from the start; 3 and 4 come and go while the vCPU runs.
        map.Add(1, eventFds[0].Handle);
        map.Add(2, eventFds[1].Handle);

        long hits = 0, misses = 0;
        var sw = Stopwatch.StartNew();
        var vcpu = new Thread(() =>
        {
            using QsbrThread self = qsbr.Register("vcpu0");
            for (int i = 0; i < notifications; i++)
            {
                if (map.TrySignal((uint)(i % values) + 1)) hits++; else misses++;
                self.QuiescentState(); // a block boundary
            }
        }) { Name = "vcpu0" };
        vcpu.Start();
        int updates = 0;
        while (vcpu.IsAlive)
        {
            map.Add(3, eventFds[2].Handle);
            map.Add(4, eventFds[3].Handle);
            map.Remove(3);
            map.Remove(4);
            updates += 4;
        }
        vcpu.Join();
        sw.Stop();

        ulong delivered = 0;
        for (int i = 0; i < values; i++)
        {
            eventFds[i].TryRead(out ulong count);
            output.WriteLine($"value 0x{i + 1:x}: eventfd count {count}");
            delivered += count;
            eventFds[i].Dispose();
        }
        output.WriteLine($"{notifications} notifications in {sw.Elapsed.TotalMilliseconds:F1} ms: {hits} hits, {misses} misses, {updates} map updates, {qsbr.GracePeriods} grace periods");
        bool ok = delivered == (ulong)hits && hits + misses == notifications;
        output.WriteLine(ok ? "smoke: ok (every hit reached its eventfd)" : $"smoke: FAILED ({delivered} delivered for {hits} hits)");
        return ok ? 0 : 1;
    }
}
