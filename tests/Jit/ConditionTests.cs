using System.Numerics;
using Iced.Intel;
using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.Runtime;
using static Iced.Intel.AssemblerRegisters;

namespace Sharpvisor.Tests.Jit;

/// <summary>
/// setcc after `test` for all 16 conditions: the engines answer these from the
/// logic op's result without computing flags, so check them against the
/// definitions (CF = OF = 0, ZF, SF, PF of the result).
/// </summary>
public class ConditionTests
{
    public static TheoryData<EngineKind, uint, uint> Cases()
    {
        var data = new TheoryData<EngineKind, uint, uint>();
        uint[] values = [0, 1, 3, 0x80, 0xff, 0x7fffffff, 0x80000000, 0xffffffff, 0x12345678];
        foreach (var kind in new[] { EngineKind.Threaded, EngineKind.Il, EngineKind.X64 })
            foreach (uint a in values)
                foreach (uint b in new uint[] { 0xffffffff, 0x80000001, 0xfe })
                    data.Add(kind, a, b);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void SetccAfterTest_MatchesTheDefinitions(EngineKind kind, uint a, uint b)
    {
        GuestHarness.SkipIfUnavailable(kind);
        using var h = new GuestHarness(kind, asm =>
        {
            // One byte per condition at 0x8000 + cc, set after `test eax, ebx`.
            // Run twice: the second pass goes through compiled code for the IL engine.
            var loop = asm.CreateLabel();
            asm.mov(ebp, 80);
            asm.Label(ref loop);
            asm.mov(eax, a);
            asm.mov(ebx, b);
            for (int cc = 0; cc < 16; cc++)
            {
                asm.test(eax, ebx);
                Setcc(asm, cc);
                asm.mov(__byte_ptr[0x8000 + cc], cl);
            }
            asm.dec(ebp);
            asm.jnz(loop);
            asm.hlt();
        }, hotThreshold: 4);
        Assert.Equal(StopReason.Shutdown, h.Run().Reason);
        uint res = a & b;
        bool zf = res == 0, sf = (int)res < 0, pf = (BitOperations.PopCount(res & 0xff) & 1) == 0;
        bool[] expected =
        [
            false, true,            // o, no   (OF = 0)
            false, true,            // b, ae   (CF = 0)
            zf, !zf,                // e, ne
            zf, !zf,                // be, a   (CF = 0)
            sf, !sf,                // s, ns
            pf, !pf,                // p, np
            sf, !sf,                // l, ge   (OF = 0)
            zf || sf, !(zf || sf),  // le, g
        ];
        for (int cc = 0; cc < 16; cc++)
            Assert.True((h.Read32((uint)(0x8000 + cc)) & 0xff) == (expected[cc] ? 1u : 0u), $"cc {cc} after test 0x{a:x8}, 0x{b:x8}");
    }

    private static void Setcc(Assembler asm, int cc)
    {
        switch (cc)
        {
            case 0: asm.seto(cl); break;
            case 1: asm.setno(cl); break;
            case 2: asm.setb(cl); break;
            case 3: asm.setae(cl); break;
            case 4: asm.sete(cl); break;
            case 5: asm.setne(cl); break;
            case 6: asm.setbe(cl); break;
            case 7: asm.seta(cl); break;
            case 8: asm.sets(cl); break;
            case 9: asm.setns(cl); break;
            case 10: asm.setp(cl); break;
            case 11: asm.setnp(cl); break;
            case 12: asm.setl(cl); break;
            case 13: asm.setge(cl); break;
            case 14: asm.setle(cl); break;
            default: asm.setg(cl); break;
        }
    }
}
