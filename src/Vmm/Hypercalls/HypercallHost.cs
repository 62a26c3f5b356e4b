using System.Runtime.CompilerServices;
using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Native;
using Sharpvisor.Vmm.Interrupts;
using Sharpvisor.Vmm.Notify;

namespace Sharpvisor.Vmm.Hypercalls;

/// <summary>
/// The host side of <c>int $0x1f</c> and <c>hlt</c> for one VM, shared by
/// its vCPUs. Every call runs on the calling vCPU's thread, in line from
/// translated code. Nothing the guest passes is trusted: a bad argument stops
/// the guest with a reason (a fault), never the host with an exception. Only
/// EAX is ever written.
/// </summary>
public sealed class HypercallHost : IVcpuHost, IDisposable
{
    private readonly GuestMemory _memory;
    private readonly ConsoleOutput _console;
    private readonly Qsbr? _ownQsbr; // standalone hosts (tests) make their own notifier and controller

    /// <param name="memory">Guest RAM, for the buffers hypercalls name.</param>
    /// <param name="console">Where SV_CONSOLE_WRITE's bytes go (stdout), written through unchanged.</param>
    /// <param name="notifier">The VM's value-to-eventfd map and its counts (LHCALL_NOTIFY).</param>
    /// <param name="interrupts">The VM's pending interrupts and waits (LHCALL_HALT, hlt).</param>
    public HypercallHost(GuestMemory memory, ConsoleOutput console, Notifier notifier, InterruptController interrupts)
    {
        _memory = memory;
        _console = console;
        Notifier = notifier;
        Interrupts = interrupts;
    }

    /// <summary>A host for one vCPU with its own notifier and interrupt controller, which it disposes.</summary>
    public HypercallHost(GuestMemory memory, Stream console)
    {
        _memory = memory;
        _console = new ConsoleOutput(console);
        _ownQsbr = new Qsbr();
        Notifier = new Notifier(_ownQsbr, 1);
        Interrupts = new InterruptController(1);
    }

    public Notifier Notifier { get; }
    public InterruptController Interrupts { get; }

    /// <summary>The VM's devices, whose windows the engines' MMIO path reaches; null: none.</summary>
    public Devices.DeviceBus? Devices { get; set; }

    /// <summary>The whole device range is the bus's once the VM has devices: a gap between windows is its fault to name.</summary>
    public bool ClaimsMmio(uint address) => Devices != null && Vmm.Devices.DeviceBus.Claims(address);

    public string? Mmio(Vcpu vcpu, uint address, int size, bool write, ref uint value) =>
        Devices!.Access(vcpu, address, size, write, ref value);

    // Journey: hypercall
    /// <summary>
    /// <c>int $0x1f</c> lands here, called in line from translated code: no
    /// trip through the dispatcher, so a notify costs a call, not an exit.
    /// A hypercall is to a guest what a system call is to a process: the
    /// number in EAX says what, EBX.. the arguments, and the answer comes back
    /// in EAX. The interrupt number and the call numbers are lguest's. Every
    /// argument is the guest's word and is checked like one: a bad one stops
    /// the guest with a fault that says why, never the host.
    /// </summary>
    public VcpuExit? Hypercall(Vcpu vcpu)
    {
        ref CpuState s = ref vcpu.State;
        return s[Gpr.Eax] switch
        {
            HypercallNumber.LhcallShutdown => VcpuExit.Shutdown((int)(s[Gpr.Ebx] & 0xff)),
            HypercallNumber.LhcallHalt => HaltFor(vcpu, ref s, s[Gpr.Ebx]),
            HypercallNumber.LhcallNotify => Notify(vcpu, ref s, s[Gpr.Ebx]),
            HypercallNumber.SvConsoleWrite => ConsoleWrite(vcpu, ref s, s[Gpr.Ebx], s[Gpr.Ecx]),
            _ => UnknownHypercall(ref s),
        };
    }

    // Out of line: the message's formatting would otherwise give the
    // dispatcher above a frame to clear on every call, notifies included.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private VcpuExit UnknownHypercall(ref CpuState s) => Fault(ref s, FaultKind.UnknownHypercall);

    /// <summary>
    /// <c>hlt</c> waits, without consuming it, for an interrupt to become
    /// pending. With no interrupt source attached, only another vCPU can end
    /// the wait (by stopping the VM); when every vCPU waits so, it is a deadlock.
    /// </summary>
    public VcpuExit? Halt(Vcpu vcpu) => Interrupts.WaitForInterrupt(vcpu);

    private VcpuExit? HaltFor(Vcpu vcpu, ref CpuState s, uint timeoutMicroseconds)
    {
        VcpuExit? exit = Interrupts.Halt(vcpu, timeoutMicroseconds, out uint irq);
        if (exit == null) s[Gpr.Eax] = irq; // the interrupt taken, or 0: the timeout passed
        return exit;
    }

    // Journey: notify
    /// <summary>
    /// LHCALL_NOTIFY, the seed's <c>send_notify_to_eventfd</c>. The guest tells
    /// the host "I put work in a queue", naming the queue by a value. The vCPU
    /// must not do that work itself (it would stop running guest code
    /// meanwhile), so the value is looked up in the RCU eventfd map on this
    /// vCPU's thread and the eventfd of whichever thread or process services
    /// the device is signalled right here, one write(2), inside translated
    /// code's call: no dispatcher round trip, no lock, no allocation, no
    /// exception. A miss returns 0 and is counted, per value, by this vCPU alone.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] // the hot call: no frame of its own
    private VcpuExit? Notify(Vcpu vcpu, ref CpuState s, uint value)
    {
        // Value 0 is reserved so that a zeroed variable cannot notify by accident.
        if (value == 0)
            return Fault(ref s, FaultKind.NotifyValueZero);
        s[Gpr.Eax] = Notifier.Signal(value, vcpu.Index) ? 1u : 0u;
        return null;
    }

    private VcpuExit? ConsoleWrite(Vcpu vcpu, ref CpuState s, uint address, uint length)
    {
        int count = (int)Math.Min(length, (uint)HypercallNumber.ConsoleWriteMax);
        // Only the bytes we would write must be in RAM: a guest that passes a
        // huge length gets the first 64 KiB and EAX saying so.
        if (!_memory.TryGetSpan(address, count, out Span<byte> bytes))
            return Fault(ref s, FaultKind.ConsoleWriteOutsideRam, address, (uint)count);
        // The write may block (a full pipe): offline meanwhile, so that map
        // updates do not wait for a reader that holds nothing.
        vcpu.Qsbr?.Offline();
        try
        {
            _console.Write(bytes);
        }
        catch (IOException e)
        {
            return new VcpuExit(StopReason.Error, $"console write failed: {e.Message}");
        }
        finally
        {
            vcpu.Qsbr?.Online();
        }
        s[Gpr.Eax] = (uint)count;
        return null;
    }

    /// <summary>
    /// A fault names the <c>int $0x1f</c> (two bytes, CD 1F) as the faulting
    /// instruction: EIP goes back to it, as a CPU reports a trap, so that the
    /// registers and the message agree.
    /// </summary>
    private VcpuExit Fault(ref CpuState s, FaultKind kind, uint? address = null, uint? size = null)
    {
        s.Eip -= 2;
        return VcpuExit.Of(GuestFault.At(kind, s.Eip, _memory, address, size, hypercall: s[Gpr.Eax]));
    }

    public void Dispose()
    {
        if (_ownQsbr == null) return;
        Notifier.Dispose();
        Interrupts.Dispose();
        _ownQsbr.Dispose();
    }
}
