using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.Runtime;
using static Iced.Intel.AssemblerRegisters;

namespace Sharpvisor.Tests.Jit;

/// <summary>A fault stops the vCPU at the faulting instruction with the registers as they were before it.</summary>
public class PreciseFaultTests
{
    [Theory]
    [MemberData(nameof(GuestHarness.Kinds), MemberType = typeof(GuestHarness))]
    public void DivideByZero_IsDE_WithRegistersBeforeTheDiv(EngineKind kind)
    {
        GuestHarness.SkipIfUnavailable(kind);
        using var h = new GuestHarness(kind, a =>
        {
            a.mov(eax, 100);
            a.mov(edx, 7);
            a.xor(ecx, ecx);
            a.div(ecx);
            a.hlt();
        });
        var exit = h.Run();
        Assert.Equal(StopReason.Fault, exit.Reason);
        Assert.Contains("#DE", exit.Message);
        Assert.Equal(100u, h.State[Gpr.Eax]);
        Assert.Equal(7u, h.State[Gpr.Edx]);
        Assert.Equal(GuestHarness.CodeBase + 5 + 5 + 2, h.State.Eip);
    }

    [Theory]
    [MemberData(nameof(GuestHarness.Kinds), MemberType = typeof(GuestHarness))]
    public void SignedOverflowDivide_IntMinByMinusOne_IsDE_NotAHostException(EngineKind kind)
    {
        GuestHarness.SkipIfUnavailable(kind);
        using var h = new GuestHarness(kind, a =>
        {
            a.mov(eax, 0);
            a.mov(edx, 0x80000000);   // EDX:EAX = long.MinValue
            a.mov(ecx, -1);
            a.idiv(ecx);
            a.hlt();
        });
        var exit = h.Run();
        Assert.Equal(StopReason.Fault, exit.Reason);
        Assert.Contains("#DE", exit.Message);
        Assert.Equal(0x80000000u, h.State[Gpr.Edx]);
    }

    [Theory]
    [MemberData(nameof(GuestHarness.Kinds), MemberType = typeof(GuestHarness))]
    public void PushWithEspOutsideRam_FaultsBeforeEspChanges(EngineKind kind)
    {
        GuestHarness.SkipIfUnavailable(kind);
        using var h = new GuestHarness(kind, a =>
        {
            a.mov(esp, 0x40000000);
            a.mov(ebx, 0x1000);
            a.push(__dword_ptr[ebx]);
            a.hlt();
        });
        var exit = h.Run();
        Assert.Equal(StopReason.Fault, exit.Reason);
        Assert.Contains("write of 4 bytes at 0x3ffffffc", exit.Message);
        Assert.Equal(0x40000000u, h.State[Gpr.Esp]);
        Assert.Equal(GuestHarness.CodeBase + 10, h.State.Eip);
    }

    [Theory]
    [MemberData(nameof(GuestHarness.Kinds), MemberType = typeof(GuestHarness))]
    public void FaultInAHotLoop_ReportsTheFaultingIteration(EngineKind kind)
    {
        GuestHarness.SkipIfUnavailable(kind);
        // Walks a pointer up through RAM until it leaves: the compiled region must stop exactly there.
        using var h = new GuestHarness(kind, a =>
        {
            var loop = a.CreateLabel();
            a.mov(esi, 0x10000);
            a.xor(eax, eax);
            a.Label(ref loop);
            a.add(eax, __dword_ptr[esi]);
            a.add(esi, 4);
            a.jmp(loop);
        }, hotThreshold: 4);
        var exit = h.Run();
        Assert.Equal(StopReason.Fault, exit.Reason);
        Assert.Equal((uint)GuestHarness.RamSize, h.State[Gpr.Esi]);
        Assert.Contains($"read of 4 bytes at 0x{GuestHarness.RamSize:x8}", exit.Message);
    }

    [Theory]
    [MemberData(nameof(GuestHarness.Kinds), MemberType = typeof(GuestHarness))]
    public void PortIo_StopsWithTheInstructionNamed(EngineKind kind)
    {
        GuestHarness.SkipIfUnavailable(kind);
        using var h = new GuestHarness(kind, a =>
        {
            a.mov(eax, 1);
            a.@in(al, dx);
            a.hlt();
        });
        var exit = h.Run();
        Assert.Equal(StopReason.Fault, exit.Reason);
        Assert.Contains("unsupported instruction 'in al,dx' (bytes ec)", exit.Message);
        Assert.Equal(GuestHarness.CodeBase + 5, h.State.Eip);
        Assert.Equal(1u, h.State[Gpr.Eax]);
    }
}
