namespace Sharpvisor.Jit.X64;

/// <summary>x86-64 general registers, in encoding order.</summary>
internal enum Reg : byte
{
    Rax, Rcx, Rdx, Rbx, Rsp, Rbp, Rsi, Rdi, R8, R9, R10, R11, R12, R13, R14, R15,
    /// <summary>No register (an absent base or index).</summary>
    None = 0xFF,
}

/// <summary>A memory operand: [base + index &lt;&lt; scale + disp], 64-bit addressing unless <see cref="Addr32"/>.</summary>
internal readonly record struct Mem(Reg Base, int Disp = 0, Reg Index = Reg.None, int Scale = 0, bool Addr32 = false);

/// <summary>A place in the code that jumps are aimed at before it is known.</summary>
internal readonly record struct Label(int Id);

/// <summary>
/// A small x86-64 encoder: just the instructions the block compiler emits,
/// each through one ModRM/SIB encoder, into a growable buffer with labels for
/// rel32 jumps and fixups for jumps to code outside the buffer.
/// </summary>
/// <remarks>
/// Operand sizes are 1, 2, 4 or 8 bytes. Byte operations on host registers
/// always carry a REX prefix, so register numbers 4-7 mean spl..dil and never
/// ah..bh (the compiler never wants the old high-byte registers).
/// </remarks>
internal sealed class Assembler
{
    private byte[] _code = new byte[1024];
    private int _length;
    private readonly List<int> _labelAt = new();
    private readonly List<(int At, int Label)> _fixups = new();
    private readonly List<(int At, long Target)> _external = new();

    public int Length => _length;

    public ReadOnlySpan<byte> Code => _code.AsSpan(0, _length);

    /// <summary>rel32 fields aimed at code outside this buffer (absolute addresses), patched when the code is placed.</summary>
    public IReadOnlyList<(int At, long Target)> External => _external;

    public void Reset()
    {
        _length = 0;
        _labelAt.Clear();
        _fixups.Clear();
        _external.Clear();
    }

    private void Byte(int b)
    {
        if (_length == _code.Length)
            Array.Resize(ref _code, _code.Length * 2);
        _code[_length++] = (byte)b;
    }

    private void Int32(int v)
    {
        Byte(v); Byte(v >> 8); Byte(v >> 16); Byte(v >> 24);
    }

    private void Int64(long v)
    {
        Int32((int)v); Int32((int)(v >> 32));
    }

    // ---- labels ----

    public Label NewLabel()
    {
        _labelAt.Add(-1);
        return new Label(_labelAt.Count - 1);
    }

    public void Bind(Label l) => _labelAt[l.Id] = _length;

    public bool IsBound(Label l) => _labelAt[l.Id] >= 0;

    private void Rel32(Label l)
    {
        _fixups.Add((_length, l.Id));
        Int32(0);
    }

    /// <summary>Resolves every jump to a label; throws if one was never bound (a compiler bug).</summary>
    public void ResolveLabels()
    {
        foreach (var (at, id) in _fixups)
        {
            int target = _labelAt[id];
            if (target < 0)
                throw new InvalidOperationException($"label {id} used but never bound");
            BitConverter.TryWriteBytes(_code.AsSpan(at), target - (at + 4));
        }
        _fixups.Clear();
    }

    // ---- encoding core ----

    private static bool High(Reg r) => r != Reg.None && (int)r >= 8;

    private static int Low(Reg r) => (int)r & 7;

    /// <summary>Prefixes (0x66, 0x67, REX) for an instruction of <paramref name="size"/> with these register fields.</summary>
    private void Prefixes(int size, Reg reg, Reg rmOrBase, Reg index, bool addr32, bool byteRegs)
    {
        if (size == 2) Byte(0x66);
        if (addr32) Byte(0x67);
        int rex = (size == 8 ? 8 : 0) | (High(reg) ? 4 : 0) | (High(index) ? 2 : 0) | (High(rmOrBase) ? 1 : 0);
        if (rex != 0 || (size == 1 && byteRegs))
            Byte(0x40 | rex);
    }

    /// <summary>An instruction whose r/m operand is a register.</summary>
    private void RR(int size, ReadOnlySpan<byte> opcode, int regField, Reg rm, Reg regOperand = Reg.None, bool byteSource = false)
    {
        Reg reg = regOperand != Reg.None ? regOperand : (Reg)regField;
        // A byte source of movzx/movsx needs the REX prefix too, or sil would read as dh.
        Prefixes(byteSource ? 1 : size, regOperand, rm, Reg.None, false, byteRegs: true);
        if (byteSource && size != 4)
            throw new ArgumentException("byte sources are only encoded for 32-bit destinations");
        foreach (byte b in opcode) Byte(b);
        Byte(0xC0 | (Low(reg) << 3) | Low(rm));
    }

    /// <summary>An instruction whose r/m operand is memory.</summary>
    private void RM(int size, ReadOnlySpan<byte> opcode, int regField, Mem m, Reg regOperand = Reg.None, bool byteRegs = true)
    {
        int reg = regOperand != Reg.None ? (int)regOperand : regField;
        Prefixes(size, regOperand, m.Base, m.Index, m.Addr32, byteRegs);
        foreach (byte b in opcode) Byte(b);
        ModRmMemory(reg & 7, m);
    }

