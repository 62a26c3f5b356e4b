using Sharpvisor.Devices.Virtio;
using Sharpvisor.Devices.Virtio.Mmio;
using Sharpvisor.Native;

namespace Sharpvisor.Tests.Devices;

/// <summary>
/// A virtio driver written from the spec, driving a device only through the
/// transport's TryRead/TryWrite and a split ring it lays out in guest RAM:
/// initialization exactly as spec 3.1.1 orders it, descriptors, the available
/// ring, notifications, and the used ring read back. Every constant here is
/// the spec's own.
/// </summary>
internal sealed class TestDriver
{
    // Status bits (spec 2.1), spelled out so the test does not lean on the device's enum.
    public const uint Acknowledge = 1, Driver = 2, DriverOk = 4, FeaturesOk = 8, NeedsReset = 64, Failed = 128;
    public const ushort DescNext = 1, DescWrite = 2, DescIndirect = 4;
    public const ulong Version1 = 1UL << 32, IndirectDesc = 1UL << 28, EventIdx = 1UL << 29;

    private readonly TestHost _host;

    public TestDriver(MmioTransport transport, TestHost host)
    {
        Transport = transport;
        _host = host;
    }

    public MmioTransport Transport { get; }

    public GuestMemory Ram => _host.Ram;

    public TestHost Host => _host;

    public uint Read(uint offset)
    {
        Assert.True(Transport.TryRead(offset, 4, out uint value, out string? fault), fault);
        return value;
    }

    public void Write(uint offset, uint value) =>
        Assert.True(Transport.TryWrite(offset, 4, value, out string? fault), fault);

    public uint Status => Read(0x070);

    /// <summary>Spec 3.1.1 steps 1-6: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK and its check. Returns the accepted features, or null if the device refused them.</summary>
    public ulong? Negotiate(ulong wanted)
    {
        Write(0x070, 0);
        Assert.Equal(0u, Status);
        Write(0x070, Acknowledge);
        Write(0x070, Acknowledge | Driver);
        Write(0x014, 0);
        ulong offered = Read(0x010);
        Write(0x014, 1);
        offered |= (ulong)Read(0x010) << 32;
        ulong accepted = offered & wanted;
        Write(0x024, 0);
        Write(0x020, (uint)accepted);
        Write(0x024, 1);
        Write(0x020, (uint)(accepted >> 32));
        Write(0x070, Acknowledge | Driver | FeaturesOk);
        if ((Status & FeaturesOk) == 0) return null;
        return accepted;
    }

    /// <summary>Spec 3.1.1 step 7 for one queue (spec 4.2.3.2): select, check, size, addresses, ready.</summary>
    public void SetUpQueue(DriverQueue q)
    {
        Write(0x030, (uint)q.Index);
        Assert.Equal(0u, Read(0x044));
        Assert.True(Read(0x034) >= (uint)q.Size);
        Write(0x038, (uint)q.Size);
        Write(0x080, (uint)q.Desc);
        Write(0x084, (uint)(q.Desc >> 32));
        Write(0x090, (uint)q.Avail);
        Write(0x094, (uint)(q.Avail >> 32));
        Write(0x0a0, (uint)q.Used);
        Write(0x0a4, (uint)(q.Used >> 32));
        Write(0x044, 1);
    }

    /// <summary>Step 8: DRIVER_OK.</summary>
    public void DriverReady() => Write(0x070, Acknowledge | Driver | FeaturesOk | DriverOk);

    /// <summary>The whole of 3.1.1 for a one-queue device; asserts the features were accepted.</summary>
    public DriverQueue Initialize(ulong wanted, DriverQueue q)
    {
        Assert.NotNull(Negotiate(wanted));
        SetUpQueue(q);
        DriverReady();
        return q;
    }

    public void Notify(int queue) => Write(0x050, (uint)queue);

    /// <summary>Takes every interrupt: reads InterruptStatus and acknowledges what it showed.</summary>
    public uint TakeInterrupt()
    {
        uint isr = Read(0x060);
        if (isr != 0) Write(0x064, isr);
        return isr;
    }

