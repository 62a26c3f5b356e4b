using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Threaded;
using Sharpvisor.Jit.Runtime;
using static Sharpvisor.Jit.X64.Assembler;

namespace Sharpvisor.Jit.X64;

// Journey: x64-compile
/// <summary>
/// Compiles one block's micro-ops into x86-64 machine code, op by op, with
/// the guest's eight registers in host registers r8d-r15d for as long as the
/// code runs, however many blocks it chains through.
/// </summary>
/// <remarks>
/// <para>
/// The contract that keeps this small and exact: the code for op i has
/// exactly the effect of op i's threaded handler on the guest registers, the
/// micro-op temporaries, the lazy-flags record and guest memory; or, before
/// it changes anything, it hands the vCPU to the threaded engine at op i
/// ("resume"). So every uncommon op, every fault and every store over translated
/// code is the threaded engine's business, and the threaded engine's
/// semantics are the only ones: this is a faster way to run them.
/// </para>
/// <para>
/// Temporaries and the flags record stay in <see cref="CpuState"/>, where the
/// threaded engine reads them after a resume. Conditions are evaluated by
/// redoing the recorded compare (or test, or add) on the host at its own
/// operand size, which sets the host's flags exactly as the guest's were, and
/// branching on the same condition code: x86 on x86.
/// </para>
/// Host registers: r8d-r15d guest EAX..EDI; rbx the <see cref="CpuState"/>,
/// with the vCPU's <see cref="X64Frame"/> right after it; ebp the chain
/// budget (a register, so that a loop's back-edge makes no store); rsi guest
/// RAM; rax, rcx, rdx and rdi scratch. No calls are made, so nothing else is saved.
/// </remarks>
internal sealed unsafe partial class BlockCompiler
{
    private readonly Assembler _a = new();
    private readonly ulong _memSize;
    private readonly byte* _codePages, _codeBits;

    // CpuState and ThreadedHeader field offsets, as the code addresses them.
    private static readonly int OffCcOp, OffCcA, OffCcB, OffCcRes, OffCcCarry, OffFlags, OffHTaken, OffHFallthrough, OffHInvalid, OffHX64Code;

    static BlockCompiler()
    {
        CpuState s = default;
        byte* sp = (byte*)&s;
        OffCcOp = (int)((byte*)&s.CcOp - sp);
        OffCcA = (int)((byte*)&s.CcA - sp);
        OffCcB = (int)((byte*)&s.CcB - sp);
        OffCcRes = (int)((byte*)&s.CcRes - sp);
        OffCcCarry = (int)((byte*)&s.CcCarry - sp);
        OffFlags = (int)((byte*)&s.Flags - sp);
        ThreadedHeader h = default;
        byte* hp = (byte*)&h;
        OffHTaken = (int)((byte*)&h.Taken - hp);
        OffHFallthrough = (int)((byte*)&h.Fallthrough - hp);
        OffHInvalid = (int)((byte*)&h.Invalid - hp);
        OffHX64Code = (int)((byte*)&h.X64Code - hp);
    }

    // Per block.
    private Block _block = null!;
    private ThreadedHeader* _header;
    private Label _entry;
    private readonly Dictionary<int, Label> _bails = new();
    /// <summary>The kind and size of the last op in this block that recorded flags, if the record is still its (null: from before the block, or unknown).</summary>
    private (Uop Kind, int Size)? _setter;
    private readonly List<(Label Label, BlockExit How, uint Eip)> _exits = new();

    private readonly X64Block** _indirectCache;

    public BlockCompiler(ulong memSize, byte* codePages, byte* codeBits, X64Block** indirectCache)
    {
        _memSize = memSize;
        _codePages = codePages;
        _codeBits = codeBits;
        _indirectCache = indirectCache;
    }

    /// <summary>Ops of the block the last <see cref="Compile"/> compiled before it handed over (tests compare them with <see cref="UopTable"/>).</summary>
    public int CompiledOps { get; private set; }

    /// <summary>Code compiled by the last <see cref="Compile"/>, relative; jumps to the stubs are in <see cref="Assembler.External"/>.</summary>
    public Assembler Output => _a;

