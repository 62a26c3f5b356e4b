using Sharpvisor.Devices;
using Sharpvisor.Devices.Virtio;
using Sharpvisor.Devices.Virtio.Mmio;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Native;
using Sharpvisor.Vmm.Interrupts;
using Sharpvisor.Vmm.Notify;

namespace Sharpvisor.Vmm.Devices;

// Journey: device-bus
/// <summary>
/// The VM's devices as the guest sees them: a register window each
/// (<see cref="DeviceWindows"/>), an interrupt line each, and a doorbell per
/// queue in the VM's notify map. A vCPU's access to a window arrives here
/// (through the engines' MMIO path) and goes to the device's transport,
/// except the doorbell: a store to QueueNotify is looked up in the RCU map,
/// exactly as an <c>LHCALL_NOTIFY</c> is, and signals the queue's eventfd,
/// on which the queue's own thread sleeps.
/// </summary>
/// <remarks>
/// The lguest idea, whole: the vCPU never does a device's work, it only
/// rings; each virtqueue is served by a thread of its own, woken by the
/// eventfd the notify value maps to. A device raises its interrupt by
/// writing its line's eventfd, which the interrupt controller polls like any
/// <c>--irq</c> line.
/// </remarks>
public sealed class DeviceBus : IDisposable
{
    private readonly MmioTransport[] _transports;
    private readonly EventFd[] _lines;
    private readonly Notifier _notifier;

    /// <param name="devices">The device models, in window order, with their names for messages (<c>virtio-blk0</c>); the bus owns them from here.</param>
    public DeviceBus(IReadOnlyList<(VirtioDevice Device, string Name)> devices, GuestMemory ram, ExecutionEngine engine,
        Notifier notifier, InterruptController interrupts, ConsoleOutput console, TextWriter stderr)
    {
        if (devices.Count > DeviceWindows.Max)
            throw new ArgumentOutOfRangeException(nameof(devices), $"a VM has at most {DeviceWindows.Max} devices");
        _notifier = notifier;
        _transports = new MmioTransport[devices.Count];
        _lines = new EventFd[devices.Count];
        int owned = 0; // devices handed to a transport, which disposes them
        try
        {
            for (int i = 0; i < devices.Count; i++)
            {
                _lines[i] = EventFd.Create(EventFdFlags.NonBlocking);
                var host = new Host(ram, engine, _lines[i], console, stderr);
                MmioTransport t = _transports[i] = new MmioTransport(devices[i].Device, host, devices[i].Name);
                owned = i + 1;
                interrupts.AttachDevice(DeviceWindows.Line(i), _lines[i], () => t.Busy);
                for (int q = 0; q < t.QueueCount; q++)
                    notifier.AttachDoorbell(DeviceWindows.Doorbell(i, q), t.Doorbell(q));
            }
        }
        catch
        {
            for (int j = owned; j < devices.Count; j++) devices[j].Device.Dispose();
            Dispose();
            throw;
        }
    }

    /// <summary>Starts every device's queue threads (before the vCPUs run).</summary>
    public void Start()
    {
        foreach (MmioTransport t in _transports) t.Start();
    }

    /// <summary>The kernel id of device <paramref name="device"/>'s queue <paramref name="queue"/> thread, 0 until it runs.</summary>
    public int QueueThreadId(int device, int queue) => _transports[device].ThreadId(queue);

    /// <summary>True if <paramref name="address"/> is in the device range (a window or a gap between): the bus answers for it.</summary>
    public static bool Claims(uint address) => DeviceWindows.InRange(address);

    /// <summary>
    /// One plain access of a vCPU to the device range. Null when done, else
    /// the fault's line. The doorbell path takes no lock and allocates nothing.
    /// </summary>
    public string? Access(Vcpu vcpu, uint address, int size, bool write, ref uint value)
    {
        uint relative = address - DeviceWindows.Base;
        int index = (int)(relative / DeviceWindows.Size);
        uint offset = relative % DeviceWindows.Size;
        if (index >= _transports.Length)
            return $"no device at 0x{address:x8} (this VM has {_transports.Length} device window{(_transports.Length == 1 ? "" : "s")} from 0x{DeviceWindows.Base:x8})";
        MmioTransport t = _transports[index];
        string? fault;
        if (write && offset == (uint)MmioRegister.QueueNotify && size == 4)
        {
            // A queue index the device does not have rings nothing, as the
            // spec leaves it; a real one goes through the map on this thread.
            if (value < (uint)t.QueueCount)
                _notifier.Signal(DeviceWindows.Doorbell(index, (int)value), vcpu.Index);
            return null;
        }
        if (write)
            return t.TryWrite(offset, size, value, out fault) ? null : fault;
        return t.TryRead(offset, size, out value, out fault) ? null : fault;
    }

    public void Dispose()
    {
        // Threads first (they write guest RAM and the line eventfds), then the eventfds.
        foreach (MmioTransport? t in _transports) t?.Dispose();
        foreach (EventFd? fd in _lines) fd?.Dispose();
    }

    /// <summary>What one device gets from the VM.</summary>
    private sealed class Host(GuestMemory ram, ExecutionEngine engine, EventFd line, ConsoleOutput console, TextWriter stderr) : IDeviceHost
    {
        public GuestMemory Ram => ram;

        // Non-blocking: a full counter (2^64 - 2 raises unread) already says "pending".
        public void RaiseInterrupt() => line.TrySignal();

        public void CodeWritten(ulong address, ulong length) => engine.DropCode(address, length);

        public bool WriteConsole(ReadOnlySpan<byte> bytes, out string? error)
        {
            error = null;
            try
            {
                console.Write(bytes);
                return true;
            }
            catch (IOException e)
            {
                error = e.Message;
                return false;
            }
        }

        public void Report(string message)
        {
            lock (stderr) stderr.WriteLine($"sharpvisor: {message}");
        }
    }
}
