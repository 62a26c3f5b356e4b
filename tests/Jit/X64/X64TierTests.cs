using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.Runtime;
using static Iced.Intel.AssemblerRegisters;

namespace Sharpvisor.Tests.Jit.X64;

/// <summary>
/// The x64 tier's own mechanics: hot blocks get machine code, indirect jumps
/// in machine code reach the right block, and a full code region leaves
/// blocks threaded without changing what the guest computes. (What every
/// instruction form computes is DifferentialTests' X64 rows.)
/// </summary>
public class X64TierTests
{
    private static void SkipUnlessX64()
    {
        if (!Engines.IsX64Available)
            Assert.Skip("the x64 engine needs an x86-64 Linux host");
    }

    [Fact]
    public void HotLoop_BecomesMachineCode_AndComputesWhatTheThreadedEngineDoes()
    {
        SkipUnlessX64();
        uint Run(EngineKind kind, out X64TierStats stats)
        {
            using var h = new GuestHarness(kind, a =>
            {
                // A checksum over 100,000 rounds: shifts, xor, a compare and a byte store.
                var loop = a.CreateLabel();
                a.mov(eax, 0x12345678);
                a.mov(ecx, 100_000);
                a.Label(ref loop);
                a.mov(edx, eax);
                a.shl(edx, 5);
                a.xor(eax, edx);
                a.mov(edx, eax);
                a.shr(edx, 7);
                a.xor(eax, edx);
                a.mov(__byte_ptr[ecx + 0x40000], al);
                a.add(eax, ecx);
                a.sub(ecx, 1);
                a.jnz(loop);
                a.hlt();
            }, hotThreshold: 64);
            Assert.Equal(StopReason.Shutdown, h.Run().Reason);
            stats = h.Engine.X64Stats;
            return h.State[Gpr.Eax] ^ h.Read32(0x40001);
        }
        uint threaded = Run(EngineKind.Threaded, out var none);
        uint x64 = Run(EngineKind.X64, out var stats);
        Assert.Equal(threaded, x64);
        Assert.Equal(0, none.Compiled);
        Assert.True(stats.Compiled >= 1, $"compiled {stats.Compiled} blocks");
        Assert.True(stats.Bytes > 0);
    }

    /// <summary>
    /// Two functions whose addresses share a slot of the indirect-jump cache
    /// (0x1100 and 0x2103: (t ^ t >> 12) &amp; 4095 is 0x101 for both), called
    /// in turn through a register: each call must reach its own function,
    /// which only the cache entry's start address check tells apart.
    /// </summary>
    [Fact]
    public unsafe void IndirectCalls_ToTargetsSharingACacheSlot_EachReachTheirOwn()
    {
        SkipUnlessX64();
        Assert.Equal(Vcpu.JumpSlot(0x1100), Vcpu.JumpSlot(0x2103));
        using var h = new GuestHarness(EngineKind.X64, a =>
        {
            var loop = a.CreateLabel();
            a.xor(edi, edi);
            a.mov(esi, 1000);
            a.Label(ref loop);
            a.mov(ebx, 0x1100);
            a.call(ebx);
            a.add(edi, eax);
            a.mov(ebx, 0x2103);
            a.call(ebx);
            a.add(edi, eax);
            a.sub(esi, 1);
            a.jnz(loop);
            a.hlt();
        });
        byte[] f1 = [0xB8, 0x01, 0x00, 0x00, 0x00, 0xC3]; // mov eax, 1; ret
        byte[] f2 = [0xB8, 0x00, 0x01, 0x00, 0x00, 0xC3]; // mov eax, 0x100; ret
        f1.CopyTo(new Span<byte>(h.Memory.Base + 0x1100, f1.Length));
        f2.CopyTo(new Span<byte>(h.Memory.Base + 0x2103, f2.Length));
        Assert.Equal(StopReason.Shutdown, h.Run().Reason);
        Assert.Equal(1000u * 0x101, h.State[Gpr.Edi]);
        Assert.True(h.Engine.X64Stats.Compiled >= 3);
    }

    /// <summary>
    /// A function called through a register and rewritten between calls (its
    /// immediate is the loop counter): its old machine code stays in the
    /// indirect-jump cache, marked invalid, and must never run again.
    /// </summary>
    [Fact]
    public void IndirectCalls_ToAFunctionRewrittenBetweenCalls_RunItsNewCode()
    {
        SkipUnlessX64();
        uint sum = CallRewrittenFunction(200, a => a.mov(__dword_ptr[0x3001], esi)); // f's "mov eax, imm32" now returns esi
        Assert.Equal((uint)(200 * 201 / 2), sum);
    }

