using System.Buffers.Binary;
using System.Diagnostics;

namespace Sharpvisor.Tests.Devices;

/// <summary>One buffer of a request as the test lays it out.</summary>
internal readonly record struct Buf(ulong Address, uint Length, bool Writable);

/// <summary>Request helpers over a <see cref="DriverQueue"/>: chains written into the descriptor table or an indirect table.</summary>
internal static class Requests
{
    /// <summary>Writes <paramref name="bufs"/> as a chain in descriptors first, first + 1, ...; returns the head.</summary>
    public static ushort Direct(DriverQueue q, int first, params Buf[] bufs)
    {
        for (int i = 0; i < bufs.Length; i++)
        {
            bool last = i == bufs.Length - 1;
            q.SetDescriptor(first + i, bufs[i].Address, bufs[i].Length,
                (ushort)((bufs[i].Writable ? TestDriver.DescWrite : 0) | (last ? 0 : TestDriver.DescNext)),
                (ushort)(last ? 0 : first + i + 1));
        }
        return (ushort)first;
    }

    /// <summary>Writes <paramref name="bufs"/> as an indirect table at <paramref name="table"/> named by descriptor <paramref name="slot"/>; returns the head.</summary>
    public static ushort Indirect(DriverQueue q, int slot, ulong table, params Buf[] bufs)
    {
        for (int i = 0; i < bufs.Length; i++)
        {
            bool last = i == bufs.Length - 1;
            q.SetDescriptorAt(table + (ulong)i * 16, bufs[i].Address, bufs[i].Length,
                (ushort)((bufs[i].Writable ? TestDriver.DescWrite : 0) | (last ? 0 : TestDriver.DescNext)),
                (ushort)(last ? 0 : i + 1));
        }
        q.SetDescriptor(slot, table, (uint)(bufs.Length * 16), TestDriver.DescIndirect, 0);
        return (ushort)slot;
    }

    /// <summary>Offers the chain, rings the doorbell and waits for its used entry; asserts the device did not ask for a reset.</summary>
    public static (uint Id, uint Len) Run(TestDriver d, DriverQueue q, ushort head)
    {
        ushort slot = q.UsedIdx;
        q.SetUsedEvent(slot); // with EVENT_IDX: interrupt once the used idx passes slot (ignored without it)
        q.Offer(head);
        d.Notify(q.Index);
        d.WaitUsedInterruptOrReset(q, (ushort)(slot + 1));
        Assert.True((d.Status & TestDriver.NeedsReset) is 0, string.Join("\n", d.Host.Reports));
        Assert.Equal(1u, d.TakeInterrupt() & 1); // used buffers
        return q.UsedEntry(slot);
    }

    /// <summary>
    /// Waits for the used idx without an interrupt to wake on (a test of
    /// interrupt suppression): spins on guest memory, as a driver polling the
    /// ring would, bounded by <see cref="TestHost.Bound"/>.
    /// </summary>
    public static void SpinUntilUsed(DriverQueue q, ushort target)
    {
        var clock = Stopwatch.StartNew();
        var spin = new SpinWait();
        while (q.UsedIdx != target)
        {
            Assert.True(clock.Elapsed < TestHost.Bound, $"used idx stayed {q.UsedIdx}, expected {target}");
            spin.SpinOnce();
        }
    }

    /// <summary>Spins until the transport holds no request (its interrupt decision is made), bounded like every wait here.</summary>
    public static void SpinUntilIdle(Sharpvisor.Devices.Virtio.Mmio.MmioTransport t)
    {
        var clock = Stopwatch.StartNew();
        var spin = new SpinWait();
        while (t.Busy)
        {
            Assert.True(clock.Elapsed < TestHost.Bound, "the device stayed busy");
            spin.SpinOnce();
        }
    }

    public static void WriteHeader(Sharpvisor.Native.GuestMemory ram, ulong at, uint type, ulong sector)
    {
        Span<byte> h = stackalloc byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(h, type);
        BinaryPrimitives.WriteUInt32LittleEndian(h[4..], 0);
        BinaryPrimitives.WriteUInt64LittleEndian(h[8..], sector);
        Assert.True(ram.TryGetSpan(at, 16, out Span<byte> dst));
        h.CopyTo(dst);
    }

    public static byte[] ReadRam(Sharpvisor.Native.GuestMemory ram, ulong at, int length)
    {
        Assert.True(ram.TryGetSpan(at, length, out Span<byte> s));
        return s.ToArray();
    }

    public static void WriteRam(Sharpvisor.Native.GuestMemory ram, ulong at, ReadOnlySpan<byte> bytes)
    {
        Assert.True(ram.TryGetSpan(at, bytes.Length, out Span<byte> s));
        bytes.CopyTo(s);
    }
}
