using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Native;
using Sharpvisor.Devices.Virtio;
using Sharpvisor.Vmm.Devices;
using Sharpvisor.Vmm.Hypercalls;
using Sharpvisor.Vmm.Interrupts;
using Sharpvisor.Vmm.Notify;
using Sharpvisor.Vmm.Loader;

namespace Sharpvisor.Vmm;

// Journey: machine
/// <summary>
/// One VM: guest RAM holding the image, the execution engine, the RCU domain
/// and the notification map, the interrupt controller, the hypercall host,
/// the devices and the vCPUs, set up as the guest ABI says (docs/guest-abi.md). vCPU 0
/// runs on the thread that calls <see cref="Run"/>, each other vCPU on a
/// thread of its own, until the first of them stops.
/// </summary>
/// <remarks>
/// A hypervisor with no hardware help has to be the CPU as well: KVM would
/// run guest instructions on the real processor, and here the engine
/// translates them. Everything else has the classic shape: a block of host
/// memory is the guest's physical RAM, a vCPU is a register file plus a
/// host thread that runs it, and the guest reaches the host through
/// hypercalls, which the host serves without trusting a single argument.
/// </remarks>
public sealed class Machine : IDisposable
{
    /// <summary>Each vCPU after the first starts this far below the previous one's stack.</summary>
    public const uint StackStride = 64 * 1024;

    private readonly Lock _gate = new();
    private bool _finished;
    private VcpuExit? _first;
    private readonly Vcpu[] _vcpus = [];

    /// <param name="devices">The virtio devices, in window order with their names; the machine owns them from here.</param>
    /// <param name="stderr">Where devices report a broken ring (one line each).</param>
    public Machine(MachineConfig config, GuestImage image, Stream console,
        IReadOnlyList<(VirtioDevice Device, string Name)>? devices = null, TextWriter? stderr = null)
    {
        if (config.Vcpus is < 1 or > MachineConfig.MaxVcpus)
            throw new ArgumentOutOfRangeException(nameof(config), $"a VM has 1 to {MachineConfig.MaxVcpus} vCPUs, not {config.Vcpus}");
        bool devicesOwned = false;
        Memory = GuestMemory.Allocate(config.MemorySize);
        try
        {
            ImageLoader.Load(image, Memory);
            Qsbr = new Qsbr();
            // A grace period held up by a busy or preempted vCPU only delays an
            // update; the launcher's stderr is for one line about the stop.
            Qsbr.Stalled += _ => { };
            Engine = new ExecutionEngine(Memory, config.Engine, Qsbr);
            Notifier = new Notifier(Qsbr, config.Vcpus);
            Interrupts = new InterruptController(config.Vcpus);
            var output = new ConsoleOutput(console);
            Host = new HypercallHost(Memory, output, Notifier, Interrupts);
            if (devices is { Count: > 0 })
            {
                devicesOwned = true; // the bus disposes them, also when it fails
                Host.Devices = Devices = new DeviceBus(devices, Memory, Engine, Notifier, Interrupts, output, stderr ?? TextWriter.Null);
            }
            _vcpus = new Vcpu[config.Vcpus];
            for (int i = 0; i < _vcpus.Length; i++)
            {
                _vcpus[i] = new Vcpu(Engine, i, Host);
                Reset(_vcpus[i], image.Entry, config.MemorySize);
            }
        }
        catch
        {
            // The devices are the machine's from the call on: the bus disposes
            // them once it is being made, and this does before that.
            if (!devicesOwned && devices != null)
                foreach ((VirtioDevice device, _) in devices) device.Dispose();
            Dispose();
            throw;
        }
    }

    public GuestMemory Memory { get; }
    public Qsbr Qsbr { get; } = null!;
    public ExecutionEngine Engine { get; } = null!;
    public Notifier Notifier { get; } = null!;
    public InterruptController Interrupts { get; } = null!;
    public HypercallHost Host { get; } = null!;

    /// <summary>The virtio devices, or null when the VM has none.</summary>
    public DeviceBus? Devices { get; }

    /// <summary>The vCPUs, by index.</summary>
    public IReadOnlyList<Vcpu> Vcpus => _vcpus;

    /// <summary>vCPU 0, the boot vCPU.</summary>
    public Vcpu Vcpu => _vcpus[0];

    /// <summary>The vCPU whose stop ended the VM; null if the host stopped it (timeout, signal) or it has not stopped.</summary>
    public int? StoppedBy { get; private set; }

