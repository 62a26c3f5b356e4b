using Iced.Intel;
using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.Runtime;
using static Iced.Intel.AssemblerRegisters;

namespace Sharpvisor.Tests.Jit;

/// <summary>
/// Self-modifying code: stores check the per-page code table, and a write
/// that changes translated code takes effect at the next instruction, as on x86.
/// </summary>
public class SelfModifyingCodeTests
{
    [Theory]
    [MemberData(nameof(GuestHarness.Kinds), MemberType = typeof(GuestHarness))]
    public void PatchingAnImmediateInALoop_TakesEffectOnTheNextIteration(EngineKind kind)
    {
        GuestHarness.SkipIfUnavailable(kind);
        // Loop 200 times: eax += imm, where the loop rewrites imm to the iteration number.
        using var h = new GuestHarness(kind, a =>
        {
            var loop = a.CreateLabel();
            a.xor(eax, eax);                  // 2 bytes
            a.mov(ecx, 0);                    // 5 bytes
            a.Label(ref loop);
            a.db(0x05); a.dd(0x11111111);     // add eax, imm32: the imm32 is at CodeBase + 8
            a.inc(ecx);
            a.mov(__dword_ptr[GuestHarness.CodeBase + 8], ecx); // next iteration adds ecx
            a.cmp(ecx, 200);
            a.jne(loop);
            a.hlt();
        }, hotThreshold: 8);
        var exit = h.Run();
        Assert.Equal(StopReason.Shutdown, exit.Reason);
        // First iteration adds the original 0x11111111, then 1 + 2 + ... + 199.
        uint expected = unchecked(0x11111111u + 199u * 200u / 2u);
        Assert.Equal(expected, h.State[Gpr.Eax]);
        Assert.True(h.Engine.Stats.Invalidations > 0);
    }

    /// <summary>
    /// Every patch retires the loop's threaded code (another vCPU could be
    /// inside it), freed after a grace period: once the reclaimer has caught
    /// up, all of it is freed, and the rest goes with the engine.
    /// </summary>
    [Fact]
    public void RetiredThreadedCode_IsFreedAfterAGracePeriod_AndTheRestWithTheEngine()
    {
        using var h = new GuestHarness(EngineKind.Threaded, a =>
        {
            var loop = a.CreateLabel();
            a.xor(eax, eax);
            a.mov(ecx, 0);
            a.Label(ref loop);
            a.db(0x05); a.dd(0x11111111);     // add eax, imm32 at CodeBase + 8, rewritten each iteration
            a.inc(ecx);
            a.mov(__dword_ptr[GuestHarness.CodeBase + 8], ecx);
            a.cmp(ecx, 200);
            a.jne(loop);
            a.hlt();
        });
        Assert.Equal(StopReason.Shutdown, h.Run().Reason);
        h.Engine.Qsbr.Barrier();
        var (created, retired, freed) = Sharpvisor.Jit.Threaded.ThreadedCodeStore.Of(h.Engine).Counts;
        Assert.True(retired >= 100, $"only {retired} blocks retired");
        Assert.Equal(retired, freed);
        h.Engine.Dispose();
        Assert.Equal(created, Sharpvisor.Jit.Threaded.ThreadedCodeStore.Of(h.Engine).Counts.Freed);
    }

    [Theory]
    [MemberData(nameof(GuestHarness.Kinds), MemberType = typeof(GuestHarness))]
    public void WritingTheNextInstructionOfTheSameBlock_RunsTheNewInstruction(EngineKind kind)
    {
        GuestHarness.SkipIfUnavailable(kind);
        using var h = new GuestHarness(kind, a =>
        {
            a.mov(ebx, 0x90909090);                                // 5 bytes: four nops
            a.mov(__dword_ptr[GuestHarness.CodeBase + 11], ebx);   // 6 bytes: overwrite the next instruction
            a.mov(eax, 0xdeadbeef);                                // at CodeBase + 11: b8 ef be ad de
            a.hlt();
        });
        // After the patch the bytes there are 90 90 90 90 de f4: four nops, then `fdivr st(4),st` (de f4), x87: unsupported.
        var exit = h.Run();
        Assert.Equal(StopReason.Fault, exit.Reason);
        Assert.Contains("unsupported instruction", exit.Message);
        Assert.Equal(GuestHarness.CodeBase + 15, h.State.Eip);
        Assert.Equal(0u, h.State[Gpr.Eax]);
    }

    [Theory]
    [MemberData(nameof(GuestHarness.Kinds), MemberType = typeof(GuestHarness))]
    public void DataWritesNextToCode_SwitchThePageToFineTracking(EngineKind kind)
    {
        GuestHarness.SkipIfUnavailable(kind);
        // A counter in the same page as the loop, written every iteration.
        using var h = new GuestHarness(kind, a =>
        {
            const uint data = GuestHarness.CodeBase + 0x800; // same page as the code
            var loop = a.CreateLabel();
            a.mov(ecx, 1000);
            a.Label(ref loop);
            a.inc(__dword_ptr[data]);
            a.dec(ecx);
            a.jne(loop);
            a.mov(eax, __dword_ptr[data]);
            a.hlt();
        });
        var exit = h.Run();
        Assert.Equal(StopReason.Shutdown, exit.Reason);
        Assert.Equal(1000u, h.State[Gpr.Eax]);
        // Coarse tracking would invalidate on each of the 1000 writes; fine tracking stops after a few.
        Assert.InRange(h.Engine.Stats.Invalidations, 1, ExecutionEngine.FineTrackingAfter * 2);
    }
}
