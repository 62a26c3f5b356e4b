using System.Diagnostics;
using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Native;
using Sharpvisor.Vmm;
using Sharpvisor.Vmm.Hypercalls;

namespace Sharpvisor.Tests.Vmm;

/// <summary>
/// The host is called directly with registers set as the engine would leave
/// them (EIP after the int $0x1f), so these tests need no working engine.
/// </summary>
public sealed class HypercallHostTests : IDisposable
{
    private const ulong Ram = 256 << 10;
    private const uint CallEip = 0x1002; // just after an int $0x1f at 0x1000

    private readonly GuestMemory _memory = GuestMemory.Allocate(Ram);
    private readonly MemoryStream _console = new();
    private readonly ExecutionEngine _engine;
    private readonly HypercallHost _host;
    private readonly Vcpu _vcpu;

    public HypercallHostTests()
    {
        _engine = new ExecutionEngine(_memory, EngineKind.Threaded);
        _host = new HypercallHost(_memory, _console);
        _vcpu = new Vcpu(_engine, 0, _host);
    }

    public void Dispose()
    {
        _vcpu.Dispose();
        _host.Dispose();
        _engine.Dispose();
        _memory.Dispose();
    }

    private VcpuExit? Call(uint nr, uint ebx = 0, uint ecx = 0)
    {
        ref CpuState s = ref _vcpu.State;
        s[Gpr.Eax] = nr;
        s[Gpr.Ebx] = ebx;
        s[Gpr.Ecx] = ecx;
        s[Gpr.Edx] = 0xd0d0d0d0;
        s[Gpr.Esi] = 0x51515151;
        s[Gpr.Edi] = 0xd1d1d1d1;
        s[Gpr.Ebp] = 0xb0b0b0b0;
        s[Gpr.Esp] = 0x3fff0;
        s.Eip = CallEip;
        return _host.Hypercall(_vcpu);
    }

    private void AssertOthersPreserved(uint ebx, uint ecx)
    {
        ref CpuState s = ref _vcpu.State;
        Assert.Equal(ebx, s[Gpr.Ebx]);
        Assert.Equal(ecx, s[Gpr.Ecx]);
        Assert.Equal(0xd0d0d0d0u, s[Gpr.Edx]);
        Assert.Equal(0x51515151u, s[Gpr.Esi]);
        Assert.Equal(0xd1d1d1d1u, s[Gpr.Edi]);
        Assert.Equal(0xb0b0b0b0u, s[Gpr.Ebp]);
        Assert.Equal(0x3fff0u, s[Gpr.Esp]);
    }

    [Fact]
    public void ConsoleWrite_WritesTheBytesAsTheyAre_AndReturnsTheCount()
    {
        byte[] text = [(byte)'o', (byte)'k', 0, 0xff, (byte)'\n'];
        Assert.True(_memory.TryGetSpan(0x2000, text.Length, out Span<byte> at));
        text.CopyTo(at);
        Assert.Null(Call(HypercallNumber.SvConsoleWrite, 0x2000, (uint)text.Length));
        Assert.Equal(text, _console.ToArray());
        Assert.Equal((uint)text.Length, _vcpu.State[Gpr.Eax]);
        Assert.Equal(CallEip, _vcpu.State.Eip);
        AssertOthersPreserved(0x2000, (uint)text.Length);
    }

    [Fact]
    public void ConsoleWrite_OfMoreThan64K_WritesOnly64K()
    {
        Assert.Null(Call(HypercallNumber.SvConsoleWrite, 0, 100_000));
        Assert.Equal(65536u, _vcpu.State[Gpr.Eax]);
        Assert.Equal(65536, _console.Length);
    }

    [Fact]
    public void ConsoleWrite_HugeLengthNearEndOfRam_FaultsOnTheBytesItWouldWrite()
    {
        VcpuExit? exit = Call(HypercallNumber.SvConsoleWrite, (uint)Ram - 10, 0xffffffff);
        Assert.Equal(StopReason.Fault, exit?.Reason);
    }

