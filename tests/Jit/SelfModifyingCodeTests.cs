using Iced.Intel;
using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.Runtime;
using static Iced.Intel.AssemblerRegisters;

namespace Sharpvisor.Tests.Jit;

/// <summary>
/// Self-modifying code: stores check which bytes were translated, and a write
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

    /// <summary>
    /// Stores to data in the pages of running code, byte for byte beside it:
    /// a dword squeezed between two blocks, and a dword straddling from one
    /// page of code into another. Only bytes that were translated count, so
    /// no block is dropped, none is translated twice, and no store even
    /// takes the slow path.
    /// </summary>
    [Theory]
    [MemberData(nameof(GuestHarness.Kinds), MemberType = typeof(GuestHarness))]
    public unsafe void StoresBesideCode_InItsPages_InvalidateNothing(EngineKind kind)
    {
        GuestHarness.SkipIfUnavailable(kind);
        const uint data = GuestHarness.CodeBase + 2;   // between "jmp over" and the loop
        const uint straddle = 0x1FFE;                  // [0x1FFE, 0x2002): the loop's page into f's, which starts at 0x2004
        using var h = new GuestHarness(kind, a =>
        {
            var over = a.CreateLabel();
            var loop = a.CreateLabel();
            a.jmp(over);                               // eb 04
            a.dd(0);
            a.Label(ref over);
            a.xor(esi, esi);
            a.mov(ecx, 1000);
            a.Label(ref loop);
            a.inc(__dword_ptr[data]);
            a.mov(__dword_ptr[straddle], ecx);
            a.mov(ebx, 0x2004);
            a.call(ebx);                               // f: inc esi; ret
            a.dec(ecx);
            a.jne(loop);
            a.mov(eax, __dword_ptr[data]);
            a.hlt();
        }, hotThreshold: 8);
        Assert.Equal(0xEB, h.Memory.Base[GuestHarness.CodeBase]); // the short jmp: data starts where its block ends
        h.Memory.Base[0x2004] = 0x46; // inc esi
        h.Memory.Base[0x2005] = 0xC3; // ret
        var exit = h.Run();
        Assert.Equal(StopReason.Shutdown, exit.Reason);
        Assert.Equal(1000u, h.State[Gpr.Eax]);
        Assert.Equal(1000u, h.State[Gpr.Esi]);
        var stats = h.Engine.Stats;
        Assert.Equal(0, stats.Invalidations);
        Assert.Equal(0, stats.CodeWrites);
        Assert.Equal(h.Engine.BlockStarts.Count(), stats.Translations);
    }

    /// <summary>
    /// A store of one byte over the last byte of a block (the displacement
    /// of the short jmp that ends it) drops the block: the next pass jumps
    /// where the new byte says.
    /// </summary>
    [Theory]
    [MemberData(nameof(GuestHarness.Kinds), MemberType = typeof(GuestHarness))]
    public unsafe void StoreOverTheLastByteOfABlock_InvalidatesIt(EngineKind kind)
    {
        GuestHarness.SkipIfUnavailable(kind);
        const uint target = GuestHarness.CodeBase + 4;  // "add edi, 1; jmp short back"
        const uint rel8 = target + 4;                   // the jmp's displacement, the block's last byte
        using var h = new GuestHarness(kind, a =>
        {
            var t = a.CreateLabel();
            var back = a.CreateLabel();
            var back2 = a.CreateLabel();
            var done = a.CreateLabel();
            a.xor(edx, edx);
            a.xor(edi, edi);
            a.Label(ref t);
            a.add(edi, 1);
            a.jmp(back);                                // eb 00
            a.Label(ref back);
            a.add(edx, 1);                              // 3 bytes: skipped once the displacement is 3
            a.Label(ref back2);
            a.cmp(edi, 2);
            a.je(done);
            a.mov(__byte_ptr[rel8], 3);
            a.jmp(t);
            a.Label(ref done);
            a.hlt();
        }, hotThreshold: 1);
        Assert.Equal(0xEB, h.Memory.Base[rel8 - 1]);
        Assert.Equal(0x00, h.Memory.Base[rel8]);
        var exit = h.Run();
        Assert.Equal(StopReason.Shutdown, exit.Reason);
        Assert.Equal(2u, h.State[Gpr.Edi]);
        Assert.Equal(1u, h.State[Gpr.Edx]); // the second pass jumped over "add edx, 1"
        Assert.True(h.Engine.Stats.Invalidations >= 1);
    }

    /// <summary>
    /// A dword store straddling from a page of data into the first bytes of
    /// a function (its opcode and the low half of its imm32): the write into
    /// the code is seen on every engine, and the next call runs it.
    /// </summary>
    [Theory]
    [MemberData(nameof(GuestHarness.Kinds), MemberType = typeof(GuestHarness))]
    public unsafe void StoreStraddlingIntoTheFirstBytesOfAFunction_TakesEffect(EngineKind kind)
    {
        GuestHarness.SkipIfUnavailable(kind);
        using var h = new GuestHarness(kind, a =>
        {
            var loop = a.CreateLabel();
            a.xor(edi, edi);
            a.mov(esi, 100);
            a.Label(ref loop);
            a.mov(edx, esi);
            a.shl(edx, 16);
            a.or(edx, 0xB800);
            a.mov(__dword_ptr[0x1FFF], edx);            // 00 B8 (esi low 16 bits): f becomes "mov eax, esi & 0xffff"
            a.mov(ebx, 0x2000);
            a.call(ebx);
            a.add(edi, eax);
            a.sub(esi, 1);
            a.jnz(loop);
            a.hlt();
        }, hotThreshold: 8);
        byte[] f = [0xB8, 0x00, 0x00, 0x00, 0x00, 0xC3]; // mov eax, 0; ret
        f.CopyTo(new Span<byte>(h.Memory.Base + 0x2000, f.Length));
        var exit = h.Run();
        Assert.Equal(StopReason.Shutdown, exit.Reason);
        Assert.Equal((uint)(100 * 101 / 2), h.State[Gpr.Edi]);
        Assert.True(h.Engine.Stats.Invalidations >= 99);
    }
}