    private void ModRmMemory(int reg, Mem m)
    {
        if (m.Base == Reg.None)
        {
            // [index << scale + disp32]: SIB with no base, which needs mod 00 and a 32-bit displacement.
            if (m.Index is Reg.None or Reg.Rsp)
                throw new ArgumentException("a memory operand needs a base or an index register");
            Byte((reg << 3) | 4);
            Byte((m.Scale << 6) | (Low(m.Index) << 3) | 5);
            Int32(m.Disp);
            return;
        }
        int mod = m.Disp == 0 && Low(m.Base) != 5 ? 0 : m.Disp is >= -128 and <= 127 ? 1 : 2;
        bool sib = m.Index != Reg.None || Low(m.Base) == 4;
        if (sib)
        {
            if (m.Index == Reg.Rsp)
                throw new ArgumentException("rsp cannot be an index");
            Byte((mod << 6) | (reg << 3) | 4);
            int index = m.Index == Reg.None ? 4 : Low(m.Index);
            Byte((m.Scale << 6) | (index << 3) | Low(m.Base));
        }
        else
        {
            Byte((mod << 6) | (reg << 3) | Low(m.Base));
        }
        if (mod == 1) Byte(m.Disp);
        else if (mod == 2) Int32(m.Disp);
    }

    // ---- moves ----

    /// <summary>mov dst, src (size 4 zero-extends into the full register; size 8 copies it).</summary>
    public void Mov(int size, Reg dst, Reg src) => RR(size, size == 1 ? [0x88] : [0x89], 0, dst, src);

    public void Mov32(Reg dst, uint imm)
    {
        Prefixes(4, Reg.None, dst, Reg.None, false, false);
        Byte(0xB8 + Low(dst));
        Int32((int)imm);
    }

    public void Mov64(Reg dst, long imm)
    {
        Prefixes(8, Reg.None, dst, Reg.None, false, false);
        Byte(0xB8 + Low(dst));
        Int64(imm);
    }

    /// <summary>mov reg, [m] at size 4 or 8.</summary>
    public void Load(int size, Reg dst, Mem m) => RM(size, [0x8B], 0, m, dst);

    /// <summary>mov [m], reg at size 1, 2, 4 or 8.</summary>
    public void Store(int size, Mem m, Reg src) => RM(size, size == 1 ? [0x88] : [0x89], 0, m, src);

    /// <summary>mov [m], imm at size 1, 2 or 4.</summary>
    public void StoreImm(int size, Mem m, uint imm)
    {
        RM(size, size == 1 ? [0xC6] : [0xC7], 0, m);
        if (size == 1) Byte((int)imm);
        else if (size == 2) { Byte((int)imm); Byte((int)(imm >> 8)); }
        else Int32((int)imm);
    }

    /// <summary>movzx/movsx dst32, byte or word register.</summary>
    public void Extend(Reg dst, Reg src, int fromSize, bool signed) =>
        RR(4, [0x0F, (byte)((signed ? 0xBE : 0xB6) | (fromSize == 2 ? 1 : 0))], 0, src, dst, byteSource: fromSize == 1);

    /// <summary>movzx/movsx dst32, byte or word [m].</summary>
    public void ExtendLoad(Reg dst, Mem m, int fromSize, bool signed) =>
        RM(4, [0x0F, (byte)((signed ? 0xBE : 0xB6) | (fromSize == 2 ? 1 : 0))], 0, m, dst);

    /// <summary>lea dst32, [m] (with <see cref="Mem.Addr32"/> the sum wraps at 32 bits, as a guest address does).</summary>
    public void Lea(int size, Reg dst, Mem m) => RM(size, [0x8D], 0, m, dst);

    // ---- arithmetic ----

    /// <summary>The /digit of the 0x81 group and the base opcode of the register forms.</summary>
    public enum Alu { Add = 0, Or = 1, Adc = 2, Sbb = 3, And = 4, Sub = 5, Xor = 6, Cmp = 7 }

    /// <summary>op dst, src at size 1, 2, 4 or 8.</summary>
    public void AluRR(Alu op, int size, Reg dst, Reg src) =>
        RR(size, [(byte)(((int)op << 3) | (size == 1 ? 0 : 1))], 0, dst, src);

    /// <summary>op dst, [m].</summary>
    public void AluRM(Alu op, int size, Reg dst, Mem m) =>
        RM(size, [(byte)(((int)op << 3) | (size == 1 ? 2 : 3))], 0, m, dst);

    /// <summary>op dst, imm (sign-extended imm8 when it fits).</summary>
    public void AluRI(Alu op, int size, Reg dst, uint imm)
    {
        if (size == 1)
        {
            RR(1, [0x80], (int)op, dst);
            Byte((int)imm);
        }
        else if (size != 2 && (int)imm is >= -128 and <= 127)
        {
            RR(size, [0x83], (int)op, dst);
            Byte((int)imm);
        }
        else
        {
            RR(size, [0x81], (int)op, dst);
            if (size == 2) { Byte((int)imm); Byte((int)(imm >> 8)); }
            else Int32((int)imm);
        }
    }

