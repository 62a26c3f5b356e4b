using Sharpvisor.Devices.Virtio;
using Sharpvisor.Devices.Virtio.Queues;
using Sharpvisor.Native;

namespace Sharpvisor.Devices.Entropy;

/// <summary>
/// virtio-rng (device ID 4, spec 5.4): one request queue whose buffers are
/// all device-writable; each is filled from getrandom(2), straight into guest
/// RAM. A device-readable buffer is malformed (spec 5.4.6.1: the driver
/// gives only writable ones).
/// </summary>
public sealed class EntropyDevice : VirtioDevice
{
    public override uint DeviceId => 4;

    public override string Kind => "rng";

    public override int QueueCount => 1;

    public override IReadOnlyList<FeatureBit> OwnFeatures => [];

    public override unsafe ServeResult Serve(int queue, DescriptorChain chain, ulong negotiated)
    {
        if (chain.ReadableCount != 0)
            return ServeResult.Malformed($"{chain.ReadableCount} device-readable buffer(s) in an entropy request, which the device only writes");
        uint total = chain.WritableLength;
        foreach (IoVector v in chain.Vectors(writable: true, 0, total))
        {
            if (!SystemRandom.TryFill(v.Base, v.Length, out Errno e))
            {
                // The kernel refused (it never does once seeded): hand back
                // no bytes rather than bytes that may not be random. Some may
                // have been written, so the VM still hears of all of them.
                Host?.Report($"{Name}: getrandom failed: {e.Describe()}");
                foreach (BufferSegment s in chain.Writable)
                    if (s.Length != 0) Host?.CodeWritten(s.Address, s.Length);
                return ServeResult.Completed(0);
            }
        }
        return ServeResult.Completed(total);
    }
}
