namespace Sharpvisor.Vmm.Bench;

/// <summary>
/// Holds <c>/dev/cpu_dma_latency</c> at 0 while open: the kernel's PM QoS
/// request that keeps idle CPUs out of deep sleep (what tuned's
/// latency-performance profile does). On this 2-vCPU VM it takes a
/// cross-CPU wakeup from 25-50 µs to 3-6 µs. Root only.
/// </summary>
internal sealed class LowLatency : IDisposable
{
    private const string Path = "/dev/cpu_dma_latency";
    private readonly FileStream _file;

    private LowLatency(FileStream file) => _file = file;

    /// <summary>The hold, or null with the reason in one line.</summary>
    public static LowLatency? TryHold(out string? why)
    {
        try
        {
            var file = new FileStream(Path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
            file.Write(BitConverter.GetBytes(0)); // an int32 of 0 µs: the request lasts while the file is open
            why = null;
            return new LowLatency(file);
        }
        catch (UnauthorizedAccessException)
        {
            why = $"{Path} needs root (it holds the CPUs out of idle states); run without --low-latency, or as root";
        }
        catch (IOException e)
        {
            why = $"{Path}: {e.Message}";
        }
        return null;
    }

    public void Dispose() => _file.Dispose();
}
