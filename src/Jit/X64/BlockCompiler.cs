using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Threaded;
using static Sharpvisor.Jit.X64.Assembler;

using Sharpvisor.Jit.Runtime;

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
internal sealed unsafe class BlockCompiler
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

    private void Record(LazyOp op, int size, Reg a, Reg? b, uint bImm, Reg res)
    {
        _a.Store(4, State(OffCcA), a);
        if (b is { } rb) _a.Store(4, State(OffCcB), rb);
        else _a.StoreImm(4, State(OffCcB), bImm);
        _a.Store(4, State(OffCcRes), res);
        _a.StoreImm(4, State(OffCcOp), LazyFlags.Pack(op, size));
    }

    /// <summary>
    /// ecx = the op's effective address, wrapped at 32 bits as the guest's
    /// is (lea with the 0x67 prefix); rax and rcx may hold temporaries on the way.
    /// </summary>
    private void Address(in MicroOp op)
    {
        Reg b = op.Base == MicroOp.Zero ? Reg.None : Use(op.Base, Reg.Rcx);
        Reg x = op.Index == MicroOp.Zero ? Reg.None : Use(op.Index, Reg.Rax);
        if (b == Reg.None && x == Reg.None)
            _a.Mov32(Reg.Rcx, op.Disp);
        else if (b == Reg.None && op.Scale == 0)
            _a.Lea(4, Reg.Rcx, new Mem(x, (int)op.Disp, Addr32: true));
        else
            _a.Lea(4, Reg.Rcx, new Mem(b, (int)op.Disp, x, op.Scale, Addr32: true));
    }

    /// <summary>Hands over at op <paramref name="index"/> unless [ecx, ecx + size) is RAM.</summary>
    private void CheckBounds(int size, int index)
    {
        _a.AluRI(Alu.Cmp, 4, Reg.Rcx, (uint)(_memSize - (ulong)size));
        _a.Jcc(Cond.A, Bail(index));
    }

    /// <summary>
    /// Hands over at op <paramref name="index"/> if the store at ecx
    /// overwrites translated code (<see cref="Runtime.ExecutionEngine.StoreHitsCode"/>,
    /// in line): the page bytes of its first and last byte, and only if one
    /// is set, the code bits of the bytes it writes. Keeps ecx; rax, rdx and
    /// rdi are scratch.
    /// </summary>
    private void CheckCodePages(int size, int index)
    {
        Label plain = _a.NewLabel();
        _a.Mov64(Reg.Rdi, (long)_codePages);
        _a.Mov(4, Reg.Rdx, Reg.Rcx);
        _a.ShiftRI(Shift.Shr, Reg.Rdx, 12);
        _a.ExtendLoad(Reg.Rax, new Mem(Reg.Rdi, 0, Reg.Rdx), 1, false);
        if (size > 1)
        {
            _a.Lea(4, Reg.Rdx, new Mem(Reg.Rcx, size - 1));
            _a.ShiftRI(Shift.Shr, Reg.Rdx, 12);
            _a.AluRM(Alu.Or, 1, Reg.Rax, new Mem(Reg.Rdi, 0, Reg.Rdx));
        }
        _a.Test(1, Reg.Rax, Reg.Rax);
        _a.Jcc(Cond.E, plain);
        // A page of code: the bits of [ecx, ecx + size), out of the word at ecx >> 3.
        _a.Mov64(Reg.Rdi, (long)_codeBits);
        _a.Mov(4, Reg.Rdx, Reg.Rcx);
        _a.ShiftRI(Shift.Shr, Reg.Rdx, 3);
        _a.ExtendLoad(Reg.Rdx, new Mem(Reg.Rdi, 0, Reg.Rdx), 2, false);
        _a.Mov(4, Reg.Rax, Reg.Rcx);
        _a.AluRI(Alu.And, 4, Reg.Rcx, 7);
        _a.ShiftRCl(Shift.Shr, Reg.Rdx);
        _a.Mov(4, Reg.Rcx, Reg.Rax);
        _a.AluRI(Alu.And, 4, Reg.Rdx, (1u << size) - 1);
        _a.Jcc(Cond.NE, Bail(index));
        _a.Bind(plain);
    }

    private static Mem Guest(Reg ea) => new(Reg.Rsi, 0, ea);

    // ---- the ops ----

    private bool Emit(in MicroOp op, int index)
    {
        bool flags = op.SetsFlags;
        switch (op.Kind)
        {
            case Uop.Mov:
                if (op.BIsImm)
                {
                    if (InReg(op.D)) _a.Mov32(Host(op.D), op.Imm);
                    else _a.StoreImm(4, Slot(op.D), op.Imm);
                }
                else
                {
                    Reg v = InReg(op.D) ? Host(op.D) : Reg.Rax;
                    Get(v, op.B);
                    Put(op.D, v);
                }
                return true;

            case Uop.Ext:
            {
                bool signed = (op.Flags & UopFlags.Signed) != 0;
                Reg dst = InReg(op.D) ? Host(op.D) : Reg.Rax;
                if ((op.Flags & UopFlags.High8) != 0)
                {
                    Get(Reg.Rax, op.A);
                    _a.ShiftRI(Shift.Shr, Reg.Rax, 8);
                    _a.Extend(dst, Reg.Rax, 1, signed);
                }
                else
                {
                    _a.Extend(dst, Use(op.A, Reg.Rax), op.Size, signed);
                }
                Put(op.D, dst);
                return true;
            }

            case Uop.Merge:
            {
                Get(Reg.Rax, op.D);
                Get(Reg.Rdx, op.A);
                if ((op.Flags & UopFlags.High8) != 0)
                {
                    _a.Extend(Reg.Rdx, Reg.Rdx, 1, false);
                    _a.ShiftRI(Shift.Shl, Reg.Rdx, 8);
                    _a.AluRI(Alu.And, 4, Reg.Rax, 0xFFFF00FFu);
                }
                else
                {
                    _a.Extend(Reg.Rdx, Reg.Rdx, op.Size, false);
                    _a.AluRI(Alu.And, 4, Reg.Rax, op.Size == 1 ? 0xFFFFFF00u : 0xFFFF0000u);
                }
                _a.AluRR(Alu.Or, 4, Reg.Rax, Reg.Rdx);
                Put(op.D, Reg.Rax);
                return true;
            }

            case Uop.Lea:
                Address(in op);
                Put(op.D, Reg.Rcx);
                return true;

            case Uop.Load:
            {
                Address(in op);
                CheckBounds(op.Size, index);
                Reg dst = InReg(op.D) ? Host(op.D) : Reg.Rax;
                if (op.Size == 4) _a.Load(4, dst, Guest(Reg.Rcx));
                else _a.ExtendLoad(dst, Guest(Reg.Rcx), op.Size, (op.Flags & UopFlags.Signed) != 0);
                Put(op.D, dst);
                return true;
            }

            case Uop.Store:
            {
                Address(in op);
                CheckBounds(op.Size, index);
                CheckCodePages(op.Size, index);
                if (op.BIsImm) _a.StoreImm(op.Size, Guest(Reg.Rcx), op.Imm);
                else _a.Store(op.Size, Guest(Reg.Rcx), Use(op.A, Reg.Rax));
                return true;
            }

            case Uop.LoadAlu:
            {
                if ((Uop)op.Cc is not (Uop.Add or Uop.Sub or Uop.And or Uop.Or or Uop.Xor))
                    return false;
                Address(in op);
                CheckBounds(op.Size, index);
                if (op.Size == 4) _a.Load(4, Reg.Rdx, Guest(Reg.Rcx));
                else _a.ExtendLoad(Reg.Rdx, Guest(Reg.Rcx), op.Size, false);
                Get(Reg.Rax, op.A);
                Binary((Uop)op.Cc, op.Size, flags, Reg.Rdx, 0, op.D);
                return true;
            }

            case Uop.Add or Uop.Sub or Uop.And or Uop.Or or Uop.Xor:
            {
                if (!flags && op.D == op.A && InReg(op.D))
                {
                    // In place, as the guest wrote it: add r11d, 1.
                    if (op.BIsImm) _a.AluRI(AluOf(op.Kind), 4, Host(op.D), op.Imm);
                    else _a.AluRR(AluOf(op.Kind), 4, Host(op.D), Use(op.B, Reg.Rdx));
                    return true;
                }
                Reg? b = op.BIsImm ? null : Use(op.B, Reg.Rdx);
                Get(Reg.Rax, op.A);
                Binary(op.Kind, op.Size, flags, b, op.Imm, op.D);
                return true;
            }

            case Uop.Shl or Uop.Shr or Uop.Sar:
                return Shifted(in op, flags);

            case Uop.Inc or Uop.Dec:
                if (flags)
                {
                    // CF carries over: the record keeps the carry-in.
                    if (!CarryToHost(index))
                        return false;
                    _a.SetCc(Cond.B, Reg.Rcx);
                    Get(Reg.Rax, op.A);
                    _a.Mov(4, Reg.Rdx, Reg.Rax);
                    _a.AluRI(op.Kind == Uop.Inc ? Alu.Add : Alu.Sub, 4, Reg.Rax, 1);
                    _a.Extend(Reg.Rcx, Reg.Rcx, 1, false);
                    Record(op.Kind == Uop.Inc ? LazyOp.Inc : LazyOp.Dec, op.Size, Reg.Rdx, null, 1, Reg.Rax);
                    _a.Store(4, State(OffCcCarry), Reg.Rcx);
                    _setter = (op.Kind, op.Size);
                    Put(op.D, Reg.Rax);
                    return true;
                }
                Get(Reg.Rax, op.A);
                _a.AluRI(op.Kind == Uop.Inc ? Alu.Add : Alu.Sub, 4, Reg.Rax, 1);
                Put(op.D, Reg.Rax);
                return true;

            case Uop.Adc or Uop.Sbb:
            {
                // The guest's CF into the host's, then the host's own adc/sbb on all 32 bits.
                if (!CarryToHost(index))
                    return false;
                _a.SetCc(Cond.B, Reg.Rcx);
                Reg b = Reg.Rdx;
                if (op.BIsImm) _a.Mov32(Reg.Rdx, op.Imm);
                else b = Use(op.B, Reg.Rdx);
                Get(Reg.Rax, op.A);
                if (flags) _a.Mov(4, Reg.Rdi, Reg.Rax);
                _a.AluRR(op.Kind == Uop.Adc ? Alu.Adc : Alu.Sbb, 4, Reg.Rax, b);
                if (flags)
                {
                    _a.Extend(Reg.Rcx, Reg.Rcx, 1, false);
                    Record(op.Kind == Uop.Adc ? LazyOp.Adc : LazyOp.Sbb, op.Size, Reg.Rdi, b, 0, Reg.Rax);
                    _a.Store(4, State(OffCcCarry), Reg.Rcx);
                    _setter = (op.Kind, op.Size);
                }
                Put(op.D, Reg.Rax);
                return true;
            }

            case Uop.Rol or Uop.Ror:
            {
                // Flags read later (rare: gcc's rotates are followed by ops
                // that set them all) are the threaded engine's; without, the
                // host's rotate at the op's size, zero-extended as the
                // handler's result is.
                if (flags)
                    return false;
                Shift kind = op.Kind == Uop.Rol ? Shift.Rol : Shift.Ror;
                if (op.BIsImm)
                {
                    Get(Reg.Rax, op.A);
                    int n = (int)(op.Imm & 31);
                    if (n != 0) _a.ShiftRI(kind, Reg.Rax, n, op.Size);
                }
                else
                {
                    Get(Reg.Rcx, op.B);
                    Get(Reg.Rax, op.A);
                    _a.ShiftRCl(kind, Reg.Rax, op.Size);
                }
                if (op.Size != 4) _a.Extend(Reg.Rax, Reg.Rax, op.Size, false);
                Put(op.D, Reg.Rax);
                return true;
            }

            case Uop.Shld or Uop.Shrd:
            {
                // 32 bits without flags; 16-bit counts past 16 and the flags are the threaded engine's.
                if (flags || op.Size != 4 || op.BIsImm)
                    return false;
                bool left = op.Kind == Uop.Shld;
                if ((op.Flags & UopFlags.CountImm) != 0)
                {
                    Get(Reg.Rdx, op.B);
                    Get(Reg.Rax, op.A);
                    int n = (int)(op.Imm & 31);
                    if (n != 0) _a.DoubleShiftRI(left, Reg.Rax, Reg.Rdx, n);
                }
                else
                {
                    Get(Reg.Rcx, op.Base);
                    Get(Reg.Rdx, op.B);
                    Get(Reg.Rax, op.A);
                    _a.DoubleShiftRCl(left, Reg.Rax, Reg.Rdx);
                }
                Put(op.D, Reg.Rax);
                return true;
            }

            case Uop.MulWide:
            {
                // The host's one-operand mul/imul at the op's size: CF = OF
                // are the overflow the record keeps.
                bool signed = (op.Flags & UopFlags.Signed) != 0;
                if (op.BIsImm) _a.Mov32(Reg.Rcx, op.Imm);
                else Get(Reg.Rcx, op.B);
                Get(Reg.Rax, op.A);
                _a.MulWide(op.Size, signed, Reg.Rcx);
                if (flags) _a.SetCc(Cond.B, Reg.Rdi);
                if (op.Size == 2)
                {
                    _a.Extend(Reg.Rdx, Reg.Rdx, 2, false);
                    _a.Extend(Reg.Rax, Reg.Rax, 2, false);
                }
                else if (op.Size == 1)
                {
                    _a.Mov(4, Reg.Rdx, Reg.Rax);
                    _a.ShiftRI(Shift.Shr, Reg.Rdx, 8);
                    _a.Extend(Reg.Rdx, Reg.Rdx, 1, false);
                    _a.Extend(Reg.Rax, Reg.Rax, 1, false);
                }
                if (flags)
                {
                    _a.Extend(Reg.Rdi, Reg.Rdi, 1, false);
                    Record(LazyOp.Mul, op.Size, Reg.Rdi, null, 0, Reg.Rax);
                    _setter = null;
                }
                Put(op.D, Reg.Rax);
                Put(op.Base, Reg.Rdx);
                return true;
            }

            case Uop.Bswap:
                Get(Reg.Rax, op.A);
                _a.Bswap(Reg.Rax);
                Put(op.D, Reg.Rax);
                return true;

            case Uop.Popf:
                // EFLAGS from the guest's value; the record then says "materialized".
                Get(Reg.Rax, op.A);
                _a.AluRI(Alu.And, 4, Reg.Rax, Eflags.PopfWritable);
                _a.AluRI(Alu.Or, 4, Reg.Rax, Eflags.Reserved1);
                _a.Store(4, State(OffFlags), Reg.Rax);
                _a.StoreImm(4, State(OffCcOp), (uint)LazyOp.None);
                _setter = null;
                return true;

            case Uop.Not:
                Get(Reg.Rax, op.A);
                _a.Not(Reg.Rax);
                Put(op.D, Reg.Rax);
                return true;

            case Uop.SetCc:
            {
                if (!Condition(index))
                    return false;
                _a.SetCc(op.Cc, Reg.Rax);
                _a.Extend(Reg.Rax, Reg.Rax, 1, false);
                Put(op.D, Reg.Rax);
                return true;
            }

            case Uop.CMov:
            {
                if (!Condition(index))
                    return false;
                Reg d = InReg(op.D) ? Host(op.D) : Reg.Rax;
                Get(d, op.D);
                _a.CMov(op.Cc, d, Use(op.A, Reg.Rdx));
                Put(op.D, d);
                return true;
            }

            case Uop.Jmp:
                Leave(BlockExit.Taken, op.Imm);
                return true;

            case Uop.Jcc:
            {
                if (!Condition(index))
                    return false;
                Branch(op.Cc, op.Imm, op.Next);
                return true;
            }

            case Uop.AluJcc:
            {
                // D = A op B with the record written, then the branch on the
                // same operands at the op's size: cmp for sub, test for and.
                bool sub = op.Scale == (byte)Uop.Sub;
                Get(Reg.Rax, op.A);
                if (op.BIsImm) _a.Mov32(Reg.Rdx, op.Imm);
                else Get(Reg.Rdx, op.B);
                _a.Mov(4, Reg.Rcx, Reg.Rax);
                _a.AluRR(sub ? Alu.Sub : Alu.And, 4, Reg.Rcx, Reg.Rdx);
                // A cmp or test writes a temporary that nothing reads: a
                // block's last op, and temporaries do not outlive their instruction.
                if (op.D < MicroOp.FirstTemp)
                    Put(op.D, Reg.Rcx);
                Record(sub ? LazyOp.Sub : LazyOp.Logic, op.Size, Reg.Rax, Reg.Rdx, 0, Reg.Rcx);
                if (sub) _a.AluRR(Alu.Cmp, op.Size, Reg.Rax, Reg.Rdx);
                else _a.Test(op.Size, Reg.Rcx, Reg.Rcx);
                Branch(op.Cc, op.Disp, op.Next);
                return true;
            }

            case Uop.Mul:
            {
                // The low half is the same signed or not; with flags, CF = OF =
                // "the signed product does not fit", which is what the host's
                // imul sets at 32 bits (16-bit products are the threaded engine's).
                if (flags && op.Size != 4)
                    return false;
                Get(Reg.Rax, op.A);
                if (op.BIsImm) _a.Mov32(Reg.Rdx, op.Imm);
                else Get(Reg.Rdx, op.B);
                _a.Imul(Reg.Rax, Reg.Rdx);
                if (flags)
                {
                    _a.SetCc(Cond.O, Reg.Rcx);
                    _a.Extend(Reg.Rcx, Reg.Rcx, 1, false);
                    Record(LazyOp.Mul, 4, Reg.Rcx, null, 0, Reg.Rax);
                    _setter = null;
                }
                Put(op.D, Reg.Rax);
                return true;
            }

            case Uop.JmpInd:
                Indirect(in op, index);
                return true;

            default:
                // Everything else (calls to the host,
                // string ops, divides...) is the threaded engine's.
                return false;
        }
    }

    private static Alu AluOf(Uop k) => k switch
    {
        Uop.Add => Alu.Add,
        Uop.Sub => Alu.Sub,
        Uop.And => Alu.And,
        Uop.Or => Alu.Or,
        _ => Alu.Xor,
    };

    private static LazyOp LazyOf(Uop k) => k switch
    {
        Uop.Add => LazyOp.Add,
        Uop.Sub => LazyOp.Sub,
        _ => LazyOp.Logic,
    };

    /// <summary>D = eax op (b or imm), all 32 bits as the threaded handler computes it, recording the flags at <paramref name="size"/> if asked.</summary>
    private void Binary(Uop kind, int size, bool flags, Reg? b, uint imm, int d)
    {
        if (flags)
        {
            Reg rb = b ?? Reg.Rdx;
            if (b == null) _a.Mov32(Reg.Rdx, imm);
            _a.Mov(4, Reg.Rcx, Reg.Rax);
            _a.AluRR(AluOf(kind), 4, Reg.Rcx, rb);
            Record(LazyOf(kind), size, Reg.Rax, rb, 0, Reg.Rcx);
            _setter = (kind, size);
            Put(d, Reg.Rcx);
            return;
        }
        if (b is { } r) _a.AluRR(AluOf(kind), 4, Reg.Rax, r);
        else _a.AluRI(AluOf(kind), 4, Reg.Rax, imm);
        Put(d, Reg.Rax);
    }

    /// <summary>Shifts by B &amp; 31, on all 32 bits; a zero count records nothing (the handler's rule).</summary>
    private bool Shifted(in MicroOp op, bool flags)
    {
        Shift kind = op.Kind switch { Uop.Shl => Shift.Shl, Uop.Shr => Shift.Shr, _ => Shift.Sar };
        LazyOp lazy = op.Kind switch { Uop.Shl => LazyOp.Shl, Uop.Shr => LazyOp.Shr, _ => LazyOp.Sar };
        if (op.BIsImm)
        {
            int n = (int)(op.Imm & 31);
            Get(Reg.Rax, op.A);
            if (n == 0)
            {
                Put(op.D, Reg.Rax);
                return true;
            }
            if (flags) _a.Mov(4, Reg.Rdx, Reg.Rax);
            _a.ShiftRI(kind, Reg.Rax, n);
            if (flags)
            {
                Record(lazy, op.Size, Reg.Rdx, null, (uint)n, Reg.Rax);
                _setter = null; // not a compare: conditions after it go by the record at run time
            }
            Put(op.D, Reg.Rax);
            return true;
        }
        Get(Reg.Rcx, op.B);
        _a.AluRI(Alu.And, 4, Reg.Rcx, 31);
        Get(Reg.Rax, op.A);
        _a.Mov(4, Reg.Rdx, Reg.Rax);
        _a.ShiftRCl(kind, Reg.Rax);
        Put(op.D, Reg.Rax);
        if (flags)
        {
            Label done = _a.NewLabel();
            _a.Test(4, Reg.Rcx, Reg.Rcx);
            _a.Jcc(Cond.E, done);
            Record(lazy, op.Size, Reg.Rdx, Reg.Rcx, 0, Reg.Rax);
            _a.Bind(done);
            _setter = null;
        }
        return true;
    }

    /// <summary>
    /// Sets the host flags to the guest's for a condition: redoes the
    /// recorded compare, test or add at its size. For a record from before
    /// the block, checks at run time that it is a 32-bit compare or logic op,
    /// else hands over at op <paramref name="index"/>. False when the record
    /// is known to be of another kind (the threaded engine then evaluates it).
    /// </summary>
    private bool Condition(int index)
    {
        if (_setter is { } s)
            return Redo(s.Kind, s.Size);
        Label go = _a.NewLabel(), notSub = _a.NewLabel();
        _a.Load(4, Reg.Rax, State(OffCcOp));
        _a.AluRI(Alu.Cmp, 4, Reg.Rax, LazyFlags.Pack(LazyOp.Sub, 4));
        _a.Jcc(Cond.NE, notSub);
        _a.Load(4, Reg.Rax, State(OffCcA));
        _a.AluRM(Alu.Cmp, 4, Reg.Rax, State(OffCcB));
        _a.Jmp(go);
        _a.Bind(notSub);
        _a.AluRI(Alu.Cmp, 4, Reg.Rax, LazyFlags.Pack(LazyOp.Logic, 4));
        _a.Jcc(Cond.NE, Bail(index));
        _a.Load(4, Reg.Rax, State(OffCcRes));
        _a.Test(4, Reg.Rax, Reg.Rax);
        _a.Bind(go);
        return true;
    }

    /// <summary>
    /// Sets the host's six arithmetic flags to the guest's by redoing the
    /// recorded op of kind <paramref name="kind"/> at <paramref name="size"/>
    /// on the host (the record holds its operands; adc, sbb, inc and dec get
    /// their carry-in back from the record first). AF after a logic op is
    /// not the guest's, and no condition reads it. False for a record that
    /// is not redone this way.
    /// </summary>
    private bool Redo(Uop kind, int size)
    {
        switch (kind)
        {
            case Uop.Sub:
                _a.Load(4, Reg.Rax, State(OffCcA));
                _a.AluRM(Alu.Cmp, size, Reg.Rax, State(OffCcB));
                return true;
            case Uop.Add:
                _a.Load(4, Reg.Rax, State(OffCcA));
                _a.AluRM(Alu.Add, size, Reg.Rax, State(OffCcB));
                return true;
            case Uop.And or Uop.Or or Uop.Xor:
                _a.Load(4, Reg.Rax, State(OffCcRes));
                _a.Test(size, Reg.Rax, Reg.Rax);
                return true;
            case Uop.Adc or Uop.Sbb:
                _a.BtMI(State(OffCcCarry), 0);
                _a.Load(4, Reg.Rax, State(OffCcA));
                _a.AluRM(kind == Uop.Adc ? Alu.Adc : Alu.Sbb, size, Reg.Rax, State(OffCcB));
                return true;
            case Uop.Inc or Uop.Dec:
                _a.BtMI(State(OffCcCarry), 0);
                _a.Load(4, Reg.Rax, State(OffCcA));
                _a.IncDec(size, kind == Uop.Inc, Reg.Rax);
                return true;
            default:
                return false;
        }
    }

    /// <summary>
    /// Sets the host's CF to the guest's (for adc, sbb, inc and dec): from a record made in this block by redoing it; from a record
    /// made before it, at run time, for materialized flags, a 32-bit
    /// compare or add, a logic op, inc or dec, else hands over at op
    /// <paramref name="index"/>. Clobbers rax. False when the record is
    /// known to be of another kind.
    /// </summary>
    private bool CarryToHost(int index)
    {
        if (_setter is { } s)
            return Redo(s.Kind, s.Size);
        Label done = _a.NewLabel(), notSub = _a.NewLabel(), notAdd = _a.NewLabel(), notLogic = _a.NewLabel(), notNone = _a.NewLabel();
        _a.Load(4, Reg.Rax, State(OffCcOp));
        _a.AluRI(Alu.Cmp, 4, Reg.Rax, LazyFlags.Pack(LazyOp.Sub, 4));
        _a.Jcc(Cond.NE, notSub);
        _a.Load(4, Reg.Rax, State(OffCcA));
        _a.AluRM(Alu.Cmp, 4, Reg.Rax, State(OffCcB));
        _a.Jmp(done);
        _a.Bind(notSub);
        _a.AluRI(Alu.Cmp, 4, Reg.Rax, LazyFlags.Pack(LazyOp.Add, 4));
        _a.Jcc(Cond.NE, notAdd);
        _a.Load(4, Reg.Rax, State(OffCcA));
        _a.AluRM(Alu.Add, 4, Reg.Rax, State(OffCcB));
        _a.Jmp(done);
        _a.Bind(notAdd);
        // The kinds whose CF does not depend on the size: the op's byte alone.
        _a.AluRI(Alu.Cmp, 1, Reg.Rax, (uint)LazyOp.Logic);
        _a.Jcc(Cond.NE, notLogic);
        _a.Test(4, Reg.Rax, Reg.Rax); // CF = 0
        _a.Jmp(done);
        _a.Bind(notLogic);
        _a.AluRI(Alu.Cmp, 1, Reg.Rax, (uint)LazyOp.None);
        _a.Jcc(Cond.NE, notNone);
        _a.BtMI(State(OffFlags), 0);
        _a.Jmp(done);
        _a.Bind(notNone);
        _a.AluRI(Alu.Cmp, 1, Reg.Rax, (uint)LazyOp.Inc);
        Label carry = _a.NewLabel();
        _a.Jcc(Cond.E, carry);
        _a.AluRI(Alu.Cmp, 1, Reg.Rax, (uint)LazyOp.Dec);
        _a.Jcc(Cond.NE, Bail(index));
        _a.Bind(carry);
        _a.BtMI(State(OffCcCarry), 0);
        _a.Bind(done);
        return true;
    }

    /// <summary>The block's two-way end, on host flags already set: condition <paramref name="cc"/> goes to <paramref name="taken"/>.</summary>
    private void Branch(int cc, uint taken, uint fallthrough)
    {
        Label yes = _a.NewLabel();
        _a.Jcc(cc, yes);
        Leave(BlockExit.Fallthrough, fallthrough);
        _a.Bind(yes);
        Leave(BlockExit.Taken, taken);
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

    /// <summary>
    /// A jump through a register (a ret, a call through a pointer, a jump
    /// table): the indirect-jump cache's block for the target, if it is that
    /// block, still valid, and the budget and kick allow; otherwise the
    /// threaded engine's handler takes over at this op (its jump cache, or
    /// the dispatcher).
    /// </summary>
    private void Indirect(in MicroOp op, int index)
    {
        Label bail = Bail(index);
        Get(Reg.Rax, op.A);
        // Vcpu.JumpSlot: (target ^ target >> 12) & 4095.
        _a.Mov(4, Reg.Rcx, Reg.Rax);
        _a.ShiftRI(Shift.Shr, Reg.Rcx, 12);
        _a.AluRR(Alu.Xor, 4, Reg.Rcx, Reg.Rax);
        _a.AluRI(Alu.And, 4, Reg.Rcx, X64Tier.IndirectCacheSize - 1);
        _a.Mov64(Reg.Rdx, (long)_indirectCache);
        _a.Load(8, Reg.Rdx, new Mem(Reg.Rdx, 0, Reg.Rcx, 3));
        _a.Test(8, Reg.Rdx, Reg.Rdx);
        _a.Jcc(Cond.E, bail);
        _a.AluRM(Alu.Cmp, 4, Reg.Rax, new Mem(Reg.Rdx, X64Block.StartOffset));
        _a.Jcc(Cond.NE, bail);
        _a.AluMI(Alu.Cmp, 4, new Mem(Reg.Rdx, X64Block.InvalidOffset), 0);
        _a.Jcc(Cond.NE, bail);
        SpendBudget(bail);
        _a.Load(8, Reg.Rax, new Mem(Reg.Rdx, X64Block.HeaderOffset));
        _a.Store(8, FrameField(X64Frame.HeaderOffset), Reg.Rax);
        _a.Load(8, Reg.Rax, new Mem(Reg.Rdx, X64Block.CodeOffset));
        _a.JmpReg(Reg.Rax);
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

/// <summary>x86 condition codes, in encoding order.</summary>
internal static class Cond
{
    public const int O = 0, NO = 1, B = 2, AE = 3, E = 4, NE = 5, BE = 6, A = 7, S = 8, NS = 9, P = 10, NP = 11, L = 12, GE = 13, LE = 14, G = 15;
}
