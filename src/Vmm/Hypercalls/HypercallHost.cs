using System.Diagnostics;
using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Native;

namespace Sharpvisor.Vmm.Hypercalls;

/// <summary>
/// The host side of <c>int $0x1f</c> and <c>hlt</c> for one VM. Every call
/// runs on the vCPU's thread, in line from translated code. Nothing the guest
/// passes is trusted: a bad argument stops the guest with a reason (a fault),
/// never the host with an exception. Only EAX is ever written.
/// </summary>
public sealed class HypercallHost : IVcpuHost, IDisposable
{
    private readonly GuestMemory _memory;
    private readonly Stream _console;
    // Set once when the machine is being stopped (timeout, signal), so that a
    // vCPU asleep in LHCALL_HALT returns at once and meets the stop request.
    private readonly ManualResetEventSlim _stopping = new(false);
    private long _notifyMisses;

    /// <param name="memory">Guest RAM, for the buffers hypercalls name.</param>
    /// <param name="console">Where SV_CONSOLE_WRITE's bytes go (stdout), written through unchanged.</param>
    public HypercallHost(GuestMemory memory, Stream console)
    {
        _memory = memory;
        _console = console;
    }

    /// <summary>LHCALL_NOTIFY calls that found no eventfd attached to their value.</summary>
    public long NotifyMisses => Interlocked.Read(ref _notifyMisses);

    /// <summary>Wakes a vCPU sleeping in LHCALL_HALT, for good: the machine is stopping.</summary>
    public void Wake() => _stopping.Set();

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
            HypercallNumber.LhcallHalt => HaltFor(ref s, s[Gpr.Ebx]),
            HypercallNumber.LhcallNotify => Notify(ref s, s[Gpr.Ebx]),
            HypercallNumber.SvConsoleWrite => ConsoleWrite(ref s, s[Gpr.Ebx], s[Gpr.Ecx]),
            uint n => Fault(ref s, $"unknown hypercall {n} (EAX)"),
        };
    }

    /// <summary>
    /// <c>hlt</c> waits, without consuming it, for an interrupt to become
    /// pending. ABI v1 has no interrupt source, so nothing can ever end the
    /// wait: stop now and say so rather than hang.
    /// </summary>
    public VcpuExit? Halt(Vcpu vcpu) => new(StopReason.Deadlock,
        $"hlt at eip 0x{vcpu.State.Eip - 1:x} waits for an interrupt, and ABI v1 has no interrupt source to raise one");

    private VcpuExit? HaltFor(ref CpuState s, uint timeoutMicroseconds)
    {
        if (timeoutMicroseconds == 0)
            return new VcpuExit(StopReason.Deadlock,
                $"LHCALL_HALT without a timeout at eip 0x{s.Eip - 2:x}, and ABI v1 has no interrupt source to wake it");
        // The guest asked to sleep at least this long. The event's timed wait
        // counts in coarse milliseconds and can return a few early, so wait
        // again for whatever the monotonic clock says is left. A stop request
        // cuts the sleep short.
        long deadline = Stopwatch.GetTimestamp() + (long)(timeoutMicroseconds * (Stopwatch.Frequency / 1e6));
        for (long left; (left = deadline - Stopwatch.GetTimestamp()) > 0;)
        {
            double ms = Math.Ceiling(left * 1000.0 / Stopwatch.Frequency);
            if (_stopping.Wait(TimeSpan.FromMilliseconds(ms)))
                break;
        }
        s[Gpr.Eax] = 0; // no interrupt was pending: a timeout
        return null;
    }

    // Journey: notify
    /// <summary>
    /// LHCALL_NOTIFY: the guest tells the host "I put work in a queue", naming
    /// the queue by a value. The vCPU must not do that work itself (it would
    /// stop running guest code meanwhile), so the value is handed, through the
    /// RCU eventfd map, to whichever thread or process services the device.
    /// Until the map is wired into the VM (issue 4), every notify is a miss.
    /// </summary>
    private VcpuExit? Notify(ref CpuState s, uint value)
    {
        // Value 0 is reserved so that a zeroed variable cannot notify by accident.
        if (value == 0)
            return Fault(ref s, "LHCALL_NOTIFY with value 0");
        // No eventfd map is wired to the VM yet (a later issue): every
        // notification is a miss, counted so tests and stats can see them.
        Interlocked.Increment(ref _notifyMisses);
        s[Gpr.Eax] = 0;
        return null;
    }

    private VcpuExit? ConsoleWrite(ref CpuState s, uint address, uint length)
    {
        int count = (int)Math.Min(length, (uint)HypercallNumber.ConsoleWriteMax);
        // Only the bytes we would write must be in RAM: a guest that passes a
        // huge length gets the first 64 KiB and EAX saying so.
        if (!_memory.TryGetSpan(address, count, out Span<byte> bytes))
            return Fault(ref s, $"SV_CONSOLE_WRITE of {count} bytes at 0x{address:x} outside guest RAM");
        try
        {
            _console.Write(bytes);
            // Flushed per call, so output survives any later stop, even a kill.
            _console.Flush();
        }
        catch (IOException e)
        {
            return new VcpuExit(StopReason.Error, $"console write failed: {e.Message}");
        }
        s[Gpr.Eax] = (uint)count;
        return null;
    }

    /// <summary>
    /// A fault names the <c>int $0x1f</c> (two bytes, CD 1F) as the faulting
    /// instruction: EIP goes back to it, as a CPU reports a trap, so that the
    /// registers and the message agree.
    /// </summary>
    private static VcpuExit Fault(ref CpuState s, string what)
    {
        s.Eip -= 2;
        return VcpuExit.Fault($"{what} at eip 0x{s.Eip:x}");
    }

    public void Dispose() => _stopping.Dispose();
}
