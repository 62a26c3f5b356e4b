using System.Buffers.Binary;
using Sharpvisor.Devices.Console;

namespace Sharpvisor.Tests.Devices;

/// <summary>
/// virtio-console (spec 5.3) through the test driver, with a pipe for stdin:
/// the multiport handshake as 5.3.6.2 has it, data both ways, the close
/// after the last byte, the queues that exist only with MULTIPORT, and the
/// shapes the spec forbids.
/// </summary>
[Collection("Devices")]
public sealed class ConsoleDeviceTests
{
    // The spec's numbers (5.3.3, 5.3.6.2), not the device's enum.
    private const ulong MultiPort = 1UL << 1;
    private const ushort DeviceReady = 0, DeviceAdd = 1, PortReady = 3, ConsolePort = 4, PortOpen = 6;

    [Fact]
    public void Handshake_AddsPortZeroAsAnOpenConsole_InTheSpecsOrder()
    {
        using var c = new ConsoleRig(TestDriver.Version1 | MultiPort);
        Assert.Equal(1u, c.Rig.Driver.Read(0x100 + 4)); // max_nr_ports
        c.Send(DeviceReady, 0, 1);
        Assert.Equal((0u, DeviceAdd, (ushort)0), c.NextMessage());
        c.Send(PortReady, 0, 1);
        Assert.Equal((0u, ConsolePort, (ushort)1), c.NextMessage());
        Assert.Equal((0u, PortOpen, (ushort)1), c.NextMessage());
        c.Send(PortOpen, 0, 1); // the driver's answer to CONSOLE_PORT (a MUST of 5.3.6.2.2)
        Assert.True(c.Rig.Transport.Busy); // stdin is open: an interrupt source
    }

    [Fact]
    public void Data_GoesBothWays_AndTheCloseComesAfterTheLastByte()
    {
        using var c = new ConsoleRig(TestDriver.Version1 | MultiPort);
        c.Handshake();
        c.Input("hello, "u8.ToArray());
        Assert.Equal("hello, "u8.ToArray(), c.Receive(64));
        // Bytes written and stdin closed before the driver offers room: the
        // close must wait until all ten are in the receiveq's used ring.
        c.Input("0123456789"u8.ToArray());
        c.CloseInput();
        c.OfferReceive(4);
        c.OfferReceive(4);
        c.OfferReceive(4);
        Assert.Equal((0u, PortOpen, (ushort)0), c.NextMessage());
        Assert.Equal((ushort)4, c.Rx.UsedIdx); // the first receive and these three, all published before the close
        Assert.Equal("0123456789"u8.ToArray(), c.ReceivedSince(1));

        c.Transmit("out"u8.ToArray());
        Assert.Equal("out"u8.ToArray(), c.Rig.Host.ConsoleBytes());
        Requests.SpinUntilIdle(c.Rig.Transport);
        Assert.False(c.Rig.Transport.Busy); // stdin ended and the guest has all of it
    }

    [Fact]
    public void WithoutMultiport_OnlyPortZerosQueuesExist_AndTheInputJustStops()
    {
        using var c = new ConsoleRig(TestDriver.Version1);
        TestDriver d = c.Rig.Driver;
        foreach ((uint queue, uint max) in new[] { (0u, 256u), (1u, 256u), (2u, 0u), (3u, 0u) })
        {
            d.Write(0x030, queue);
            Assert.Equal(max, d.Read(0x034));
        }
        c.Input("abc"u8.ToArray());
        Assert.True(c.Rig.Transport.Busy); // stdin is open: more input may come
        c.CloseInput();
        Assert.Equal("abc"u8.ToArray(), c.Receive(16));
        c.Transmit("xyz"u8.ToArray());
        Assert.Equal("xyz"u8.ToArray(), c.Rig.Host.ConsoleBytes());
        Requests.SpinUntilIdle(c.Rig.Transport); // no close to send: not a source any more
    }

    public static TheoryData<string> Malformed() => ["readable in receiveq", "writable in transmitq", "empty writable in transmitq", "short control message", "short control buffer"];

