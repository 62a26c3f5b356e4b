using Sharpvisor.Devices.Virtio.Queues;
using Sharpvisor.Native;

namespace Sharpvisor.Devices.Virtio;

/// <summary>
/// A virtio device model, independent of the transport: its identity, its
/// features, its configuration space and how it serves one validated chain.
/// <see cref="Mmio.MmioTransport"/> owns it and calls it.
/// </summary>
/// <remarks>
/// Threads: <see cref="Serve"/> runs on the queue's own thread, one chain at
/// a time per queue (queues of one device may run at once); the configuration
/// accessors and <see cref="Reset"/> run on a vCPU thread, and Reset only while
/// no queue thread is serving. Serve must not throw for anything the guest
/// does: a request the device cannot accept is a <see cref="ServeResult.Malformed"/>.
/// </remarks>
public abstract class VirtioDevice : IDisposable
{
    private Mmio.MmioTransport? _transport;

    /// <summary>The virtio device ID (spec 5): 2 block, 3 console, 4 entropy.</summary>
    public abstract uint DeviceId { get; }

    /// <summary>Short name for the device's label, e.g. "blk" for "virtio-blk0".</summary>
    public abstract string Kind { get; }

    public abstract int QueueCount { get; }

    /// <summary>The device type's own features (the common ones come from <see cref="CommonFeatures"/>).</summary>
    public abstract IReadOnlyList<FeatureBit> OwnFeatures { get; }

    /// <summary>Every feature bit offered: the common ones and the device's own.</summary>
    public ulong OfferedFeatures => FeatureBit.MaskOf(CommonFeatures.All) | FeatureBit.MaskOf(OwnFeatures);

    /// <summary>The device's label ("virtio-blk0"), once the transport has it; for report lines.</summary>
    protected string Name => _transport?.Name ?? $"virtio-{Kind}";

    /// <summary>The VM, once attached to a transport.</summary>
    protected IDeviceHost? Host => _transport?.Host;

    /// <summary>
    /// Reads <paramref name="size"/> (1, 2 or 4) bytes of configuration space
    /// at <paramref name="offset"/>, little-endian; bytes past the space read
    /// as 0. The default reads <see cref="ConfigSpace"/>.
    /// </summary>
    public virtual uint ReadConfig(uint offset, int size)
    {
        ReadOnlySpan<byte> config = ConfigSpace;
        uint value = 0;
        for (int i = 0; i < size; i++)
        {
            ulong at = (ulong)offset + (ulong)i;
            if (at < (ulong)config.Length) value |= (uint)config[(int)at] << (8 * i);
        }
        return value;
    }

    /// <summary>A configuration space write; the default ignores it (every field here is read-only).</summary>
    public virtual void WriteConfig(uint offset, int size, uint value) { }

    /// <summary>The configuration space as bytes, for the default <see cref="ReadConfig"/>.</summary>
    protected virtual ReadOnlySpan<byte> ConfigSpace => [];

    /// <summary>
    /// Serves one chain from queue <paramref name="queue"/>, with the
    /// features <paramref name="negotiated"/>. It writes only the chain's
    /// writable bytes, from the first on, and returns how many.
    /// </summary>
    public abstract ServeResult Serve(int queue, DescriptorChain chain, ulong negotiated);

    /// <summary>
    /// True if queue <paramref name="queue"/> exists with the features
    /// <paramref name="negotiated"/> (a console's control queues need
    /// MULTIPORT, spec 5.3.2); a queue that does not reads QueueNumMax 0.
    /// </summary>
    public virtual bool QueueExists(int queue, ulong negotiated) => true;

    /// <summary>
    /// Called on queue <paramref name="queue"/>'s thread after each round of
    /// serving, once its used entries are published and the interrupt raised:
    /// what the driver can now see. Nothing by default.
    /// </summary>
    public virtual void Served(int queue) { }

    /// <summary>Starts what the device runs besides its queue threads (a console's input reader); with the transport's threads.</summary>
    public virtual void Start() { }

    /// <summary>The device's own state back to its initial values (the transport's reset).</summary>
    public virtual void Reset() { }

    /// <summary>True while the device itself is a source of future interrupts (a console with stdin open).</summary>
    public virtual bool HoldsInterruptSource => false;

    /// <summary>An extra eventfd queue <paramref name="queue"/>'s thread also waits on (input arriving for a receive queue); none by default.</summary>
    public virtual EventFd? WakeSource(int queue) => null;

    /// <summary>
    /// Tells the driver the configuration changed: ConfigGeneration moves on,
    /// InterruptStatus bit 1 is set and the interrupt raised.
    /// </summary>
    protected void NotifyConfigChanged() => _transport?.ConfigChanged();

    internal void Bind(Mmio.MmioTransport transport)
    {
        if (_transport != null) throw new InvalidOperationException($"{Name} already has a transport");
        _transport = transport;
    }

    public virtual void Dispose() => GC.SuppressFinalize(this);
}
