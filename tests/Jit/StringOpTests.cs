using Iced.Intel;
using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.Runtime;
using static Iced.Intel.AssemblerRegisters;

namespace Sharpvisor.Tests.Jit;

public class StringOpTests
{
    /// <summary>
    /// A rep stosb over more than 2 GiB (RAM may be 3 GiB): the bulk fill
    /// must not pass through an int-sized length, which once went negative
    /// and stopped the VM with a host error (exit 70) instead of filling.
    /// </summary>
    [Theory]
    [MemberData(nameof(GuestHarness.Kinds), MemberType = typeof(GuestHarness))]
    public unsafe void RepStosb_OverMoreThanTwoGiB_FillsEveryByte(EngineKind kind)
    {
        GuestHarness.SkipIfUnavailable(kind);
        const uint start = 0x1000_0000, count = 0x8800_0000; // 2.125 GiB
        using var h = new GuestHarness(kind, a =>
        {
            a.mov(edi, start);
            a.mov(ecx, count);
            a.mov(eax, 0x5A);
            a.cld();
            a.rep.stosb();
            a.hlt();
        }, ramSize: 3ul << 30);
        VcpuExit exit = h.Run();
        Assert.Equal(StopReason.Shutdown, exit.Reason);
        Assert.Equal(0u, h.State[Gpr.Ecx]);
        Assert.Equal(start + count, h.State[Gpr.Edi]);
        byte* ram = h.Memory.Base;
        Assert.Equal(0x5A, ram[start]);
        Assert.Equal(0x5A, ram[0x8000_0000u + start]); // past the first 2 GiB of the fill
        Assert.Equal(0x5A, ram[start + count - 1]);
        Assert.Equal(0, ram[start - 1]);
        Assert.Equal(0, ram[start + count]);
    }
}