    /// <summary>
    /// DEVICE_NEEDS_RESET and its configuration-change bit, both visible (the
    /// device sets the status bit first, then InterruptStatus, then raises the
    /// interrupt: a driver acts on the interrupt, so the test waits for the last step it can see).
    /// </summary>
    public bool ResetSignalled => (Status & NeedsReset) != 0 && (Read(0x060) & 2) != 0;

    /// <summary>Waits until the used idx reaches <paramref name="target"/> or the device has signalled that it needs a reset.</summary>
    public void WaitUsedOrReset(DriverQueue q, ushort target) =>
        _host.WaitUntil(() => q.UsedIdx == target || ResetSignalled, $"used idx {target} or NEEDS_RESET");

    /// <summary>Waits until the used idx reaches <paramref name="target"/> with InterruptStatus bit 0 set, or a reset is signalled.</summary>
    public void WaitUsedInterruptOrReset(DriverQueue q, ushort target) =>
        _host.WaitUntil(() => (q.UsedIdx == target && (Read(0x060) & 1) != 0) || ResetSignalled, $"used idx {target} with its interrupt, or NEEDS_RESET");
}

/// <summary>A queue as the driver lays it out: the three parts and the driver's available idx.</summary>
internal sealed class DriverQueue(GuestMemory ram, int index, int size, ulong desc, ulong avail, ulong used)
{
    public int Index { get; } = index;
    public int Size { get; } = size;
    public ulong Desc { get; } = desc;
    public ulong Avail { get; } = avail;
    public ulong Used { get; } = used;

    /// <summary>The driver's next available idx (what it has published).</summary>
    public ushort AvailIdx { get; private set; }

    public void SetDescriptor(int i, ulong addr, uint len, ushort flags, ushort next) =>
        SetDescriptorAt(Desc + (ulong)i * 16, addr, len, flags, next);

    public void SetDescriptorAt(ulong at, ulong addr, uint len, ushort flags, ushort next)
    {
        Assert.True(ram.TryWrite64(at, addr));
        Assert.True(ram.TryWrite32(at + 8, len));
        Assert.True(ram.TryWrite16(at + 12, flags));
        Assert.True(ram.TryWrite16(at + 14, next));
    }

    /// <summary>Puts <paramref name="head"/> in the next available slot and publishes it (release: the entry before the idx).</summary>
    public void Offer(ushort head)
    {
        Assert.True(ram.TryWrite16(Avail + 4 + (ulong)(AvailIdx % Size) * 2, head));
        AvailIdx++;
        Assert.True(ram.TryWrite16(Avail + 2, AvailIdx));
    }

    /// <summary>Publishes an available idx without entries (the "idx jumped" malformation).</summary>
    public void ForceAvailIdx(ushort idx)
    {
        AvailIdx = idx;
        Assert.True(ram.TryWrite16(Avail + 2, idx));
    }

    public void SetAvailFlags(ushort flags) => Assert.True(ram.TryWrite16(Avail, flags));

    public void SetUsedEvent(ushort value) => Assert.True(ram.TryWrite16(Avail + 4 + (ulong)Size * 2, value));

    public ushort AvailEvent { get { Assert.True(ram.TryRead16(Used + 4 + (ulong)Size * 8, out ushort v)); return v; } }

    public ushort UsedIdx { get { Assert.True(ram.TryRead16(Used + 2, out ushort v)); return v; } }

    public (uint Id, uint Len) UsedEntry(ushort slot)
    {
        ulong at = Used + 4 + (ulong)(slot % Size) * 8;
        Assert.True(ram.TryRead32(at, out uint id));
        Assert.True(ram.TryRead32(at + 4, out uint len));
        return (id, len);
    }

    /// <summary>A layout at <paramref name="baseAddress"/>: descriptors, then the available ring, then the used ring, each page-aligned.</summary>
    public static DriverQueue At(GuestMemory ram, int index, int size, ulong baseAddress) =>
        new(ram, index, size, baseAddress, baseAddress + 0x1000, baseAddress + 0x2000);
}