    [Theory]
    [MemberData(nameof(Malformed))]
    public void AForbiddenShape_NeedsAReset_AndAResetBringsTheDeviceBack(string shape)
    {
        using var c = new ConsoleRig(TestDriver.Version1 | MultiPort);
        TestDriver d = c.Rig.Driver;
        switch (shape)
        {
            case "readable in receiveq": c.Offer(c.Rx, 0x1000, 8, writable: false); break;
            case "writable in transmitq": c.Offer(c.Tx, 0x1000, 8, writable: true); break;
            case "empty writable in transmitq": c.Offer(c.Tx, 0x1000, 0, writable: true); break; // wrong by direction, whatever its length
            case "short control message": c.Offer(c.CtrlTx, 0x1000, 4, writable: false); break;
            case "short control buffer": c.Offer(c.CtrlRx, 0x1000, 4, writable: true); c.Send(DeviceReady, 0, 1, expectServed: false); break;
        }
        c.Rig.Host.WaitUntil(() => d.ResetSignalled, "DEVICE_NEEDS_RESET");
        string line = Assert.Single(c.Rig.Host.Reports);
        Assert.StartsWith("virtio-console0: queue ", line);
        Assert.EndsWith("the device needs a reset", line);

        c.Reinitialize();
        c.Handshake();
        c.Input("back"u8.ToArray());
        Assert.Equal("back"u8.ToArray(), c.Receive(16));
    }

    [Fact]
    public void AFailingOutput_IsReportedOnce_AndTheQueueGoesOn()
    {
        using var c = new ConsoleRig(TestDriver.Version1);
        c.Rig.Host.ConsoleFails = true;
        c.Transmit("one"u8.ToArray());
        c.Transmit("two"u8.ToArray());
        string line = Assert.Single(c.Rig.Host.Reports);
        Assert.Contains("Broken pipe", line);
        Assert.Equal(0u, c.Rig.Driver.Status & TestDriver.NeedsReset);
    }

    /// <summary>A console device on a pipe, its four (or two) queues set up by the test driver, a buffer per descriptor.</summary>
    private sealed class ConsoleRig : IDisposable
    {
        private const ulong QueueBase = 0x10000, BufferBase = 0x80000;
        private const int Size = 8;

        private readonly InputPipe _stdin = new();
        private readonly ulong _features;
        private readonly ushort[] _nextDescriptor = new ushort[4];
        private ushort _messagesSeen;
        private readonly List<(ulong Address, uint Length)> _rxOffered = [];

        public ConsoleRig(ulong features)
        {
            _features = features;
            Rig = new DeviceRig(new ConsoleDevice(_stdin.ReadEnd), "virtio-console0");
            Reinitialize();
        }

        public DeviceRig Rig { get; }
        public DriverQueue Rx { get; private set; } = null!;
        public DriverQueue Tx { get; private set; } = null!;
        public DriverQueue CtrlRx { get; private set; } = null!;
        public DriverQueue CtrlTx { get; private set; } = null!;

        /// <summary>Spec 3.1.1 from a reset: features, the queues, DRIVER_OK; then control receive buffers.</summary>
        public void Reinitialize()
        {
            TestDriver d = Rig.Driver;
            Assert.Equal(_features, d.Negotiate(_features));
            // A driver's rings start zeroed (the old available idx must not come back).
            Assert.True(Rig.Ram.TryGetSpan(QueueBase, 0x10000, out Span<byte> rings));
            rings.Clear();
            Array.Clear(_nextDescriptor);
            _messagesSeen = 0;
            _rxOffered.Clear();
            Rx = DriverQueue.At(Rig.Ram, 0, Size, QueueBase);
            Tx = DriverQueue.At(Rig.Ram, 1, Size, QueueBase + 0x4000);
            CtrlRx = DriverQueue.At(Rig.Ram, 2, Size, QueueBase + 0x8000);
            CtrlTx = DriverQueue.At(Rig.Ram, 3, Size, QueueBase + 0xc000);
            d.SetUpQueue(Rx);
            d.SetUpQueue(Tx);
            if ((_features & MultiPort) != 0)
            {
                d.SetUpQueue(CtrlRx);
                d.SetUpQueue(CtrlTx);
            }
            d.DriverReady();
        }

        /// <summary>DEVICE_READY, DEVICE_ADD, PORT_READY, CONSOLE_PORT, PORT_OPEN 1, as in the first test.</summary>
        public void Handshake()
        {
            Send(DeviceReady, 0, 1);
            Assert.Equal((0u, DeviceAdd, (ushort)0), NextMessage());
            Send(PortReady, 0, 1);
            Assert.Equal((0u, ConsolePort, (ushort)1), NextMessage());
            Assert.Equal((0u, PortOpen, (ushort)1), NextMessage());
        }

