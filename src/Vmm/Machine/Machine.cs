using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Native;
using Sharpvisor.Vmm.Hypercalls;
using Sharpvisor.Vmm.Loader;

namespace Sharpvisor.Vmm;

// Journey: machine
/// <summary>
/// One VM: guest RAM holding the image, the execution engine, the hypercall
/// host and vCPU 0, set up as guest ABI v1 says (docs/guest-abi.md). It runs
/// the vCPU on the calling thread until the guest stops or the host stops it.
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
    private bool _stopRequested;

    public Machine(MachineConfig config, GuestImage image, Stream console)
    {
        Memory = GuestMemory.Allocate(config.MemorySize);
        try
        {
            ImageLoader.Load(image, Memory);
            Engine = new ExecutionEngine(Memory, config.Engine);
            Host = new HypercallHost(Memory, console);
            Vcpu = new Vcpu(Engine, 0, Host);
            Reset(Vcpu, image.Entry, config.MemorySize);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public GuestMemory Memory { get; }
    public ExecutionEngine Engine { get; } = null!;
    public HypercallHost Host { get; } = null!;
    public Vcpu Vcpu { get; } = null!;

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
    /// Runs vCPU 0 on this thread until it stops. With
    /// <paramref name="timeout"/>, a timer stops it with
    /// <see cref="StopReason.Timeout"/>: other threads never touch a running
    /// vCPU's registers, they ask it to stop, and it stops at the next block
    /// boundary, where its state is exact. Never throws for anything the guest
    /// or the engine does: an engine exception becomes a
    /// <see cref="StopReason.Error"/> exit, so the caller can still report
    /// registers.
    /// </summary>
    public VcpuExit Run(TimeSpan? timeout = null)
    {
        Timer? timer = null;
        if (timeout is TimeSpan limit)
            timer = new Timer(_ => RequestStop(new VcpuExit(StopReason.Timeout,
                $"--timeout of {limit.TotalSeconds:0.###} s elapsed")), null, limit, Timeout.InfiniteTimeSpan);
        VcpuExit exit;
        try
        {
            exit = Vcpu.Run();
        }
        catch (Exception e)
        {
            exit = new VcpuExit(StopReason.Error, $"the vCPU failed: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
        }
        finally
        {
            timer?.Dispose();
            // From here on a late timer or signal must not reach the vCPU: it
            // is about to be disposed.
            lock (_gate) _finished = true;
        }
        return exit;
    }

    /// <summary>
    /// Stops a running vCPU with <paramref name="exit"/> as its reason; any
    /// thread may call it (a timer, a signal handler). The first request wins;
    /// one after the vCPU has stopped does nothing.
    /// </summary>
    public void RequestStop(VcpuExit exit)
    {
        lock (_gate)
        {
            if (_finished || _stopRequested) return;
            _stopRequested = true;
            Host.Wake(); // a vCPU asleep in LHCALL_HALT would not see the request until it woke
            try
            {
                Vcpu.RequestStop(exit);
            }
            catch (Exception)
            {
                // The engine promises not to throw here; if it did anyway, an
                // exception on a timer or signal thread would kill the process
                // without our one-line report, so the request is dropped and
                // the guest runs on (Run's own exit still gets reported).
            }
        }
    }

    public void Dispose()
    {
        Vcpu?.Dispose();
        Host?.Dispose();
        Engine?.Dispose();
        Memory?.Dispose();
    }
}
