namespace Sharpvisor.Vmm;

/// <summary>
/// The VM's console output (stdout), shared by SV_CONSOLE_WRITE on the vCPU
/// threads and virtio-console's transmitq thread: one lock, so that each
/// write lands whole, and a flush per write, so that output survives any
/// later stop, even a kill.
/// </summary>
public sealed class ConsoleOutput(Stream stream)
{
    private readonly Lock _lock = new();

    /// <exception cref="IOException">The output failed (a closed pipe).</exception>
    public void Write(ReadOnlySpan<byte> bytes)
    {
        lock (_lock)
        {
            stream.Write(bytes);
            stream.Flush();
        }
    }
}
