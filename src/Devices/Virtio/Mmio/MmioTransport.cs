using Sharpvisor.Devices.Virtio.Queues;
using Sharpvisor.Native;

namespace Sharpvisor.Devices.Virtio.Mmio;

/// <summary>
/// A virtio device behind the MMIO transport, register layout version 2
/// (spec 4.2): the register file the guest's loads and stores reach, the
/// device status and feature negotiation (spec 2.1, 2.2, 3.1), and one host
/// thread per queue. It owns the device and disposes it.
/// </summary>
/// <remarks>
/// <para>Threads: <see cref="TryRead"/> and <see cref="TryWrite"/> run on vCPU
/// threads, serialized by one lock (a guest racing its own register
/// accesses gets some order of them, never torn state). The queue threads
/// never take that lock: they see the status, the negotiated features and
/// InterruptStatus through atomics, and the queue through its worker's gate,
/// which a reset takes to wait for them.</para>
/// <para>A reset (Status = 0) or a queue's reset (QueueReady = 0,
/// QueueReset = 1) is complete when the store returns: every affected queue
/// thread has finished its current chain and let go of the queue.</para>
/// </remarks>
public sealed class MmioTransport : IDisposable, IQueueOwner
{
    public const uint WindowSize = MmioRegisters.WindowSize;

    private const uint InterruptUsedBuffer = 1;
    private const uint InterruptConfigChange = 2;

    private const uint ServingMask = (uint)(DeviceStatus.DriverOk | DeviceStatus.FeaturesOk | DeviceStatus.DeviceNeedsReset | DeviceStatus.Failed);
    private const uint ServingValue = (uint)(DeviceStatus.DriverOk | DeviceStatus.FeaturesOk);

    private readonly VirtioDevice _device;
    private readonly IDeviceHost _host;
    private readonly QueueWorker[] _workers;
    private readonly QueueRegisters[] _queues;
    private readonly Lock _lock = new();

    // The register file (under _lock).
    private uint _deviceFeaturesSel;
    private uint _driverFeaturesSel;
    private ulong _driverFeatures;
    private uint _queueSel;

    // Shared with the queue threads (atomics).
    private uint _status;
    private uint _interruptStatus;
    private uint _configGeneration;
    private ulong _negotiated;
    private int _inFlight;
    private int _disposed;

