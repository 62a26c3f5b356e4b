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

/// <summary>A disk image in the temporary directory, filled with seeded random bytes; deleted on Dispose.</summary>
internal sealed class TempDisk : IDisposable
{
    public TempDisk(int bytes, int seed = 1)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"sharpvisor-disk-{Environment.ProcessId}-{Guid.NewGuid():N}.img");
        Initial = new byte[bytes];
        new Random(seed).NextBytes(Initial);
        File.WriteAllBytes(Path, Initial);
    }

    public string Path { get; }

    public byte[] Initial { get; }

    /// <summary>
    /// The file's bytes as the kernel has them, read with plain open(2) and
    /// read(2): .NET's File APIs take a shared flock of their own, which the
    /// device's exclusive lock rightly refuses.
    /// </summary>
    public byte[] ReadBack() => ReadFile(Path);

    public static unsafe byte[] ReadFile(string path)
    {
        int fd = Interop.Open(path, Interop.O_RDONLY | Interop.O_CLOEXEC, 0);
        Assert.True(fd >= 0, $"open {path}: {Interop.LastErrno}");
        using var handle = new SafeFdHandle(fd, ownsHandle: true);
        var bytes = new List<byte>();
        byte[] buffer = new byte[65536];
        while (true)
        {
            nint n;
            fixed (byte* b = buffer) n = Interop.Read(handle, b, (nuint)buffer.Length);
            Assert.True(n >= 0, $"read {path}: {Interop.LastErrno}");
            if (n == 0) return [.. bytes];
            bytes.AddRange(buffer.AsSpan(0, (int)n).ToArray());
        }
    }

    public void Dispose()
    {
        try { File.Delete(Path); } catch (IOException) { }
    }
}
