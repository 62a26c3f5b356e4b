using Sharpvisor.Devices.Virtio;
using Sharpvisor.Devices.Virtio.Queues;
using Sharpvisor.Native;

namespace Sharpvisor.Devices.Console;

/// <summary>
/// virtio-console (device ID 3, spec 5.3) on the VM's stdin and stdout, with
/// one port. Port 0's receiveq gets stdin's bytes as they arrive; its
/// transmitq's bytes go to stdout, each buffer whole between the guest's
/// other console writes. With VIRTIO_CONSOLE_F_MULTIPORT the control queues
/// announce port 0 as a console, open, and, once stdin has reached its end
/// and the guest has every byte of it, closed (PORT_OPEN 0): how a guest
/// learns that there is no more input. Without MULTIPORT the input just stops.
/// </summary>
/// <remarks>
/// <para>The handshake (spec 5.3.6.2): the driver sends DEVICE_READY; the
/// device adds port 0 (DEVICE_ADD); the driver sends PORT_READY; the device
/// nominates it a console (CONSOLE_PORT) and opens its end (PORT_OPEN 1).
/// Messages to the driver wait in an outbox until the control receiveq has a
/// buffer; its thread is woken by the outbox as the receiveq's is by input.</para>
/// <para>Ordering: PORT_OPEN 0 is posted only from <see cref="Served"/> of the
/// receiveq (or after PORT_READY), when the used entries of every byte taken
/// are published, so a driver that sees the close has already been given
/// all the input.</para>
/// <para>Shapes: a device-readable buffer in a receive queue, a
/// device-writable one in a transmit queue, or a control message shorter
/// than 8 bytes is a malformed chain: the device needs a reset.</para>
/// </remarks>
public sealed class ConsoleDevice : VirtioDevice
{
    private readonly ConsoleInput _input;
    private readonly byte[] _config = new byte[ConsoleFeatures.ConfigSize];
    private readonly Lock _lock = new();
    private readonly Queue<ConsoleControl> _outbox = new(); // under _lock
    private readonly EventFd _outboxReady = EventFd.Create(EventFdFlags.NonBlocking);
    private readonly byte[] _message = new byte[ConsoleControl.Size]; // the control transmitq thread's

    // Under _lock: the port's life as the driver has been told it.
    private bool _added;
    private bool _portReady;
    private bool _closeSent;
    private long _published; // input bytes whose used entries are published
    private bool _outputFailed;

    /// <param name="input">The descriptor the console reads (stdin); not disposed by the device.</param>
    public ConsoleDevice(SafeFdHandle input)
    {
        _input = new ConsoleInput(input);
        _config[ConsoleFeatures.ConfigMaxPorts] = (byte)ConsoleFeatures.Ports;
    }

    public override uint DeviceId => 3;

    public override string Kind => "console";

    public override int QueueCount => 4;

    public override IReadOnlyList<FeatureBit> OwnFeatures => ConsoleFeatures.Offered;

    protected override ReadOnlySpan<byte> ConfigSpace => _config;

    public override bool QueueExists(int queue, ulong negotiated) =>
        queue <= ConsoleFeatures.TransmitQueue || (negotiated & ConsoleFeatures.MultiPort.Mask) != 0;

    /// <summary>Input may still come, or the guest has yet to be given or told some: a source of interrupts to come.</summary>
    public override bool HoldsInterruptSource
    {
        get
        {
            if (!_input.Ended || _input.Buffered != 0) return true;
            lock (_lock)
                return _published != _input.Taken || _outbox.Count != 0 || (_portReady && !_closeSent);
        }
    }

    public override EventFd? WakeSource(int queue) => queue switch
    {
        ConsoleFeatures.ReceiveQueue => _input.Arrived,
        ConsoleFeatures.ControlReceiveQueue => _outboxReady,
        _ => null,
    };

    public override void Start() => _input.Start($"{Name}-in", line => Host?.Report(line));

    public override ServeResult Serve(int queue, DescriptorChain chain, ulong negotiated) => queue switch
    {
        ConsoleFeatures.ReceiveQueue => Receive(chain),
        ConsoleFeatures.TransmitQueue => Transmit(chain),
        ConsoleFeatures.ControlReceiveQueue => SendControl(chain),
        ConsoleFeatures.ControlTransmitQueue => ReceiveControl(chain),
        _ => ServeResult.Malformed($"queue {queue} does not exist"),
    };

    private ServeResult Receive(DescriptorChain chain)
    {
        if (chain.ReadableCount != 0)
            return ServeResult.Malformed($"{chain.ReadableCount} device-readable buffer(s) in the receiveq, which the device only writes");
        if (chain.WritableLength == 0) return ServeResult.Completed(0);
        uint n = _input.TakeInto(chain);
        // Nothing to give yet: the chain waits in the ring for input.
        return n == 0 ? ServeResult.Deferred : ServeResult.Completed(n);
    }