    /// <summary>
    /// Compiles <paramref name="block"/> (whose threaded code has header
    /// <paramref name="header"/>); false if not even its first op can run
    /// here. Ops from the first one the compiler does not handle on are left
    /// to the threaded engine (the code resumes there).
    /// </summary>
    public bool Compile(Block block, ThreadedHeader* header, long exitStub)
    {
        _a.Reset();
        _bails.Clear();
        _exits.Clear();
        _block = block;
        _header = header;
        _setter = null;
        _entry = _a.NewLabel();
        _a.Bind(_entry);

        var ops = block.Ops;
        int compiled = 0;
        for (int i = 0; i < ops.Length; i++)
        {
            // Journey: x64-hypercall
            // The x64 tier compiles no hypercall: at an op it does not
            // compile (int $0x1f among them) the machine code stores the
            // guest's registers and jumps out to the threaded engine, which
            // resumes at that very op with exact state. So in the x64 engine
            // a notify runs the threaded handler, the path bench notify
            // measures.
            if (!Emit(in ops[i], i))
            {
                // Hand over here, with nothing of op i done.
                _a.Jmp(Bail(i));
                break;
            }
            compiled++;
            if (UopTable.Of(ops[i].Kind).Has(UopTraits.Branch))
                break;
        }
        CompiledOps = compiled;
        if (compiled == 0)
            return false;

        // Out of line: the hand-overs to the threaded engine.
        foreach (var (index, label) in _bails)
        {
            _a.Bind(label);
            _a.StoreImm(4, FrameField(X64Frame.OpIndexOffset), (uint)index);
            _a.Mov32(Reg.Rax, X64Frame.Resume);
            _a.JmpExternal(exitStub);
        }
        foreach (var (label, how, eip) in _exits)
        {
            _a.Bind(label);
            _a.StoreImm(4, FrameField(X64Frame.HowOffset), (uint)how);
            _a.StoreImm(4, FrameField(X64Frame.EipOffset), eip);
            _a.Mov32(Reg.Rax, X64Frame.Exit);
            _a.JmpExternal(exitStub);
        }
        _a.ResolveLabels();
        return true;
    }

    private Label Bail(int index)
    {
        if (!_bails.TryGetValue(index, out var l))
            _bails[index] = l = _a.NewLabel();
        return l;
    }

    // ---- guest slots ----

    private static bool InReg(int slot) => slot < 8;

    private static Reg Host(int slot) => (Reg)((int)Reg.R8 + slot);

    private static Mem Slot(int slot) => new(Reg.Rbx, slot * 4);

    private static Mem State(int offset) => new(Reg.Rbx, offset);

    /// <summary>A field of the vCPU's <see cref="X64Frame"/>, which sits right after its <see cref="CpuState"/>.</summary>
    private static Mem FrameField(int offset) => new(Reg.Rbx, X64Frame.OffsetFromState + offset);

    /// <summary>dst = slot.</summary>
    private void Get(Reg dst, int slot)
    {
        if (InReg(slot)) { if (Host(slot) != dst) _a.Mov(4, dst, Host(slot)); }
        else _a.Load(4, dst, Slot(slot));
    }

    /// <summary>slot = src.</summary>
    private void Put(int slot, Reg src)
    {
        if (InReg(slot)) { if (Host(slot) != src) _a.Mov(4, Host(slot), src); }
        else _a.Store(4, Slot(slot), src);
    }

    /// <summary>The register holding a slot's value: its host register, or <paramref name="scratch"/> loaded with it.</summary>
    private Reg Use(int slot, Reg scratch)
    {
        if (InReg(slot)) return Host(slot);
        _a.Load(4, scratch, Slot(slot));
        return scratch;
    }

    // ---- the ops ----

