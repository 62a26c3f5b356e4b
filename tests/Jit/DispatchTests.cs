using System.Diagnostics;
using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Native;
using static Iced.Intel.AssemblerRegisters;

namespace Sharpvisor.Tests.Jit;

/// <summary>The dispatcher: links, chains, regions, stop requests and quiescent states.</summary>
public class DispatchTests
{
    /// <summary>A loop of three blocks (a branch inside the body), run far past the chain budget.</summary>
    [Theory]
    [MemberData(nameof(GuestHarness.Kinds), MemberType = typeof(GuestHarness))]
    public void LoopOfSeveralBlocks_RunsLongPastTheChainBudget_WithTheRightResult(EngineKind kind)
    {
        GuestHarness.SkipIfUnavailable(kind);
        using var h = new GuestHarness(kind, a =>
        {
            var loop = a.CreateLabel();
            var odd = a.CreateLabel();
            var next = a.CreateLabel();
            a.xor(eax, eax);
            a.xor(ebx, ebx);
            a.mov(ecx, 100_000);
            a.Label(ref loop);
            a.test(ecx, 1);
            a.jnz(odd);
            a.add(eax, ecx);
            a.jmp(next);
            a.Label(ref odd);
            a.add(ebx, ecx);
            a.Label(ref next);
            a.dec(ecx);
            a.jnz(loop);
            a.hlt();
        });
        var exit = h.Run();
        Assert.Equal(StopReason.Shutdown, exit.Reason);
        // Even numbers 2..100000 and odd numbers 1..99999.
        Assert.Equal(2_500_050_000u & 0xffffffff, h.State[Gpr.Eax]);
        Assert.Equal(2_500_000_000u, h.State[Gpr.Ebx]);
        Assert.True(h.Vcpu.Stats.FastExitShare > 0.95, $"fast exits {h.Vcpu.Stats.FastExitShare:P1}");
    }

    [Theory]
    [MemberData(nameof(GuestHarness.Kinds), MemberType = typeof(GuestHarness))]
    public void StopRequest_EndsAGuestThatSpinsForever(EngineKind kind)
    {
        GuestHarness.SkipIfUnavailable(kind);
        using var h = new GuestHarness(kind, a =>
        {
            var loop = a.CreateLabel();
            a.Label(ref loop);
            a.inc(eax);
            a.jmp(loop);
        });
        VcpuExit? exit = null;
        var thread = new Thread(() => exit = h.Run());
        thread.Start();
        Thread.Sleep(200);
        h.Vcpu.RequestStop(new VcpuExit(StopReason.Timeout, "test"));
        Assert.True(thread.Join(TimeSpan.FromSeconds(10)), "the vCPU did not stop");
        Assert.Equal(StopReason.Timeout, exit!.Reason);
        Assert.True(h.State[Gpr.Eax] > 1000);
    }

    /// <summary>
    /// An RCU update must not wait on a guest that spins: the vCPU reports
    /// quiescent states between blocks, and compiled loops and block chains
    /// leave to do so when the updater kicks them.
    /// </summary>
    [Theory]
    [MemberData(nameof(GuestHarness.Kinds), MemberType = typeof(GuestHarness))]
    public void Synchronize_CompletesWhileTheGuestSpins(EngineKind kind)
    {
        GuestHarness.SkipIfUnavailable(kind);
        using var qsbr = new Qsbr();
        using var h = new GuestHarness(kind, a =>
        {
            var loop = a.CreateLabel();
            a.Label(ref loop);
            a.add(eax, 1);
            a.cmp(eax, 0);
            a.jne(loop);
            a.jmp(loop);
        }, hotThreshold: 4, qsbr: qsbr);
        VcpuExit? exit = null;
        var thread = new Thread(() => exit = h.Run());
        thread.Start();
        SpinWait.SpinUntil(() => qsbr.ThreadCount == 1, TimeSpan.FromSeconds(10));
        Thread.Sleep(100); // well into the hot loop (compiled, for the IL engine)
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < 20; i++)
            qsbr.Synchronize();
        sw.Stop();
        h.Vcpu.RequestStop(new VcpuExit(StopReason.Timeout, "test"));
        Assert.True(thread.Join(TimeSpan.FromSeconds(10)));
        Assert.Equal(StopReason.Timeout, exit!.Reason);
        Assert.Equal(20, qsbr.GracePeriods);
        // Generous: only a grace period that waited for the guest to stop would take seconds.
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(2), $"20 grace periods took {sw.Elapsed}");
    }

    /// <summary>
    /// A jump table in a hot loop (an interpreter's dispatch): the IL engine's
    /// region holds the cases the jump was seen to take while cold, so the
    /// dispatch stays inside the region instead of leaving it every time.
    /// </summary>
    [Fact]
    public unsafe void JumpTableInAHotLoop_StaysInsideTheIlRegion()
    {
        GuestHarness.SkipIfUnavailable(EngineKind.Il);
        const uint Table = 0x8000;
        using var h = new GuestHarness(EngineKind.Il, a =>
        {
            var loop = a.CreateLabel();
            var cases = new[] { a.CreateLabel(), a.CreateLabel(), a.CreateLabel(), a.CreateLabel() };
            var done = a.CreateLabel();
            a.xor(edi, edi);
            a.mov(esi, 20_000);
            a.Label(ref loop);
            a.mov(eax, esi);
            a.and(eax, 3);
            a.jmp(__dword_ptr[eax * 4 + Table]);
            for (int k = 0; k < 4; k++)
            {
                a.Label(ref cases[k]);
                a.add(edi, 1 << (8 * k));
                a.sub(esi, 1);
                a.jnz(loop);
                a.jmp(done);
            }
            a.Label(ref done);
            a.hlt();
        });
        // The cases' addresses: assemble once more to find them is overkill; decode the code instead.
        var decoder = Iced.Intel.Decoder.Create(32, new ReadOnlySpan<byte>(h.Memory.Base + GuestHarness.CodeBase, 256).ToArray(), GuestHarness.CodeBase);
        var starts = new List<uint>();
        foreach (var insn in decoder)
        {
            if (insn.Mnemonic == Iced.Intel.Mnemonic.Add && insn.Op0Register == Iced.Intel.Register.EDI && insn.Op1Kind is Iced.Intel.OpKind.Immediate32 or Iced.Intel.OpKind.Immediate8to32)
                starts.Add(insn.IP32);
            if (starts.Count == 4) break;
        }
        for (int k = 0; k < 4; k++)
            *(uint*)(h.Memory.Base + Table + 4 * k) = starts[k];

        Assert.Equal(StopReason.Shutdown, h.Run().Reason);
        Assert.Equal(unchecked(5000u * 0x01010101u), h.State[Gpr.Edi]);
        VcpuStats stats = h.Vcpu.Stats;
        Assert.True(stats.RegionEntries < 200, $"{stats.RegionEntries} region entries for 20,000 dispatches");
    }
}
