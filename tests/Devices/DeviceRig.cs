using Sharpvisor.Devices.Block;
using Sharpvisor.Devices.Entropy;
using Sharpvisor.Devices.Virtio;
using Sharpvisor.Devices.Virtio.Mmio;
using Sharpvisor.Native;

namespace Sharpvisor.Tests.Devices;

/// <summary>A device on its transport over guarded guest RAM, with the test driver; disposed device first, RAM last.</summary>
internal sealed class DeviceRig : IDisposable
{
    public const ulong DefaultRamSize = 1 << 20;

    private readonly GuardedRam _ram;

    public DeviceRig(VirtioDevice device, string name, ulong ramSize = DefaultRamSize)
    {
        _ram = new GuardedRam(ramSize);
        Host = new TestHost(_ram.Ram);
        Transport = new MmioTransport(device, Host, name);
        Transport.Start();
        Driver = new TestDriver(Transport, Host);
    }

    public TestHost Host { get; }

    public MmioTransport Transport { get; }

    public TestDriver Driver { get; }

    public GuestMemory Ram => _ram.Ram;

    public static DeviceRig Entropy(ulong ramSize = DefaultRamSize) => new(new EntropyDevice(), "virtio-rng0", ramSize);

    public static DeviceRig Block(TempDisk disk, bool readOnly = false, ulong ramSize = DefaultRamSize)
    {
        BlockDevice? device = BlockDevice.Open(disk.Path, readOnly, out BlockOpenError error, out string? message);
        Assert.True(device is not null, message);
        Assert.Equal(BlockOpenError.None, error);
        return new DeviceRig(device!, "virtio-blk0", ramSize);
    }

    public void Dispose()
    {
        Transport.Dispose();
        _ram.Dispose();
    }
}