    /// <summary>
    /// Stores that straddle two pages, one of them holding code: machine code
    /// checks the code bits of both pages' bytes, so the write into the code
    /// is seen and the next pass runs it.
    /// </summary>
    [Fact]
    public void StoreStraddlingIntoAPageOfCode_TakesEffect()
    {
        SkipUnlessX64();
        // A dword at 0x2FFE (a page of data) whose upper half is f's opcode
        // and the low byte of its imm32: bytes 00 00 B8 (esi), "mov eax, esi".
        uint sum = CallRewrittenFunction(100, a =>
        {
            a.mov(edx, esi);
            a.shl(edx, 24);
            a.or(edx, 0xB80000);
            a.mov(__dword_ptr[0x2FFE], edx);
        });
        Assert.Equal((uint)(100 * 101 / 2), sum);
    }

    /// <summary>
    /// Runs a loop of <paramref name="rounds"/> (esi counting down) that
    /// first runs <paramref name="rewrite"/>, then calls f at 0x3000
    /// ("mov eax, 0; ret" to begin with) through a register; returns the sum
    /// of what f returned.
    /// </summary>
    private static unsafe uint CallRewrittenFunction(int rounds, Action<Iced.Intel.Assembler> rewrite)
    {
        using var h = new GuestHarness(EngineKind.X64, a =>
        {
            var loop = a.CreateLabel();
            a.xor(edi, edi);
            a.mov(esi, rounds);
            a.Label(ref loop);
            rewrite(a);
            a.mov(ebx, 0x3000);
            a.call(ebx);
            a.add(edi, eax);
            a.sub(esi, 1);
            a.jnz(loop);
            a.hlt();
        });
        byte[] f = [0xB8, 0x00, 0x00, 0x00, 0x00, 0xC3];
        f.CopyTo(new Span<byte>(h.Memory.Base + 0x3000, f.Length));
        Assert.Equal(StopReason.Shutdown, h.Run().Reason);
        return h.State[Gpr.Edi];
    }

    /// <summary>A code region with room for a few blocks only: the rest stay threaded, and the guest's result does not change.</summary>
    [Fact]
    public void FullCodeRegion_LeavesBlocksThreaded_AndTheGuestRunsOn()
    {
        SkipUnlessX64();
        Action<Iced.Intel.Assembler> program = a =>
        {
            // 60 blocks in a row, each adding its own constant, run 50 times.
            var loop = a.CreateLabel();
            a.xor(eax, eax);
            a.mov(ecx, 50);
            a.Label(ref loop);
            for (int i = 0; i < 60; i++)
            {
                var next = a.CreateLabel();
                a.add(eax, i * 7 + 1);
                a.jmp(next);
                a.Label(ref next);
            }
            a.sub(ecx, 1);
            a.jnz(loop);
            a.hlt();
        };
        uint expected = 50u * (uint)Enumerable.Range(0, 60).Sum(i => i * 7 + 1);
        using var small = new GuestHarness(EngineKind.X64, program, x64CodeBytes: 4096);
        Assert.Equal(StopReason.Shutdown, small.Run().Reason);
        Assert.Equal(expected, small.State[Gpr.Eax]);
        X64TierStats stats = small.Engine.X64Stats;
        Assert.True(stats.Compiled > 0, "some blocks fit");
        Assert.True(stats.Refused > 0, "and some did not");
        Assert.True(stats.Bytes < 4096);
    }

    [Fact]
    public void TheEngineSaysWhyThereIsNoMachineCode_OnlyWhenThereIsNone()
    {
        SkipUnlessX64();
        using var h = new GuestHarness(EngineKind.X64, a => a.hlt());
        Assert.Null(h.Engine.X64TierProblem);
    }

    /// <summary>No code memory at all (a zero-byte region cannot be mapped): the engine says why, and runs the guest threaded, right.</summary>
    [Fact]
    public void WithoutCodeMemory_TheGuestRunsThreaded_AndTheEngineSaysWhy()
    {
        SkipUnlessX64();
        using var h = new GuestHarness(EngineKind.X64, a =>
        {
            var loop = a.CreateLabel();
            a.xor(eax, eax);
            a.mov(ecx, 1000);
            a.Label(ref loop);
            a.add(eax, ecx);
            a.sub(ecx, 1);
            a.jnz(loop);
            a.hlt();
        }, x64CodeBytes: 0);
        Assert.Contains("mmap", h.Engine.X64TierProblem);
        Assert.Equal(StopReason.Shutdown, h.Run().Reason);
        Assert.Equal(500500u, h.State[Gpr.Eax]);
        Assert.Equal(0, h.Engine.X64Stats.Compiled);
    }
}