    private unsafe ServeResult Transmit(DescriptorChain chain)
    {
        if (chain.Count != chain.ReadableCount) // by count: an empty writable buffer is as wrong as a full one
            return ServeResult.Malformed($"{chain.Count - chain.ReadableCount} device-writable buffer(s) in the transmitq, which the device only reads");
        foreach (IoVector v in chain.Vectors(writable: false, 0, chain.ReadableLength))
        {
            // SAFETY: the vector lies in guest RAM (the chain walk checked every
            // buffer against it) and RAM outlives the device.
            var bytes = new ReadOnlySpan<byte>(v.Base, (int)v.Length);
            if (Volatile.Read(ref _outputFailed) || Host == null || Host.WriteConsole(bytes, out string? error)) continue;
            // The guest cannot help it: say so once and drop what follows.
            Volatile.Write(ref _outputFailed, true);
            Host.Report($"{Name}: writing the console's output failed: {error}; its output is dropped from here");
        }
        return ServeResult.Completed(0);
    }

    /// <summary>The control receiveq: the next message for the driver, if there is one.</summary>
    private ServeResult SendControl(DescriptorChain chain)
    {
        if (chain.ReadableCount != 0)
            return ServeResult.Malformed($"{chain.ReadableCount} device-readable buffer(s) in the control receiveq, which the device only writes");
        if (chain.WritableLength < ConsoleControl.Size)
            return ServeResult.Malformed($"a control receive buffer of {chain.WritableLength} bytes, less than a message's {ConsoleControl.Size}");
        ConsoleControl message;
        lock (_lock)
            if (!_outbox.TryDequeue(out message)) return ServeResult.Deferred;
        Span<byte> bytes = stackalloc byte[ConsoleControl.Size];
        message.WriteTo(bytes);
        chain.WriteToWritable(0, bytes);
        return ServeResult.Completed(ConsoleControl.Size);
    }

    /// <summary>The control transmitq: a message from the driver.</summary>
    private ServeResult ReceiveControl(DescriptorChain chain)
    {
        if (chain.Count != chain.ReadableCount)
            return ServeResult.Malformed($"{chain.Count - chain.ReadableCount} device-writable buffer(s) in the control transmitq, which the device only reads");
        if (chain.ReadableLength < ConsoleControl.Size)
            return ServeResult.Malformed($"a control message of {chain.ReadableLength} bytes, less than {ConsoleControl.Size}");
        chain.CopyFromReadable(0, _message);
        ConsoleControl m = ConsoleControl.ReadFrom(_message);
        lock (_lock)
        {
            switch (m.Event)
            {
                case ConsoleEvent.DeviceReady when m.Value == 1 && !_added:
                    _added = true;
                    Post(new ConsoleControl(0, ConsoleEvent.DeviceAdd, 0));
                    break;
                case ConsoleEvent.PortReady when m.Port == 0 && m.Value == 1 && _added && !_portReady:
                    _portReady = true;
                    Post(new ConsoleControl(0, ConsoleEvent.ConsolePort, 1));
                    Post(new ConsoleControl(0, ConsoleEvent.PortOpen, 1));
                    CloseIfDone();
                    break;
                // The driver's PORT_OPEN (its end open or closed) changes
                // nothing here: stdout takes bytes either way. A failed
                // DEVICE_READY or PORT_READY, or any other event, is the
                // driver's to handle; the port just stays as it is.
                default:
                    break;
            }
        }
        return ServeResult.Completed(0);
    }

    /// <summary>The receiveq's entries of this round are published: the driver has every byte taken so far.</summary>
    public override void Served(int queue)
    {
        if (queue != ConsoleFeatures.ReceiveQueue) return;
        lock (_lock)
        {
            _published = _input.Taken;
            CloseIfDone();
        }
    }

    /// <summary>PORT_OPEN 0 once stdin has ended and the driver has all of it (under _lock).</summary>
    private void CloseIfDone()
    {
        if (!_portReady || _closeSent || !_input.Ended || _input.Buffered != 0 || _published != _input.Taken) return;
        _closeSent = true;
        Post(new ConsoleControl(0, ConsoleEvent.PortOpen, 0));
    }

    private void Post(ConsoleControl message)
    {
        _outbox.Enqueue(message);
        _outboxReady.TrySignal();
    }

    /// <summary>A reset forgets the port (a new driver starts the handshake again); input read but not taken stays for it.</summary>
    public override void Reset()
    {
        lock (_lock)
        {
            _outbox.Clear();
            _added = _portReady = _closeSent = false;
            _published = _input.Taken;
        }
    }

    public override void Dispose()
    {
        _input.Dispose();
        _outboxReady.Dispose();
        base.Dispose();
    }
}
