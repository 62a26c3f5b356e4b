using Sharpvisor.Jit.IL;
using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Jit.X64;
using Xunit;

namespace Sharpvisor.Tests.Jit;

/// <summary>
/// The micro-op table against the code it describes: every op has a row, and
/// each backend compiles, or hands to the threaded engine, exactly the ops its
/// column says (found by compiling blocks that hold the op in many forms).
/// </summary>
public sealed unsafe class UopTableTests
{
    public static TheoryData<Uop> AllOps
    {
        get
        {
            var data = new TheoryData<Uop>();
            foreach (var k in Enum.GetValues<Uop>()) data.Add(k);
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(AllOps))]
    public void EveryMicroOp_HasARow(Uop kind) =>
        Assert.True(UopTable.Of(kind).Kind == kind, $"{kind} has no row in IR/UopTable.cs");

    [Theory]
    [MemberData(nameof(AllOps))]
    public void X64Tier_CompilesOrHandsOverEachOp_AsTheTableSays(Uop kind)
    {
        GuestHarness.SkipIfUnavailable(EngineKind.X64);
        using var h = new GuestHarness(EngineKind.Threaded, a => a.hlt());
        var compiler = new BlockCompiler(h.Engine.Memory.Size, h.Engine.CodePages, h.Engine.CodeBits, null);
        var header = stackalloc byte[256];
        int compiled = 0, total = 0;
        foreach (var (block, at) in Blocks(kind))
        {
            compiler.Compile(block, (Sharpvisor.Jit.Threaded.ThreadedHeader*)header, exitStub: 0x1000);
            total++;
            if (compiler.CompiledOps > at) compiled++;
        }
        Assert.Equal(UopTable.Of(kind).X64, Use(compiled, total));
    }

    [Theory]
    [MemberData(nameof(AllOps))]
    public void IlRegion_CompilesOrHandsOverEachOp_AsTheTableSays(Uop kind)
    {
        GuestHarness.SkipIfUnavailable(EngineKind.Il);
        using var h = new GuestHarness(EngineKind.Il, a => a.hlt());
        int compiled = 0, total = 0;
        foreach (var (block, at) in Blocks(kind))
        {
            var emitter = new RegionEmitter(h.Vcpu, [block]);
            emitter.Compile();
            total++;
            if (!emitter.HandedOver.Contains((0, at))) compiled++;
        }
        Assert.Equal(UopTable.Of(kind).Il, Use(compiled, total));
    }

    private static BackendUse Use(int compiled, int total) =>
        compiled == total ? BackendUse.Compiled : compiled == 0 ? BackendUse.Threaded : BackendUse.Partly;

    /// <summary>
    /// Blocks that hold <paramref name="kind"/> in every form that a backend
    /// may treat differently (size, flags, immediate, condition, sub-kind),
    /// alone and after the flag setters a backend may know, each with the
    /// index of the op.
    /// </summary>
    private static IEnumerable<(Block Block, int At)> Blocks(Uop kind)
    {
        MicroOp[][] before =
        [
            [],
            [new MicroOp { Kind = Uop.Sub, Flags = UopFlags.SetFlags | UopFlags.BImm, Size = 4, D = 4, A = 4, Imm = 1, Eip = GuestHarness.CodeBase }],
            [new MicroOp { Kind = Uop.Add, Flags = UopFlags.SetFlags | UopFlags.BImm, Size = 4, D = 4, A = 4, Imm = 1, Eip = GuestHarness.CodeBase }],
            [new MicroOp { Kind = Uop.Shl, Flags = UopFlags.SetFlags | UopFlags.BImm, Size = 4, D = 4, A = 4, Imm = 1, Eip = GuestHarness.CodeBase }],
        ];
        foreach (var prefix in before)
            foreach (var op in Forms(kind))
            {
                var ops = new List<MicroOp>(prefix) { op };
                if (!UopTable.Of(kind).EndsBlock)
                    ops.Add(new MicroOp { Kind = Uop.Jmp, Imm = GuestHarness.CodeBase + 0x100, Eip = op.Eip, Next = op.Next });
                yield return (new Block(GuestHarness.CodeBase, GuestHarness.CodeBase + 16, [.. ops], [new GuestFault(FaultKind.UnsupportedInstruction, GuestHarness.CodeBase, null, null, [])], 2), prefix.Length);
            }
    }

    private static IEnumerable<MicroOp> Forms(Uop kind)
    {
        int[] sizes = kind is Uop.Ext or Uop.Merge ? [1, 2] : [1, 2, 4];
        int subKinds = kind switch
        {
            Uop.LoadAlu => 5,
            Uop.AluJcc => 2,
            Uop.String => 5,
            Uop.Atomic => Enum.GetValues<AtomicOp>().Length,
            Uop.FlagOp => 7,
            Uop.Bt or Uop.JmpCx => 4,
            Uop.SetCc or Uop.CMov or Uop.Jcc => 16,
            _ => 1,
        };
        UopFlags[] extras = kind switch
        {
            Uop.Ext or Uop.Merge or Uop.Load => [UopFlags.None, UopFlags.Signed, UopFlags.High8],
            Uop.Mul or Uop.MulWide or Uop.Div => [UopFlags.None, UopFlags.Signed],
            Uop.String => [UopFlags.None, UopFlags.Rep, UopFlags.RepNe],
            Uop.Shld or Uop.Shrd => [UopFlags.None, UopFlags.CountImm],
            Uop.Jmp or Uop.JmpInd => [UopFlags.None, UopFlags.Call],
            _ => [UopFlags.None],
        };
        Uop[] aluKinds = [Uop.Add, Uop.Sub, Uop.And, Uop.Or, Uop.Xor];
        foreach (int size in sizes)
            foreach (var extra in extras)
                foreach (bool setFlags in new[] { false, true })
                    foreach (bool imm in new[] { false, true })
                        foreach (uint count in imm ? new uint[] { 0, 1, 31 } : new uint[] { 0 })
                            for (int sub = 0; sub < subKinds; sub++)
                            {
                                if (extra == UopFlags.High8 && size != 1) continue;
                                var op = new MicroOp
                                {
                                    Kind = kind, Size = (byte)size, D = 0, A = 1, B = 2, Base = 3, Index = MicroOp.Zero,
                                    Flags = extra | (setFlags ? UopFlags.SetFlags : 0) | (imm ? UopFlags.BImm : 0),
                                    Imm = kind is Uop.Jmp or Uop.Jcc or Uop.JmpCx ? GuestHarness.CodeBase + 0x40 : count,
                                    Disp = kind == Uop.AluJcc ? GuestHarness.CodeBase + 0x40 : 0x100,
                                    Cc = (byte)sub,
                                    Eip = GuestHarness.CodeBase, Next = GuestHarness.CodeBase + 4,
                                };
                                if (kind == Uop.LoadAlu) op.Cc = (byte)aluKinds[sub];
                                if (kind == Uop.AluJcc) { op.Scale = (byte)(sub == 0 ? Uop.Sub : Uop.And); op.Cc = 4; }
                                if (kind == Uop.Fault) op.Imm = 0;
                                if (kind == Uop.Enter) op.Cc = 2;
                                yield return op;
                            }
    }
}