    /// <summary>op [m], imm at size 1 or 4.</summary>
    public void AluMI(Alu op, int size, Mem m, uint imm)
    {
        if (size == 1)
        {
            RM(1, [0x80], (int)op, m);
            Byte((int)imm);
        }
        else
        {
            RM(size, [0x81], (int)op, m);
            Int32((int)imm);
        }
    }

    /// <summary>test a, b at size 1, 2, 4 or 8.</summary>
    public void Test(int size, Reg a, Reg b) => RR(size, size == 1 ? [0x84] : [0x85], 0, a, b);

    public enum Shift { Rol = 0, Ror = 1, Shl = 4, Shr = 5, Sar = 7 }

    /// <summary>shift or rotate dst (32 bits, or <paramref name="size"/> 1 or 2) by an immediate count (1-31).</summary>
    public void ShiftRI(Shift op, Reg dst, int count, int size = 4)
    {
        RR(size, size == 1 ? [0xC0] : [0xC1], (int)op, dst);
        Byte(count);
    }

    /// <summary>shift or rotate dst (32 bits, or <paramref name="size"/> 1 or 2) by cl.</summary>
    public void ShiftRCl(Shift op, Reg dst, int size = 4) => RR(size, size == 1 ? [0xD2] : [0xD3], (int)op, dst);

    /// <summary>shld (or shrd) dst32, src32, imm8.</summary>
    public void DoubleShiftRI(bool left, Reg dst, Reg src, int count)
    {
        RR(4, [0x0F, (byte)(left ? 0xA4 : 0xAC)], 0, dst, src);
        Byte(count);
    }

    /// <summary>shld (or shrd) dst32, src32, cl.</summary>
    public void DoubleShiftRCl(bool left, Reg dst, Reg src) => RR(4, [0x0F, (byte)(left ? 0xA5 : 0xAD)], 0, dst, src);

    /// <summary>mul (or imul) src at size 1, 2 or 4: ax = al * src8, dx:ax = ax * src16, edx:eax = eax * src32.</summary>
    public void MulWide(int size, bool signed, Reg src) => RR(size, size == 1 ? [0xF6] : [0xF7], signed ? 5 : 4, src);

    /// <summary>bswap r32.</summary>
    public void Bswap(Reg r)
    {
        if (High(r)) Byte(0x41);
        Byte(0x0F);
        Byte(0xC8 + Low(r));
    }

    /// <summary>bt dword [m], imm8: CF = that bit.</summary>
    public void BtMI(Mem m, int bit)
    {
        RM(4, [0x0F, 0xBA], 4, m);
        Byte(bit);
    }

    /// <summary>inc (or dec) dst at size 1, 2 or 4.</summary>
    public void IncDec(int size, bool inc, Reg dst) => RR(size, size == 1 ? [0xFE] : [0xFF], inc ? 0 : 1, dst);

    public void Not(Reg dst) => RR(4, [0xF7], 2, dst);

    /// <summary>imul dst32, src32 (the low half, the same for signed and unsigned).</summary>
    public void Imul(Reg dst, Reg src) => RR(4, [0x0F, 0xAF], 0, src, dst);

    /// <summary>dec dword [m].</summary>
    public void DecMem(Mem m) => RM(4, [0xFF], 1, m);

    // ---- conditions ----

    /// <summary>setcc dst8 (x86 condition order).</summary>
    public void SetCc(int cc, Reg dst) => RR(1, [0x0F, (byte)(0x90 | cc)], 0, dst);

    /// <summary>cmovcc dst32, src32.</summary>
    public void CMov(int cc, Reg dst, Reg src) => RR(4, [0x0F, (byte)(0x40 | cc)], 0, src, dst);

    // ---- control ----

    public void Jcc(int cc, Label l)
    {
        Byte(0x0F);
        Byte(0x80 | cc);
        Rel32(l);
    }

    public void Jmp(Label l)
    {
        Byte(0xE9);
        Rel32(l);
    }

    /// <summary>jmp to an absolute address outside this buffer (rel32, patched at placement).</summary>
    public void JmpExternal(long target)
    {
        Byte(0xE9);
        _external.Add((_length, target));
        Int32(0);
    }

    /// <summary>jmp reg.</summary>
    public void JmpReg(Reg r)
    {
        if (High(r)) Byte(0x41);
        Byte(0xFF);
        Byte(0xE0 | Low(r));
    }

    public void Push(Reg r)
    {
        if (High(r)) Byte(0x41);
        Byte(0x50 + Low(r));
    }

    public void Pop(Reg r)
    {
        if (High(r)) Byte(0x41);
        Byte(0x58 + Low(r));
    }

    public void Ret() => Byte(0xC3);

    /// <summary>Pads with int3 to a multiple of <paramref name="alignment"/>.</summary>
    public void Align(int alignment)
    {
        while (_length % alignment != 0) Byte(0xCC);
    }
}