        /// <summary>One buffer of <paramref name="length"/> bytes as a one-descriptor chain in queue <paramref name="q"/>; notified; returns its address.</summary>
        public ulong Offer(DriverQueue q, ulong offsetInBuffer, uint length, bool writable)
        {
            ushort desc = (ushort)(_nextDescriptor[q.Index]++ % Size);
            ulong address = BufferBase + (ulong)q.Index * 0x10000 + desc * 0x1000u + offsetInBuffer;
            q.SetDescriptor(desc, address, length, writable ? TestDriver.DescWrite : (ushort)0, 0);
            q.Offer(desc);
            Rig.Driver.Notify(q.Index);
            return address;
        }

        public void Input(byte[] bytes) => _stdin.Write(bytes);

        public void CloseInput() => _stdin.Close();

        public void OfferReceive(uint length) => _rxOffered.Add((Offer(Rx, 0, length, writable: true), length));

        /// <summary>Offers a receive buffer and returns what the device put in it.</summary>
        public byte[] Receive(uint length)
        {
            int slot = _rxOffered.Count;
            OfferReceive(length);
            Rig.Driver.WaitUsedOrReset(Rx, (ushort)(slot + 1));
            Assert.Equal(0u, Rig.Driver.Status & TestDriver.NeedsReset);
            return ReceivedSince(slot);
        }

        /// <summary>The bytes of the receiveq's used entries from slot <paramref name="first"/> on, in order.</summary>
        public byte[] ReceivedSince(int first)
        {
            var bytes = new List<byte>();
            for (int slot = first; slot < Rx.UsedIdx; slot++)
            {
                (uint _, uint len) = Rx.UsedEntry((ushort)slot);
                Assert.True(len <= _rxOffered[slot].Length);
                bytes.AddRange(Requests.ReadRam(Rig.Ram, _rxOffered[slot].Address, (int)len));
            }
            return [.. bytes];
        }

        public void Transmit(byte[] bytes)
        {
            ushort before = Tx.UsedIdx;
            ushort desc = (ushort)(_nextDescriptor[1] % Size);
            ulong address = BufferBase + 0x10000 + desc * 0x1000u;
            Assert.True(Rig.Ram.TryGetSpan(address, bytes.Length, out Span<byte> span));
            bytes.CopyTo(span);
            Offer(Tx, 0, (uint)bytes.Length, writable: false);
            Rig.Driver.WaitUsedOrReset(Tx, (ushort)(before + 1));
            Assert.Equal(0u, Rig.Driver.Status & TestDriver.NeedsReset);
            Assert.Equal(0u, Tx.UsedEntry(before).Len); // the device wrote nothing
        }

        /// <summary>One control message to the device, and (unless told otherwise) its used entry.</summary>
        public void Send(ushort ev, uint port, ushort value, bool expectServed = true)
        {
            ushort before = CtrlTx.UsedIdx;
            ushort desc = (ushort)(_nextDescriptor[3] % Size);
            ulong address = BufferBase + 0x30000 + desc * 0x1000u;
            Assert.True(Rig.Ram.TryGetSpan(address, 8, out Span<byte> m));
            BinaryPrimitives.WriteUInt32LittleEndian(m, port);
            BinaryPrimitives.WriteUInt16LittleEndian(m[4..], ev);
            BinaryPrimitives.WriteUInt16LittleEndian(m[6..], value);
            Offer(CtrlTx, 0, 8, writable: false);
            if (!expectServed) return;
            Rig.Driver.WaitUsedOrReset(CtrlTx, (ushort)(before + 1));
            Assert.Equal(0u, Rig.Driver.Status & TestDriver.NeedsReset);
        }

        /// <summary>Offers a 16-byte control receive buffer and waits for the device's next message in it.</summary>
        public (uint Port, ushort Event, ushort Value) NextMessage()
        {
            ulong address = Offer(CtrlRx, 0, 16, writable: true);
            ushort slot = _messagesSeen++;
            Rig.Driver.WaitUsedOrReset(CtrlRx, (ushort)(slot + 1));
            Assert.Equal(0u, Rig.Driver.Status & TestDriver.NeedsReset);
            (uint _, uint len) = CtrlRx.UsedEntry(slot);
            Assert.Equal(8u, len);
            byte[] m = Requests.ReadRam(Rig.Ram, address, 8);
            return (BinaryPrimitives.ReadUInt32LittleEndian(m), BinaryPrimitives.ReadUInt16LittleEndian(m.AsSpan(4)),
                BinaryPrimitives.ReadUInt16LittleEndian(m.AsSpan(6)));
        }

        public void Dispose()
        {
            Rig.Dispose();
            _stdin.Dispose();
        }
    }
}