    // Journey: reset
    /// <summary>
    /// The entry state of ABI v1: EAX = index, ESP below the top of RAM,
    /// EFLAGS = 0x2. There is no firmware and no boot loader: the host plays
    /// both, and hands over a CPU already in flat 32-bit protected mode, so a
    /// guest's first instruction can be ordinary compiled C.
    /// </summary>
    internal static void Reset(Vcpu vcpu, uint entry, ulong memorySize)
    {
        ref CpuState s = ref vcpu.State;
        s.Reset(); // all GPRs 0
        s.Eip = entry;
        // memorySize is at most 3 GiB, so the top of RAM fits in 32 bits.
        s[Gpr.Esp] = (uint)(memorySize - (ulong)vcpu.Index * StackStride);
        s[Gpr.Eax] = (uint)vcpu.Index;
        s.SetEflags(Eflags.Initial);
    }

    // Journey: launch
    /// <summary>
    /// Runs every vCPU until the first one stops; that stop is the VM's. vCPU 0
    /// runs on this thread. With <paramref name="timeout"/>, a timer stops the
    /// VM with <see cref="StopReason.Timeout"/>: other threads never touch a
    /// running vCPU's registers, they ask it to stop, and it stops at the next
    /// block boundary, where its state is exact. Never throws for anything the guest
    /// or the engine does: an engine exception becomes a
    /// <see cref="StopReason.Error"/> exit, so the caller can still report
    /// registers.
    /// </summary>
    /// <remarks>
    /// The vCPUs share RAM, the engine's block cache and the notification
    /// map; each has its own registers, thread and QSBR registration. The
    /// first stop of any of them, for any reason (a shutdown, a fault, a
    /// deadlock, an error) or a stop from the host, ends the VM: the others
    /// are asked to stop at their next block boundary, the halted ones are
    /// woken through the interrupt controller's stop eventfd, and all threads
    /// are joined before Run returns, so nothing runs guest code afterwards
    /// and the caller can dispose the machine.
    /// </remarks>
    public VcpuExit Run(TimeSpan? timeout = null)
    {
        Timer? timer = null;
        var threads = new List<Thread>();
        try
        {
            Interrupts.Start();
            Devices?.Start();
            if (timeout is TimeSpan limit)
                timer = new Timer(_ => RequestStop(new VcpuExit(StopReason.Timeout,
                    $"--timeout of {limit.TotalSeconds:0.###} s elapsed")), null, limit, Timeout.InfiniteTimeSpan);
            for (int i = 1; i < _vcpus.Length; i++)
            {
                int index = i;
                var thread = new Thread(() => RunVcpu(index)) { Name = $"vcpu{index}", IsBackground = true };
                thread.Start();
                threads.Add(thread);
            }
            RunVcpu(0);
        }
        catch (Exception e)
        {
            // Setting up failed (no thread, no descriptor): stop what started.
            Stopped(new VcpuExit(StopReason.Error, $"starting the vCPUs failed: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}"), null);
        }
        finally
        {
            foreach (Thread t in threads) t.Join();
            timer?.Dispose();
            // From here on a late timer or signal must not reach the vCPUs:
            // they are about to be disposed.
            lock (_gate) _finished = true;
        }
        return _first!;
    }

    private void RunVcpu(int index)
    {
        VcpuExit exit;
        try
        {
            exit = _vcpus[index].Run();
        }
        catch (Exception e)
        {
            exit = new VcpuExit(StopReason.Error, $"the vCPU failed: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
        }
        Stopped(exit, index);
    }

    /// <summary>The first stop wins and becomes every vCPU's; later ones (the others obeying it) change nothing.</summary>
    private void Stopped(VcpuExit exit, int? vcpu)
    {
        lock (_gate)
        {
            if (_first != null || _finished) return;
            _first = exit;
            StoppedBy = vcpu;
            foreach (Vcpu v in _vcpus)
            {
                try
                {
                    v.RequestStop(exit);
                }
                catch (Exception)
                {
                    // The engine promises not to throw here; if it did anyway, an
                    // exception on a timer or signal thread would kill the process
                    // without our one-line report, so the request is dropped.
                }
            }
            Interrupts.Stop(exit); // wakes every halted vCPU, for good
        }
    }

    /// <summary>
    /// Stops the VM with <paramref name="exit"/> as its reason; any thread may
    /// call it (a timer, a signal handler, a test). The first stop wins; one
    /// after the VM has stopped does nothing.
    /// </summary>
    public void RequestStop(VcpuExit exit) => Stopped(exit, null);

    public void Dispose()
    {
        foreach (Vcpu v in _vcpus) v?.Dispose();
        Devices?.Dispose(); // its threads write RAM and ring lines: gone before either is
        Host?.Dispose();
        Notifier?.Dispose();
        Interrupts?.Dispose();
        Engine?.Dispose();
        Qsbr?.Dispose();
        Memory?.Dispose();
    }
}