    public MmioTransport(VirtioDevice device, IDeviceHost host, string name)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(host);
        _device = device;
        _host = host;
        Name = name;
        device.Bind(this);
        _queues = new QueueRegisters[device.QueueCount];
        _workers = new QueueWorker[device.QueueCount];
        for (int i = 0; i < _queues.Length; i++)
        {
            _queues[i] = new QueueRegisters();
            _workers[i] = new QueueWorker(this, i);
        }
    }

    /// <summary>The device's label, e.g. "virtio-blk0": the prefix of its report lines and threads.</summary>
    public string Name { get; }

    public IDeviceHost Host => _host;

    public VirtioDevice Device => _device;

    public int QueueCount => _queues.Length;

    /// <summary>Queue <paramref name="queue"/>'s doorbell: the eventfd its thread blocks on, for the VM's notify map.</summary>
    public EventFd Doorbell(int queue) => _workers[queue].Doorbell;

    /// <summary>The host thread's name for a queue (for logs and tests).</summary>
    public string ThreadName(int queue) => _workers[queue].ThreadName;

    /// <summary>The kernel id of queue <paramref name="queue"/>'s thread, 0 until it runs.</summary>
    public int ThreadId(int queue) => _workers[queue].ThreadId;

    /// <summary>
    /// A request in flight, a notification not yet taken, or a device that is
    /// a source of interrupts by itself: the VM's deadlock check counts the
    /// device as an interrupt source.
    /// </summary>
    public bool Busy
    {
        get
        {
            if (Volatile.Read(ref _inFlight) > 0 || _device.HoldsInterruptSource) return true;
            if (Volatile.Read(ref _disposed) != 0) return false;
            foreach (QueueWorker w in _workers)
                if (w.DoorbellPending) return true;
            return Volatile.Read(ref _inFlight) > 0;
        }
    }

    public DeviceStatus Status => (DeviceStatus)Volatile.Read(ref _status);

    public uint InterruptStatus => Volatile.Read(ref _interruptStatus);

    bool IQueueOwner.Serving => (Volatile.Read(ref _status) & ServingMask) == ServingValue;

    ulong IQueueOwner.Negotiated => Volatile.Read(ref _negotiated);

    /// <summary>Starts the queue threads.</summary>
    public void Start()
    {
        foreach (QueueWorker w in _workers) w.Start();
        _device.Start();
    }

    /// <summary>
    /// A guest load of <paramref name="size"/> bytes at <paramref name="offset"/>
    /// in the window. False with a one-line reason for a malformed access (a
    /// guest fault); never throws for guest input.
    /// </summary>
    public bool TryRead(uint offset, int size, out uint value, out string? fault)
    {
        value = 0;
        string? bad = MmioRegisters.CheckAccess(offset, size);
        if (bad != null)
        {
            fault = $"{Name}: read: {bad}";
            return false;
        }
        fault = null;
        lock (_lock)
        {
            if (offset >= MmioRegisters.ConfigOffset)
            {
                value = _device.ReadConfig(offset - MmioRegisters.ConfigOffset, size);
                return true;
            }
            if ((MmioRegisters.AccessAt(offset) & RegisterAccess.Read) == 0) return true; // reserved or write-only: 0
            value = ReadRegister((MmioRegister)offset);
        }
        return true;
    }

    /// <summary>
    /// A guest store. A QueueNotify store signals the queue's doorbell here
    /// (the VM normally takes 0x50 through its notify map instead).
    /// </summary>
    public bool TryWrite(uint offset, int size, uint value, out string? fault)
    {
        string? bad = MmioRegisters.CheckAccess(offset, size);
        if (bad != null)
        {
            fault = $"{Name}: write: {bad}";
            return false;
        }
        fault = null;
        lock (_lock)
        {
            if (offset >= MmioRegisters.ConfigOffset)
            {
                _device.WriteConfig(offset - MmioRegisters.ConfigOffset, size, value);
                return true;
            }
            if ((MmioRegisters.AccessAt(offset) & RegisterAccess.Write) == 0) return true; // reserved or read-only: ignored
            WriteRegister((MmioRegister)offset, value);
        }
        return true;
    }

    private QueueRegisters? Selected =>
        _queueSel < (uint)_queues.Length && _device.QueueExists((int)_queueSel, Volatile.Read(ref _negotiated)) ? _queues[_queueSel] : null;

    private uint ReadRegister(MmioRegister register)
    {
        ulong offered = _device.OfferedFeatures;
        return register switch
        {
            MmioRegister.MagicValue => MmioRegisters.MagicValue,
            MmioRegister.Version => MmioRegisters.Version,
            MmioRegister.DeviceId => _device.DeviceId,
            MmioRegister.VendorId => MmioRegisters.VendorId,
            MmioRegister.DeviceFeatures => _deviceFeaturesSel switch
            {
                0 => (uint)offered,
                1 => (uint)(offered >> 32),
                _ => 0,
            },
            MmioRegister.QueueNumMax => Selected != null ? (uint)SplitRing.MaxSize : 0,
            MmioRegister.QueueReady => Selected?.Ready == true ? 1u : 0u,
            MmioRegister.InterruptStatus => Volatile.Read(ref _interruptStatus),
            MmioRegister.Status => Volatile.Read(ref _status),
            // No shared memory regions (spec 4.2.2: length and base all ones).
            MmioRegister.ShmLenLow or MmioRegister.ShmLenHigh or MmioRegister.ShmBaseLow or MmioRegister.ShmBaseHigh => 0xffff_ffff,
            // A queue reset is complete before the store that asks for it returns.
            MmioRegister.QueueReset => 0,
            MmioRegister.ConfigGeneration => Volatile.Read(ref _configGeneration),
            _ => 0,
        };
    }

    private void WriteRegister(MmioRegister register, uint value)
    {
        QueueRegisters? q = Selected;
        // A ready queue's layout is fixed until it is reset (spec 4.2.3.2 has
        // the driver set it up while QueueReady reads 0).
        QueueRegisters? idle = q != null && !q.Ready ? q : null;
        switch (register)
        {
            case MmioRegister.DeviceFeaturesSel: _deviceFeaturesSel = value; break;
            case MmioRegister.DriverFeaturesSel: _driverFeaturesSel = value; break;
            case MmioRegister.DriverFeatures:
                // Fixed once FEATURES_OK is accepted.
                if ((Volatile.Read(ref _status) & (uint)DeviceStatus.FeaturesOk) != 0) break;
                if (_driverFeaturesSel == 0) _driverFeatures = (_driverFeatures & 0xffff_ffff_0000_0000) | value;
                else if (_driverFeaturesSel == 1) _driverFeatures = (_driverFeatures & 0xffff_ffff) | ((ulong)value << 32);
                break;
            case MmioRegister.QueueSel: _queueSel = value; break;
            case MmioRegister.QueueNum: if (idle != null) idle.Num = value; break;
            case MmioRegister.QueueDescLow: if (idle != null) idle.Desc = (idle.Desc & 0xffff_ffff_0000_0000) | value; break;
            case MmioRegister.QueueDescHigh: if (idle != null) idle.Desc = (idle.Desc & 0xffff_ffff) | ((ulong)value << 32); break;
            case MmioRegister.QueueDriverLow: if (idle != null) idle.Driver = (idle.Driver & 0xffff_ffff_0000_0000) | value; break;
            case MmioRegister.QueueDriverHigh: if (idle != null) idle.Driver = (idle.Driver & 0xffff_ffff) | ((ulong)value << 32); break;
            case MmioRegister.QueueDeviceLow: if (idle != null) idle.Device = (idle.Device & 0xffff_ffff_0000_0000) | value; break;
            case MmioRegister.QueueDeviceHigh: if (idle != null) idle.Device = (idle.Device & 0xffff_ffff) | ((ulong)value << 32); break;
            case MmioRegister.QueueReady: if (q != null) SetQueueReady((int)_queueSel, value != 0); break;
            case MmioRegister.QueueReset:
                if (q != null && value == 1)
                {
                    _workers[_queueSel].Detach();
                    q.Clear();
                }
                break;
            case MmioRegister.QueueNotify:
                if (value < (uint)_workers.Length) _workers[value].Kick();
                break;
            case MmioRegister.InterruptAck: Interlocked.And(ref _interruptStatus, ~value); break;
            case MmioRegister.Status: WriteStatus(value); break;
            case MmioRegister.ShmSel: break; // no regions: every selector reads all ones
        }
    }

    private void SetQueueReady(int index, bool ready)
    {
        QueueRegisters q = _queues[index];
        if (!ready)
        {
            _workers[index].Detach();
            q.Ready = false;
            return;
        }
        if (q.Ready) return;
        q.Ready = true;
        var layout = new QueueLayout((int)Math.Min(q.Num, int.MaxValue), q.Desc, q.Driver, q.Device);
        string? bad = layout.Check(_host.Ram);
        if (bad != null)
        {
            // QueueReady reads back 1 (the last value written), but the queue
            // is never served: the device needs a reset.
            NeedsReset($"queue {index}: {bad}");
            return;
        }
        ulong negotiated = Volatile.Read(ref _negotiated);
        _workers[index].Attach(new SplitQueue(_host.Ram, layout,
            eventIdx: (negotiated & CommonFeatures.EventIdx.Mask) != 0,
            indirect: (negotiated & CommonFeatures.IndirectDesc.Mask) != 0));
        _workers[index].Kick();
    }

    private void WriteStatus(uint value)
    {
        if (value == 0)
        {
            Reset();
            return;
        }
        uint old = Volatile.Read(ref _status);
        uint next = value & ~(uint)DeviceStatus.DeviceNeedsReset; // the device's bit, not the driver's
        if ((value & (uint)DeviceStatus.FeaturesOk) != 0 && (old & (uint)DeviceStatus.FeaturesOk) == 0)
        {
            // FEATURES_OK is accepted only for a subset of what was offered
            // that includes VERSION_1 (spec 3.1.1 step 6, 6.1).
            ulong offered = _device.OfferedFeatures;
            bool acceptable = (_driverFeatures & ~offered) == 0 && (_driverFeatures & CommonFeatures.Version1.Mask) != 0;
            if (acceptable) Volatile.Write(ref _negotiated, _driverFeatures);
            else next &= ~(uint)DeviceStatus.FeaturesOk;
        }
        // The queue threads may set NEEDS_RESET meanwhile: keep theirs.
        uint seen = old;
        while (true)
        {
            uint merged = next | (seen & (uint)DeviceStatus.DeviceNeedsReset);
            uint was = Interlocked.CompareExchange(ref _status, merged, seen);
            if (was == seen) break;
            seen = was;
        }
        if ((next & (uint)DeviceStatus.DriverOk) != 0 && (old & (uint)DeviceStatus.DriverOk) == 0)
        {
            // The driver may have made buffers available before DRIVER_OK,
            // which the device must not consume until now: look at every ready queue.
            for (int i = 0; i < _workers.Length; i++)
                if (_queues[i].Ready) _workers[i].Kick();
        }
    }

    /// <summary>The device reset (spec 2.4): complete when this returns (see the remarks).</summary>
    private void Reset()
    {
        foreach (QueueWorker w in _workers) w.Detach();
        foreach (QueueRegisters q in _queues) q.Clear();
        _deviceFeaturesSel = 0;
        _driverFeaturesSel = 0;
        _driverFeatures = 0;
        _queueSel = 0;
        Volatile.Write(ref _negotiated, 0);
        _device.Reset();
        Volatile.Write(ref _status, 0);
        Volatile.Write(ref _interruptStatus, 0);
    }

    void IQueueOwner.EnterBusy() => Interlocked.Increment(ref _inFlight);

    void IQueueOwner.LeaveBusy() => Interlocked.Decrement(ref _inFlight);

    void IQueueOwner.UsedBuffers()
    {
        Interlocked.Or(ref _interruptStatus, InterruptUsedBuffer);
        _host.RaiseInterrupt();
    }

    /// <summary>Enters DEVICE_NEEDS_RESET (spec 2.1.1): reported once, until a reset.</summary>
    public void NeedsReset(string detail)
    {
        uint before = Interlocked.Or(ref _status, (uint)DeviceStatus.DeviceNeedsReset);
        if ((before & (uint)DeviceStatus.DeviceNeedsReset) != 0) return;
        // One line, whatever the detail holds (an exception's message may not be).
        _host.Report($"{Name}: {detail.ReplaceLineEndings(" ")}; the device needs a reset");
        Interlocked.Or(ref _interruptStatus, InterruptConfigChange);
        _host.RaiseInterrupt();
    }

    internal void ConfigChanged()
    {
        Interlocked.Increment(ref _configGeneration);
        Interlocked.Or(ref _interruptStatus, InterruptConfigChange);
        _host.RaiseInterrupt();
    }

    /// <summary>Stops and joins the queue threads, frees their eventfds and disposes the device.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        foreach (QueueWorker w in _workers) w.Dispose();
        _device.Dispose();
    }

    /// <summary>One queue's registers as the driver set them (under the transport's lock).</summary>
    private sealed class QueueRegisters
    {
        public uint Num = SplitRing.MaxSize;
        public ulong Desc;
        public ulong Driver;
        public ulong Device;
        public bool Ready;

        public void Clear()
        {
            Num = SplitRing.MaxSize;
            Desc = Driver = Device = 0;
            Ready = false;
        }
    }
}