    private bool Emit(in MicroOp op, int index)
    {
        switch (op.Kind)
        {
            case Uop.Mov: return EmitMov(in op);
            case Uop.Ext: return EmitExt(in op);
            case Uop.Merge: return EmitMerge(in op);
            case Uop.Lea: return EmitLea(in op);
            case Uop.Load: return EmitLoad(in op, index);
            case Uop.Store: return EmitStore(in op, index);
            case Uop.LoadAlu: return EmitLoadAlu(in op, index);
            case Uop.Add or Uop.Sub or Uop.And or Uop.Or or Uop.Xor: return EmitAlu(in op);
            case Uop.Shl or Uop.Shr or Uop.Sar: return EmitShift(in op);
            case Uop.Inc or Uop.Dec: return EmitIncDec(in op, index);
            case Uop.Adc or Uop.Sbb: return EmitAdcSbb(in op, index);
            case Uop.Rol or Uop.Ror: return EmitRotate(in op);
            case Uop.Shld or Uop.Shrd: return EmitDoubleShift(in op);
            case Uop.MulWide: return EmitMulWide(in op);
            case Uop.Bswap: return EmitBswap(in op);
            case Uop.Popf: return EmitPopf(in op);
            case Uop.Not: return EmitNot(in op);
            case Uop.SetCc: return EmitSetCc(in op, index);
            case Uop.CMov: return EmitCMov(in op, index);
            case Uop.Jmp: return EmitJmp(in op);
            case Uop.Jcc: return EmitJcc(in op, index);
            case Uop.AluJcc: return EmitAluJcc(in op);
            case Uop.Mul: return EmitMul(in op);
            case Uop.JmpInd: return EmitJmpInd(in op, index);
            default:
                // Everything else (calls to the host,
                // string ops, divides...) is the threaded engine's.
                return false;
        }
    }

    // Journey: x64-chain
    /// <summary>
    /// Leaves the block by exit <paramref name="how"/> for <paramref name="eip"/>.
    /// If the threaded link of that exit leads to a block that has machine
    /// code too, and the budget, the RCU kick and the block's validity allow
    /// (the threaded engine's own test), jumps straight into it with the
    /// guest registers still in host registers; a loop back to this block's
    /// start is a direct jump. Otherwise returns to the threaded engine,
    /// which follows the same link or goes back to the dispatcher.
    /// </summary>
    private void Leave(BlockExit how, uint eip)
    {
        Label exit = _a.NewLabel();
        _exits.Add((exit, how, eip));
        if (eip == _block.Start)
        {
            _a.Mov64(Reg.Rax, (long)_header);
            _a.AluMI(Alu.Cmp, 4, new Mem(Reg.Rax, OffHInvalid), 0);
            _a.Jcc(Cond.NE, exit);
            SpendBudget(exit);
            _a.Jmp(_entry);
            return;
        }
        int hdr = sizeof(ThreadedHeader);
        _a.Mov64(Reg.Rax, (long)_header + (how == BlockExit.Taken ? OffHTaken : OffHFallthrough));
        _a.Load(8, Reg.Rax, new Mem(Reg.Rax));            // the successor's first threaded op, or null
        _a.Test(8, Reg.Rax, Reg.Rax);
        _a.Jcc(Cond.E, exit);
        _a.Load(8, Reg.Rdx, new Mem(Reg.Rax, OffHX64Code - hdr));
        _a.Test(8, Reg.Rdx, Reg.Rdx);
        _a.Jcc(Cond.E, exit);
        _a.AluMI(Alu.Cmp, 4, new Mem(Reg.Rax, OffHInvalid - hdr), 0);
        _a.Jcc(Cond.NE, exit);
        SpendBudget(exit);
        _a.Lea(8, Reg.Rax, new Mem(Reg.Rax, -hdr));
        _a.Store(8, FrameField(X64Frame.HeaderOffset), Reg.Rax);
        _a.JmpReg(Reg.Rdx);
    }

    /// <summary>Takes one chained entry from the budget, or goes to <paramref name="exit"/> if none is left or the vCPU was kicked.</summary>
    private void SpendBudget(Label exit)
    {
        _a.Test(4, Reg.Rbp, Reg.Rbp);
        _a.Jcc(Cond.LE, exit);
        _a.Load(8, Reg.Rcx, FrameField(X64Frame.KickOffset));
        _a.AluMI(Alu.Cmp, 4, new Mem(Reg.Rcx), 0);
        _a.Jcc(Cond.NE, exit);
        _a.AluRI(Alu.Sub, 4, Reg.Rbp, 1);
    }
}
