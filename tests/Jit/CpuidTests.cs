using System.Text;
using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.Runtime;
using static Iced.Intel.AssemblerRegisters;

namespace Sharpvisor.Tests.Jit;

public class CpuidTests
{
    [Theory]
    [MemberData(nameof(GuestHarness.Kinds), MemberType = typeof(GuestHarness))]
    public void HypervisorLeaf_NamesSharpvisorV1(EngineKind kind)
    {
        GuestHarness.SkipIfUnavailable(kind);
        using var h = new GuestHarness(kind, a =>
        {
            a.mov(eax, 0x40000000);
            a.cpuid();
            a.hlt();
        });
        h.Run();
        var name = new byte[12];
        BitConverter.TryWriteBytes(name.AsSpan(0), h.State[Gpr.Ebx]);
        BitConverter.TryWriteBytes(name.AsSpan(4), h.State[Gpr.Ecx]);
        BitConverter.TryWriteBytes(name.AsSpan(8), h.State[Gpr.Edx]);
        Assert.Equal("SharpvisorV1", Encoding.ASCII.GetString(name));
        Assert.Equal(0x40000001u, h.State[Gpr.Eax]);
    }

    [Theory]
    [MemberData(nameof(GuestHarness.Kinds), MemberType = typeof(GuestHarness))]
    public void AbiLeaf_GivesVersionAndTscRate_AndRdtscAdvancesAtThatRate(EngineKind kind)
    {
        GuestHarness.SkipIfUnavailable(kind);
        using var h = new GuestHarness(kind, a =>
        {
            a.mov(eax, 0x40000001);
            a.cpuid();
            a.mov(edi, eax);
            a.mov(ebp, ebx);
            a.rdtsc();
            a.mov(esi, eax);
            a.hlt();
        });
        var before = System.Diagnostics.Stopwatch.GetTimestamp();
        h.Run();
        Assert.Equal(Engines.AbiVersion, h.State[Gpr.Edi]);
        Assert.Equal(2u, Engines.AbiVersion); // docs/guest-abi.md: version 2
        Assert.Equal(Engines.TscKhz, h.State[Gpr.Ebp]);
        // 1 GHz: the TSC low word counts nanoseconds since the VM started; a run this short stays far below 4 s.
        Assert.True(h.State[Gpr.Esi] > 0);
        Assert.True(h.State[Gpr.Esi] < System.Diagnostics.Stopwatch.GetElapsedTime(before).TotalNanoseconds * 2 + 1e9);
    }

    [Fact]
    public void FeatureLeaves_AdvertisePopcntAndLzcnt_ButNotBmi1()
    {
        using var h = new GuestHarness(EngineKind.Threaded, a =>
        {
            a.mov(eax, 1); a.cpuid(); a.mov(esi, ecx);
            a.mov(eax, 7); a.xor(ecx, ecx); a.cpuid(); a.mov(edi, ebx);
            a.mov(eax, 0x80000001); a.cpuid(); a.mov(ebp, ecx);
            a.hlt();
        });
        h.Run();
        Assert.NotEqual(0u, h.State[Gpr.Esi] & (1u << 23));  // POPCNT
        Assert.Equal(0u, h.State[Gpr.Edi] & (1u << 3));      // no BMI1
        Assert.NotEqual(0u, h.State[Gpr.Ebp] & (1u << 5));   // ABM (LZCNT)
    }
}