    [Theory]
    [InlineData((uint)Ram, 1u)]            // starts just past RAM
    [InlineData((uint)Ram - 2, 3u)]        // straddles the end
    [InlineData(0xfffffff0u, 0x20u)]       // would wrap around 4G
    public void ConsoleWrite_OutsideRam_IsAGuestFaultAtTheIntInstruction(uint address, uint length)
    {
        VcpuExit? exit = Call(HypercallNumber.SvConsoleWrite, address, length);
        Assert.NotNull(exit);
        Assert.Equal(StopReason.Fault, exit.Reason);
        Assert.Contains($"0x{address:x}", exit.Message);
        Assert.Contains("eip 0x1000", exit.Message);
        Assert.Equal(CallEip - 2, _vcpu.State.Eip);
        Assert.Equal(0, _console.Length);
        Assert.Equal(80, ExitStatuses.For(exit));
    }

    [Fact]
    public void ConsoleWrite_OfZeroBytes_WritesNothingAndReturnsZero()
    {
        Assert.Null(Call(HypercallNumber.SvConsoleWrite, 0x100, 0));
        Assert.Equal(0u, _vcpu.State[Gpr.Eax]);
    }

    [Fact]
    public void Notify_WithNothingAttached_IsACountedMiss()
    {
        Assert.Null(Call(HypercallNumber.LhcallNotify, 5));
        Assert.Equal(0u, _vcpu.State[Gpr.Eax]);
        AssertOthersPreserved(5, 0);
        Assert.Null(Call(HypercallNumber.LhcallNotify, 0xffffffff));
        Assert.Null(Call(HypercallNumber.LhcallNotify, 5));
        (IReadOnlyList<KeyValuePair<uint, long>> missed, long other) = _host.Notifier.Missed();
        Assert.Equal([new(5u, 2L), new(0xffffffffu, 1L)], missed);
        Assert.Equal(0, other);
    }

    [Fact]
    public void Notify_WithValueZero_IsAGuestFault_NotAMiss()
    {
        VcpuExit? exit = Call(HypercallNumber.LhcallNotify, 0);
        Assert.Equal(StopReason.Fault, exit?.Reason);
        Assert.Empty(_host.Notifier.Missed().Values);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(1u)]
    [InlineData(31u)]
    [InlineData(33u)]
    [InlineData(0xffffffffu)]
    public void UnknownHypercall_StopsTheGuestNamingTheNumber(uint nr)
    {
        VcpuExit? exit = Call(nr);
        Assert.NotNull(exit);
        Assert.Equal(StopReason.Fault, exit.Reason);
        Assert.Contains($"unknown hypercall {nr}", exit.Message);
        Assert.Equal(80, ExitStatuses.For(exit));
    }

    [Fact]
    public void Shutdown_TakesTheLowByteOfEbxAsStatus()
    {
        VcpuExit? exit = Call(HypercallNumber.LhcallShutdown, 0x1234);
        Assert.Equal(StopReason.Shutdown, exit?.Reason);
        Assert.Equal(0x34, exit?.GuestStatus);
        Assert.Equal(0x34, ExitStatuses.For(exit!));
    }

    [Fact]
    public void Halt_WithTimeout_SleepsAtLeastThatLongAndReturnsZero()
    {
        var sw = Stopwatch.StartNew();
        Assert.Null(Call(HypercallNumber.LhcallHalt, 20_000));
        Assert.True(sw.ElapsedMilliseconds >= 19, $"slept {sw.ElapsedMilliseconds} ms");
        Assert.Equal(0u, _vcpu.State[Gpr.Eax]);
    }

    [Fact]
    public void Halt_WithoutTimeout_IsADeadlock()
    {
        VcpuExit? exit = Call(HypercallNumber.LhcallHalt, 0);
        Assert.Equal(StopReason.Deadlock, exit?.Reason);
        Assert.Equal(81, ExitStatuses.For(exit!));
    }

    [Fact]
    public void Halt_IsCutShortWhenTheMachineStops()
    {
        var stop = new VcpuExit(StopReason.Timeout, "stop");
        var waker = new Thread(() => { Thread.Sleep(50); _host.Interrupts.Stop(stop); });
        waker.Start();
        var sw = Stopwatch.StartNew();
        Assert.Same(stop, Call(HypercallNumber.LhcallHalt, 60_000_000)); // a minute
        waker.Join();
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), $"slept {sw.Elapsed}");
    }

    [Fact]
    public void HltInstruction_WithNoInterruptSource_IsADeadlock()
    {
        _vcpu.State.Eip = 0x1001;
        VcpuExit? exit = _host.Halt(_vcpu);
        Assert.Equal(StopReason.Deadlock, exit?.Reason);
        Assert.Contains("0x1000", exit?.Message);
    }
}
