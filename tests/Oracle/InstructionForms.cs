using Iced.Intel;
using Sharpvisor.Jit.Cpu;
using static Iced.Intel.AssemblerRegisters;
using static Sharpvisor.Jit.Cpu.Eflags;
using L = Sharpvisor.Tests.Oracle.GuestLayout;

namespace Sharpvisor.Tests.Oracle;

/// <summary>
/// The catalogue of instruction forms the differential tests run, with what
/// Intel's SDM (and AMD's APM, where they agree) leaves undefined for each.
/// A form is one encoding shape (operation, operand size, register / memory /
/// immediate); its name is the test case's name.
/// </summary>
internal static class InstructionForms
{
    private const uint D = L.Data;

    /// <summary>Index of the dword at the stack top in the stack window.</summary>
    private const int TopSlot = (int)(L.StackTop - L.StackWindow) / 4;

    /// <summary>Shift counts every shift form meets in order before random ones: both sides of each operand size, and past 31 (masked).</summary>
    private static readonly uint[] ShiftCounts = [0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 2, 63, 255];

    private static readonly string[] ConditionNames = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"];

    public static readonly IReadOnlyList<Form> All = Build();

    private static readonly Dictionary<string, Form> s_byName = All.ToDictionary(f => f.Name);

    public static Form Get(string name) => s_byName[name];

    private static List<Form> Build()
    {
        var forms = new List<Form>();
        Moves(forms);
        Arithmetic(forms);
        Unary(forms);
        Shifts(forms);
        Multiply(forms);
        Divide(forms);
        Exchange(forms);
        BitOps(forms);
        Conditions(forms);
        Stack(forms);
        Strings(forms);
        Calls(forms);
        FlagOps(forms);
        Chains(forms);
        return forms;
    }

    // ---- helpers -----------------------------------------------------------

    private static Code C(string name) => Enum.Parse<Code>(name);

    private static MemoryOperand M(uint address) => new(address, 4);

    private static void Add(Assembler a, Instruction i, bool locked = false)
    {
        i.HasLockPrefix = locked;
        a.AddInstruction(i);
    }

    private static uint SizeMask(int bits) => bits == 32 ? uint.MaxValue : (1u << bits) - 1;

    /// <summary>The registers a sized form works on: destination, source. High-byte registers for 8 bits, so that AH..BH get tested.</summary>
    private static (Register Dst, Register Src) Regs(int bits) => bits switch
    {
        8 => (Register.DH, Register.BL),
        16 => (Register.SI, Register.DX),
        _ => (Register.EDI, Register.EBX),
    };

    private static Register AccReg(int bytes) => bytes switch { 1 => Register.AL, 2 => Register.AX, _ => Register.EAX };

    private static uint RandomImm(Random r, int bits) => SnippetProgram.Interesting(r) & SizeMask(bits);

    private static int Imm(uint value, int bits) => bits switch
    {
        8 => (int)(value & 0xFF),
        16 => (int)(value & 0xFFFF),
        _ => (int)value,
    };

    private static Func<Random, int, uint> ShiftCount => (r, i) => i < ShiftCounts.Length ? ShiftCounts[i] : (uint)r.Next(256);

    private static byte Bit(Gpr g) => (byte)(1 << (int)g);

    /// <summary>Reads or writes a little-endian element of a vector's data window (window 0 at <see cref="GuestLayout.Data"/>).</summary>
    private static uint ReadData(Vector v, uint address, int bytes)
    {
        Span<byte> m = v.MemBytes;
        uint x = 0;
        for (int b = bytes - 1; b >= 0; b--) x = (x << 8) | m[(int)(address - D) + b];
        return x;
    }

    private static void WriteData(Vector v, uint address, int bytes, uint value)
    {
        Span<byte> m = v.MemBytes;
        for (int b = 0; b < bytes; b++, value >>= 8) m[(int)(address - D) + b] = (byte)value;
    }

    private static uint RegValue(Vector v, Register r)
    {
        int n = r.GetNumber() & 3;
        uint full = v.Regs[r.IsGPR8() ? n : r.GetNumber()];
        if (r.IsGPR8()) return r.GetNumber() >= 4 ? (v.Regs[n] >> 8) & 0xFF : v.Regs[n] & 0xFF;
        if (r.IsGPR16()) return full & 0xFFFF;
        return full;
    }

    private static void SetRegValue(Vector v, Register r, uint value)
    {
        if (r.IsGPR8())
        {
            int n = r.GetNumber() & 3;
            int shift = r.GetNumber() >= 4 ? 8 : 0;
            v.Regs[n] = (v.Regs[n] & ~(0xFFu << shift)) | ((value & 0xFF) << shift);
        }
        else if (r.IsGPR16())
            v.Regs[r.GetNumber()] = (v.Regs[r.GetNumber()] & 0xFFFF_0000) | (value & 0xFFFF);
        else
            v.Regs[r.GetNumber()] = value;
    }

    private static Form F(string name, Action<Assembler, Vector> emit, uint undefined = 0, params Window[] windows) =>
        new() { Name = name, Emit = emit, UndefinedFlags = undefined, Windows = windows };

    // ---- mov, movzx, movsx, lea ----------------------------------------------

    private static void Moves(List<Form> forms)
    {
        forms.Add(F("mov r32, r32", (a, _) => a.mov(eax, ebx)));
        forms.Add(F("mov r16, r16", (a, _) => a.mov(cx, dx)));
        forms.Add(F("mov r8, r8 (high from low)", (a, _) => a.mov(ah, bl)));
        forms.Add(F("mov r8, r8 (low from high)", (a, _) => a.mov(cl, dh)));
        forms.Add(new Form { Name = "mov r32, imm32", Emit = (a, v) => a.mov(esi, v.Imm), Imm = (r, _) => SnippetProgram.Interesting(r) });
        forms.Add(new Form { Name = "mov r8, imm8", Emit = (a, v) => a.mov(ch, (byte)v.Imm), Imm = (r, _) => (uint)r.Next(256) });
        forms.Add(F("mov r32, m32", (a, _) => a.mov(esi, __dword_ptr[D]), 0, Window.Data16));
        forms.Add(F("mov eax, m32 (moffs)", (a, _) => a.mov(eax, __dword_ptr[D + 4]), 0, Window.Data16));
        forms.Add(F("mov r16, m16 (unaligned)", (a, _) => a.mov(bp, __word_ptr[D + 3]), 0, Window.Data16));
        forms.Add(F("mov r8, m8", (a, _) => a.mov(bh, __byte_ptr[D + 5]), 0, Window.Data16));
        forms.Add(F("mov m32, r32", (a, _) => a.mov(__dword_ptr[D + 4], edi), 0, Window.Data16));
        forms.Add(F("mov m32, r32 (unaligned)", (a, _) => a.mov(__dword_ptr[D + 7], edx), 0, Window.Data16));
        forms.Add(F("mov m16, r16", (a, _) => a.mov(__word_ptr[D + 2], si), 0, Window.Data16));
        forms.Add(F("mov m8, r8", (a, _) => a.mov(__byte_ptr[D + 9], ah), 0, Window.Data16));
        forms.Add(new Form { Name = "mov m32, imm32", Emit = (a, v) => a.mov(__dword_ptr[D + 8], v.Imm), Imm = (r, _) => SnippetProgram.Interesting(r), Windows = [Window.Data16] });
        forms.Add(new Form { Name = "mov m8, imm8", Emit = (a, v) => Add(a, Instruction.Create(Code.Mov_rm8_imm8, M(D + 1), (int)(v.Imm & 0xFF))), Imm = (r, _) => (uint)r.Next(256), Windows = [Window.Data16] });
        forms.Add(new Form { Name = "mov r32, [base+index*4+disp]", Emit = (a, _) => a.mov(eax, __dword_ptr[ebx + ecx * 4 + 4]), Windows = [Window.Data16], Fixup = (v, r, _) => { v[Gpr.Ebx] = D - 4 * 2; v[Gpr.Ecx] = (uint)r.Next(2, 5); } });
        forms.Add(F("movzx r32, r8", (a, _) => a.movzx(eax, bh)));
        forms.Add(F("movzx r32, r16", (a, _) => a.movzx(ecx, dx)));
        forms.Add(F("movzx r16, r8", (a, _) => a.movzx(di, al)));
        forms.Add(F("movzx r32, m8", (a, _) => a.movzx(edx, __byte_ptr[D + 3]), 0, Window.Data16));
        forms.Add(F("movzx r32, m16", (a, _) => a.movzx(ebp, __word_ptr[D + 6]), 0, Window.Data16));
        forms.Add(F("movsx r32, r8", (a, _) => a.movsx(eax, bl)));
        forms.Add(F("movsx r32, r8 (high)", (a, _) => a.movsx(esi, ch)));
        forms.Add(F("movsx r32, r16", (a, _) => a.movsx(edx, si)));
        forms.Add(F("movsx r16, r8", (a, _) => a.movsx(ax, cl)));
        forms.Add(F("movsx r32, m8", (a, _) => a.movsx(edi, __byte_ptr[D + 1]), 0, Window.Data16));
        forms.Add(F("movsx r32, m16", (a, _) => a.movsx(ebx, __word_ptr[D + 10]), 0, Window.Data16));

        forms.Add(F("lea r32, [base+index*4+disp32]", (a, _) => a.lea(eax, __[ebx + ecx * 4 + 0x12345678])));
        forms.Add(F("lea r32, [base+index*8-disp8]", (a, _) => a.lea(edx, __[esi + edi * 8 - 0x10])));
        forms.Add(F("lea r32, [base+index*2] (same register)", (a, _) => a.lea(eax, __[eax + eax * 2])));
        forms.Add(F("lea r32, [index*2+disp32]", (a, _) => a.lea(edi, __[ebp * 2 + 0x1000])));
        forms.Add(F("lea r32, [esp+disp8]", (a, _) => a.lea(ecx, __[esp + 0x10])));
        forms.Add(F("lea r32, [ebp+disp8]", (a, _) => a.lea(esi, __[ebp + 4])));
        forms.Add(F("lea r32, [disp32]", (a, _) => a.lea(ebx, __[0xFEDC_BA98u])));
        forms.Add(F("lea r16, [base+index]", (a, _) => a.lea(ax, __[ebx + esi])));
        forms.Add(F("cbw", (a, _) => a.cbw()));
        forms.Add(F("cwde", (a, _) => a.cwde()));
        forms.Add(F("cwd", (a, _) => a.cwd()));
        forms.Add(F("cdq", (a, _) => a.cdq()));
        forms.Add(F("bswap r32", (a, _) => Add(a, Instruction.Create(Code.Bswap_r32, Register.EDI))));
        forms.Add(F("bswap eax", (a, _) => Add(a, Instruction.Create(Code.Bswap_r32, Register.EAX))));
    }

    // ---- add adc sub sbb cmp and or xor test ---------------------------------

    private static void Arithmetic(List<Form> forms)
    {
        foreach (string op in (string[])["Add", "Adc", "Sub", "Sbb", "Cmp", "And", "Or", "Xor"])
        {
            string m = op.ToLowerInvariant();
            // AF after a logical operation is undefined; all else is defined.
            uint undefined = op is "And" or "Or" or "Xor" ? AF : 0;
            foreach (int bits in (int[])[8, 16, 32])
            {
                (Register dst, Register src) = Regs(bits);
                Code rmR = C($"{op}_rm{bits}_r{bits}"), rRm = C($"{op}_r{bits}_rm{bits}"), rmImm = C($"{op}_rm{bits}_imm{bits}");
                Func<Random, int, uint> imm = (r, _) => RandomImm(r, bits);
                forms.Add(F($"{m} r{bits}, r{bits}", (a, _) => Add(a, Instruction.Create(rmR, dst, src)), undefined));
                forms.Add(F($"{m} r{bits}, r{bits} (reversed encoding)", (a, _) => Add(a, Instruction.Create(rRm, src, dst)), undefined));
                forms.Add(new Form { Name = $"{m} r{bits}, imm{bits}", Emit = (a, v) => Add(a, Instruction.Create(rmImm, dst, Imm(v.Imm, bits))), Imm = imm, UndefinedFlags = undefined });
                forms.Add(F($"{m} r{bits}, m{bits}", (a, _) => Add(a, Instruction.Create(rRm, dst, M(D))), undefined, Window.Data16));
                forms.Add(F($"{m} m{bits}, r{bits}", (a, _) => Add(a, Instruction.Create(rmR, M(D + 4), src)), undefined, Window.Data16));
                forms.Add(new Form { Name = $"{m} m{bits}, imm{bits}", Emit = (a, v) => Add(a, Instruction.Create(rmImm, M(D + 6), Imm(v.Imm, bits))), Imm = imm, UndefinedFlags = undefined, Windows = [Window.Data16] });
                if (bits != 8)
                {
                    Code rmImm8 = C($"{op}_rm{bits}_imm8");
                    forms.Add(new Form { Name = $"{m} r{bits}, imm8 (sign-extended)", Emit = (a, v) => Add(a, Instruction.Create(rmImm8, dst, (int)(sbyte)v.Imm)), Imm = (r, _) => (uint)r.Next(256), UndefinedFlags = undefined });
                }
                string acc = bits switch { 8 => "AL", 16 => "AX", _ => "EAX" };
                Code accImm = C($"{op}_{acc}_imm{bits}");
                forms.Add(new Form { Name = $"{m} {acc.ToLowerInvariant()}, imm{bits} (short)", Emit = (a, v) => Add(a, Instruction.Create(accImm, AccReg(bits / 8), Imm(v.Imm, bits))), Imm = imm, UndefinedFlags = undefined });
            }
            if (op != "Cmp") // lock cmp is #UD: only read-modify-write forms take lock
            {
                Code rmR32 = C($"{op}_rm32_r32"), rmImm8 = C($"{op}_rm8_imm8");
                forms.Add(F($"lock {m} m32, r32", (a, _) => Add(a, Instruction.Create(rmR32, M(D + 4), Register.ECX), locked: true), undefined, Window.Data16));
                forms.Add(new Form { Name = $"lock {m} m8, imm8", Emit = (a, v) => Add(a, Instruction.Create(rmImm8, M(D + 3), (int)(v.Imm & 0xFF)), locked: true), Imm = (r, _) => (uint)r.Next(256), UndefinedFlags = undefined, Windows = [Window.Data16] });
            }
        }
        foreach (int bits in (int[])[8, 16, 32])
        {
            (Register dst, Register src) = Regs(bits);
            Code rmR = C($"Test_rm{bits}_r{bits}"), rmImm = C($"Test_rm{bits}_imm{bits}");
            forms.Add(F($"test r{bits}, r{bits}", (a, _) => Add(a, Instruction.Create(rmR, dst, src)), AF));
            forms.Add(F($"test r{bits}, r{bits} (same register)", (a, _) => Add(a, Instruction.Create(rmR, dst, dst)), AF));
            forms.Add(new Form { Name = $"test r{bits}, imm{bits}", Emit = (a, v) => Add(a, Instruction.Create(rmImm, dst, Imm(v.Imm, bits))), Imm = (r, _) => RandomImm(r, bits), UndefinedFlags = AF });
            forms.Add(F($"test m{bits}, r{bits}", (a, _) => Add(a, Instruction.Create(rmR, M(D + 2), src)), AF, Window.Data16));
        }
        forms.Add(F("xor r32, r32 (same register)", (a, _) => a.xor(esi, esi), AF));
        forms.Add(F("sub r32, r32 (same register)", (a, _) => a.sub(edx, edx)));
    }

    // ---- inc dec neg not ------------------------------------------------------

    private static void Unary(List<Form> forms)
    {
        foreach (string op in (string[])["Inc", "Dec", "Neg", "Not"])
        {
            string m = op.ToLowerInvariant();
            foreach (int bits in (int[])[8, 16, 32])
            {
                Code code = C($"{op}_rm{bits}");
                Register dst = Regs(bits).Dst;
                forms.Add(F($"{m} r{bits}", (a, _) => Add(a, Instruction.Create(code, dst))));
                forms.Add(F($"{m} m{bits}", (a, _) => Add(a, Instruction.Create(code, M(D + 4))), 0, Window.Data16));
            }
            Code code32 = C($"{op}_rm32");
            forms.Add(F($"lock {m} m32", (a, _) => Add(a, Instruction.Create(code32, M(D + 8)), locked: true), 0, Window.Data16));
        }
        forms.Add(F("inc r32 (short)", (a, _) => Add(a, Instruction.Create(Code.Inc_r32, Register.ECX))));
        forms.Add(F("dec r32 (short)", (a, _) => Add(a, Instruction.Create(Code.Dec_r32, Register.EBP))));
        forms.Add(F("inc r16 (short)", (a, _) => Add(a, Instruction.Create(Code.Inc_r16, Register.AX))));
        forms.Add(F("dec r16 (short)", (a, _) => Add(a, Instruction.Create(Code.Dec_r16, Register.DI))));
    }

    // ---- shifts and rotates --------------------------------------------------

    /// <summary>
    /// What a shift or rotate leaves undefined. The count is masked to 5 bits;
    /// a masked count of 0 changes nothing. OF is defined only for a count of 1,
    /// AF never for shifts; shl/shr leave CF undefined once the count reaches
    /// the operand size (only 8- and 16-bit operands can get there).
    /// </summary>
    private static Undefined ShiftUndefined(string op, int bits, uint count)
    {
        uint c = count & 31;
        if (c == 0) return Undefined.None;
        uint f = c != 1 ? OF : 0;
        if (op is "Shl" or "Shr" or "Sar")
        {
            f |= AF;
            if (op != "Sar" && c >= bits) f |= CF;
        }
        return new Undefined(f);
    }

    private static void Shifts(List<Form> forms)
    {
        foreach (string op in (string[])["Rol", "Ror", "Rcl", "Rcr", "Shl", "Shr", "Sar"])
        {
            string m = op.ToLowerInvariant();
            foreach (int bits in (int[])[8, 16, 32])
            {
                Register dst = Regs(bits).Dst;
                Code by1 = C($"{op}_rm{bits}_1"), byImm = C($"{op}_rm{bits}_imm8"), byCl = C($"{op}_rm{bits}_CL");
                forms.Add(new Form
                {
                    Name = $"{m} r{bits}, 1",
                    Emit = (a, _) => Add(a, Instruction.Create(by1, dst, 1)),
                    UndefinedFor = _ => ShiftUndefined(op, bits, 1),
                });
                forms.Add(new Form
                {
                    Name = $"{m} r{bits}, imm8",
                    Emit = (a, v) => Add(a, Instruction.Create(byImm, dst, (int)v.Imm)),
                    Imm = ShiftCount,
                    UndefinedFor = v => ShiftUndefined(op, bits, v.Imm),
                });
                forms.Add(new Form
                {
                    Name = $"{m} r{bits}, cl",
                    Emit = (a, _) => Add(a, Instruction.Create(byCl, dst, Register.CL)),
                    Imm = ShiftCount,
                    Fixup = (v, _, _) => v[Gpr.Ecx] = (v[Gpr.Ecx] & ~0xFFu) | v.Imm,
                    UndefinedFor = v => ShiftUndefined(op, bits, v[Gpr.Ecx] & 0xFF),
                });
            }
            // One memory form per operation, sizes and count kinds spread across them.
            int memBits = op switch { "Rol" or "Shl" or "Sar" => 32, "Ror" or "Shr" => 16, _ => 8 };
            Code memCl = C($"{op}_rm{memBits}_CL"), memImm = C($"{op}_rm{memBits}_imm8");
            forms.Add(new Form
            {
                Name = $"{m} m{memBits}, cl",
                Emit = (a, _) => Add(a, Instruction.Create(memCl, M(D + 4), Register.CL)),
                Imm = ShiftCount,
                Fixup = (v, _, _) => v[Gpr.Ecx] = (v[Gpr.Ecx] & ~0xFFu) | v.Imm,
                UndefinedFor = v => ShiftUndefined(op, memBits, v[Gpr.Ecx] & 0xFF),
                Windows = [Window.Data16],
            });
            forms.Add(new Form
            {
                Name = $"{m} m{memBits}, imm8",
                Emit = (a, v) => Add(a, Instruction.Create(memImm, M(D + 5), (int)v.Imm)),
                Imm = ShiftCount,
                UndefinedFor = v => ShiftUndefined(op, memBits, v.Imm),
                Windows = [Window.Data16],
            });
        }

        foreach (string op in (string[])["Shld", "Shrd"])
        {
            string m = op.ToLowerInvariant();
            foreach (int bits in (int[])[16, 32])
            {
                (Register dst, Register src) = Regs(bits);
                Code byImm = C($"{op}_rm{bits}_r{bits}_imm8"), byCl = C($"{op}_rm{bits}_r{bits}_CL");
                byte dstBit = (byte)(1 << dst.GetNumber());
                forms.Add(new Form
                {
                    Name = $"{m} r{bits}, r{bits}, imm8",
                    Emit = (a, v) => Add(a, Instruction.Create(byImm, dst, src, (int)v.Imm)),
                    Imm = ShiftCount,
                    UndefinedFor = v => DoubleShiftUndefined(bits, v.Imm, dstBit),
                });
                forms.Add(new Form
                {
                    Name = $"{m} r{bits}, r{bits}, cl",
                    Emit = (a, _) => Add(a, Instruction.Create(byCl, dst, src, Register.CL)),
                    Imm = ShiftCount,
                    Fixup = (v, _, _) => v[Gpr.Ecx] = (v[Gpr.Ecx] & ~0xFFu) | v.Imm,
                    UndefinedFor = v => DoubleShiftUndefined(bits, v[Gpr.Ecx] & 0xFF, dstBit),
                });
            }
            Code mem = C($"{op}_rm32_r32_CL");
            forms.Add(new Form
            {
                Name = $"{m} m32, r32, cl",
                Emit = (a, _) => Add(a, Instruction.Create(mem, M(D + 4), Register.EBX, Register.CL)),
                Imm = ShiftCount,
                Fixup = (v, _, _) => v[Gpr.Ecx] = (v[Gpr.Ecx] & ~0xFFu) | v.Imm,
                UndefinedFor = v => DoubleShiftUndefined(32, v[Gpr.Ecx] & 0xFF, 0),
                Windows = [Window.Data16],
            });
        }
    }

    /// <summary>
    /// shld/shrd: count masked to 5 bits, 0 changes nothing; AF undefined, OF
    /// defined only for 1; a 16-bit operand shifted by more than 16 has an
    /// undefined result and undefined flags.
    /// </summary>
    private static Undefined DoubleShiftUndefined(int bits, uint count, byte dstBit)
    {
        uint c = count & 31;
        if (c == 0) return Undefined.None;
        if (c > bits) return new Undefined(Arith, dstBit);
        return new Undefined(AF | (c != 1 ? OF : 0));
    }

    // ---- short chains: what one op leaves for the next inside a block -------

    /// <summary>
    /// Two or three instructions in a row, as compiled code meets them: a
    /// rotate, double shift or wide multiply whose flags the next op
    /// overwrites (so an engine may compute the result alone), and carries
    /// handed from add/sub/inc/dec to adc/sbb and on (so an engine may take
    /// the carry from the op before instead of the materialized flags).
    /// </summary>
    private static void Chains(List<Form> forms)
    {
        foreach (string op in (string[])["Rol", "Ror"])
        {
            string m = op.ToLowerInvariant();
            foreach (int bits in (int[])[8, 16, 32])
            {
                Register dst = Regs(bits).Dst;
                Code byImm = C($"{op}_rm{bits}_imm8"), byCl = C($"{op}_rm{bits}_CL");
                forms.Add(new Form
                {
                    Name = $"{m} r{bits}, imm8; add r32, r32",
                    Emit = (a, v) => { Add(a, Instruction.Create(byImm, dst, (int)v.Imm)); a.add(eax, edi); },
                    Imm = ShiftCount,
                });
                forms.Add(new Form
                {
                    Name = $"{m} r{bits}, cl; xor r32, r32",
                    Emit = (a, _) => { Add(a, Instruction.Create(byCl, dst, Register.CL)); a.xor(edx, esi); },
                    Imm = ShiftCount,
                    Fixup = (v, _, _) => v[Gpr.Ecx] = (v[Gpr.Ecx] & ~0xFFu) | v.Imm,
                    UndefinedFlags = AF,
                });
            }
        }
        foreach (string op in (string[])["Shld", "Shrd"])
        {
            string m = op.ToLowerInvariant();
            Code byImm = C($"{op}_rm32_r32_imm8"), byCl = C($"{op}_rm32_r32_CL");
            forms.Add(new Form
            {
                Name = $"{m} r32, r32, imm8; add r32, r32",
                Emit = (a, v) => { Add(a, Instruction.Create(byImm, Register.EDI, Register.EBX, (int)v.Imm)); a.add(eax, edi); },
                Imm = ShiftCount,
            });
            forms.Add(new Form
            {
                Name = $"{m} r32, r32, cl; sub r32, r32",
                Emit = (a, _) => { Add(a, Instruction.Create(byCl, Register.EDI, Register.EBX, Register.CL)); a.sub(edi, edx); },
                Imm = ShiftCount,
                Fixup = (v, _, _) => v[Gpr.Ecx] = (v[Gpr.Ecx] & ~0xFFu) | v.Imm,
            });
        }
        // What flag liveness may drop around rotates: a rotate's CF and OF under the next rotate's, not the flags it keeps.
        forms.Add(new Form { Name = "ror r32, imm8; rol r32, imm8", Emit = (a, v) => { a.ror(edi, (byte)v.Imm); a.rol(edi, 7); }, Imm = ShiftCount, UndefinedFor = v => new Undefined(OF) });
        forms.Add(new Form { Name = "add r32, r32; ror r32, imm8; ror r32, imm8", Emit = (a, v) => { a.add(eax, ebx); a.ror(eax, (byte)v.Imm); a.ror(ecx, 1); }, Imm = ShiftCount });
        forms.Add(new Form { Name = "rol r32, imm8; inc r32", Emit = (a, v) => { a.rol(esi, (byte)v.Imm); a.inc(edx); }, Imm = ShiftCount });
        forms.Add(new Form { Name = "sub r32, r32; rol r16, imm8; dec r8", Emit = (a, v) => { a.sub(ebx, ecx); a.rol(si, (byte)v.Imm); a.dec(dl); }, Imm = ShiftCount });
        forms.Add(F("mul r8; add r32, r32", (a, _) => { Add(a, Instruction.Create(Code.Mul_rm8, Register.BL)); a.add(ecx, eax); }));
        forms.Add(F("imul r8; add r32, r32", (a, _) => { Add(a, Instruction.Create(Code.Imul_rm8, Register.DH)); a.add(ecx, eax); }));
        forms.Add(F("mul r16; add r32, r32", (a, _) => { Add(a, Instruction.Create(Code.Mul_rm16, Register.CX)); a.add(ebx, edx); }));
        forms.Add(F("imul r16; add r32, r32", (a, _) => { Add(a, Instruction.Create(Code.Imul_rm16, Register.SI)); a.add(ebx, edx); }));
        forms.Add(F("mul r32; add r32, r32", (a, _) => { Add(a, Instruction.Create(Code.Mul_rm32, Register.ESI)); a.add(ebx, edx); }));
        forms.Add(F("imul r32; add r32, r32", (a, _) => { Add(a, Instruction.Create(Code.Imul_rm32, Register.EBP)); a.add(ebx, edx); }));

        forms.Add(F("add r32, r32; adc r32, r32", (a, _) => { a.add(eax, ecx); a.adc(edx, ebx); }));
        forms.Add(F("add r32, imm32; adc r32, imm8", (a, _) => { a.add(eax, 0x80000001u); a.adc(edx, 0); }));
        forms.Add(F("sub r32, r32; sbb r32, r32", (a, _) => { a.sub(eax, ecx); a.sbb(edx, ebx); }));
        forms.Add(F("add r32, r32; adc r32, r32; adc r32, r32", (a, _) => { a.add(eax, ecx); a.adc(edx, ebx); a.adc(esi, edi); }));
        forms.Add(F("sub r32, r32; sbb r32, r32; sbb r32, r32", (a, _) => { a.sub(eax, ecx); a.sbb(edx, ebx); a.sbb(esi, edi); }));
        forms.Add(F("add r16, r16; adc r16, r16", (a, _) => { a.add(ax, cx); a.adc(dx, bx); }));
        forms.Add(F("sub r8, r8; sbb r8, r8", (a, _) => { a.sub(al, cl); a.sbb(dh, bl); }));
        forms.Add(F("cmp r32, r32; sbb r32, r32 (same register)", (a, _) => { a.cmp(esi, edi); a.sbb(eax, eax); }));
        forms.Add(F("cmp r8, r8; adc r32, imm8", (a, _) => { a.cmp(bl, dh); a.adc(ecx, 0); }));
        forms.Add(F("test r32, r32; adc r32, r32", (a, _) => { a.test(ebx, ecx); a.adc(edx, esi); }));
        forms.Add(F("add r32, r32; inc r32", (a, _) => { a.add(eax, ecx); a.inc(edx); }));
        forms.Add(F("sub r16, r16; dec r16", (a, _) => { a.sub(si, di); a.dec(bx); }));
        forms.Add(F("inc r32; adc r32, r32", (a, _) => { a.inc(ecx); a.adc(edx, ebx); }));
        forms.Add(F("dec r8; sbb r8, r8", (a, _) => { a.dec(bl); a.sbb(al, ch); }));
        forms.Add(F("adc r32, r32; inc r32", (a, _) => { a.adc(eax, ebx); a.inc(esi); }));
        forms.Add(F("inc r32; dec r32", (a, _) => { a.inc(ebp); a.dec(edi); }));
        for (int cc = 0; cc < 16; cc++)
        {
            int c = cc;
            string n = ConditionNames[cc];
            Code set = C($"Set{n}_rm8");
            forms.Add(F($"dec r32; j{n}", (a, _) => { a.dec(ecx); Branch(a, (b, l) => Jcc(b, c, l)); }));
            forms.Add(F($"add r32, r32; adc r16, r16; set{n}", (a, _) => { a.add(eax, ecx); a.adc(dx, bx); Add(a, Instruction.Create(set, Register.AL)); }));
        }
    }

    // ---- mul imul ------------------------------------------------------------

    private static void Multiply(List<Form> forms)
    {
        // CF and OF say whether the high half matters; SF ZF AF PF are undefined.
        const uint U = SF | ZF | AF | PF;
        forms.Add(F("mul r8", (a, _) => Add(a, Instruction.Create(Code.Mul_rm8, Register.BL)), U));
        forms.Add(F("mul r8 (high)", (a, _) => Add(a, Instruction.Create(Code.Mul_rm8, Register.AH)), U));
        forms.Add(F("mul r16", (a, _) => Add(a, Instruction.Create(Code.Mul_rm16, Register.CX)), U));
        forms.Add(F("mul r32", (a, _) => Add(a, Instruction.Create(Code.Mul_rm32, Register.ESI)), U));
        forms.Add(F("mul m32", (a, _) => Add(a, Instruction.Create(Code.Mul_rm32, M(D))), U, Window.Data16));
        forms.Add(F("mul m8", (a, _) => Add(a, Instruction.Create(Code.Mul_rm8, M(D + 1))), U, Window.Data16));
        forms.Add(F("imul r8", (a, _) => Add(a, Instruction.Create(Code.Imul_rm8, Register.BH)), U));
        forms.Add(F("imul r16", (a, _) => Add(a, Instruction.Create(Code.Imul_rm16, Register.DI)), U));
        forms.Add(F("imul r32", (a, _) => Add(a, Instruction.Create(Code.Imul_rm32, Register.EBX)), U));
        forms.Add(F("imul m16", (a, _) => Add(a, Instruction.Create(Code.Imul_rm16, M(D + 2))), U, Window.Data16));
        forms.Add(F("imul r32, r32", (a, _) => Add(a, Instruction.Create(Code.Imul_r32_rm32, Register.ECX, Register.EDI)), U));
        forms.Add(F("imul r32, r32 (same register)", (a, _) => Add(a, Instruction.Create(Code.Imul_r32_rm32, Register.EDX, Register.EDX)), U));
        forms.Add(F("imul r16, r16", (a, _) => Add(a, Instruction.Create(Code.Imul_r16_rm16, Register.BP, Register.AX)), U));
        forms.Add(F("imul r32, m32", (a, _) => Add(a, Instruction.Create(Code.Imul_r32_rm32, Register.ESI, M(D + 4))), U, Window.Data16));
        forms.Add(new Form { Name = "imul r32, r32, imm32", Emit = (a, v) => Add(a, Instruction.Create(Code.Imul_r32_rm32_imm32, Register.EDX, Register.ESI, v.Imm)), Imm = (r, _) => SnippetProgram.Interesting(r), UndefinedFlags = U });
        forms.Add(new Form { Name = "imul r32, r32, imm8", Emit = (a, v) => Add(a, Instruction.Create(Code.Imul_r32_rm32_imm8, Register.EAX, Register.EBX, (int)(sbyte)v.Imm)), Imm = (r, _) => (uint)r.Next(256), UndefinedFlags = U });
        forms.Add(new Form { Name = "imul r16, r16, imm16", Emit = (a, v) => Add(a, Instruction.Create(Code.Imul_r16_rm16_imm16, Register.CX, Register.DI, (int)(v.Imm & 0xFFFF))), Imm = (r, _) => RandomImm(r, 16), UndefinedFlags = U });
        forms.Add(new Form { Name = "imul r32, m32, imm8", Emit = (a, v) => Add(a, Instruction.Create(Code.Imul_r32_rm32_imm8, Register.EDI, M(D + 8), (int)(sbyte)v.Imm)), Imm = (r, _) => (uint)r.Next(256), UndefinedFlags = U, Windows = [Window.Data16] });
    }

    // ---- div idiv --------------------------------------------------------------

    private static void Divide(List<Form> forms)
    {
        // Only vectors that do not raise #DE: the fixup makes the divisor
        // nonzero and the quotient fit. All six flags are undefined.
        forms.Add(DivForm("div r8", Code.Div_rm8, Register.BL, 8, signed: false));
        forms.Add(DivForm("div r16", Code.Div_rm16, Register.CX, 16, signed: false));
        forms.Add(DivForm("div r32", Code.Div_rm32, Register.ESI, 32, signed: false));
        forms.Add(DivForm("div m32", Code.Div_rm32, Register.None, 32, signed: false));
        forms.Add(DivForm("idiv r8", Code.Idiv_rm8, Register.CH, 8, signed: true));
        forms.Add(DivForm("idiv r16", Code.Idiv_rm16, Register.BP, 16, signed: true));
        forms.Add(DivForm("idiv r32", Code.Idiv_rm32, Register.EDI, 32, signed: true));
        forms.Add(DivForm("idiv m8", Code.Idiv_rm8, Register.None, 8, signed: true));
    }

    private static Form DivForm(string name, Code code, Register divisor, int bits, bool signed) => new()
    {
        Name = name,
        Emit = (a, _) => Add(a, divisor == Register.None ? Instruction.Create(code, M(D)) : Instruction.Create(code, divisor)),
        Windows = divisor == Register.None ? [Window.Data16] : [],
        UndefinedFlags = Arith,
        Fixup = (v, r, i) => FixDivision(v, r, i, divisor, bits, signed),
    };

    private static void FixDivision(Vector v, Random r, int i, Register divisorReg, int bits, bool signed)
    {
        uint mask = SizeMask(bits);
        uint d = divisorReg == Register.None ? ReadData(v, D, bits / 8) : RegValue(v, divisorReg);
        if (d == 0) d = (uint)r.Next(1, 1000) & mask;
        if (d == 0) d = 1;

        // The dividend: AX for bytes, DX:AX for words, EDX:EAX for dwords.
        uint hi = bits switch { 8 => (v[Gpr.Eax] >> 8) & 0xFF, 16 => v[Gpr.Edx] & 0xFFFF, _ => v[Gpr.Edx] };
        uint lo = v[Gpr.Eax] & mask;
        if (!signed)
        {
            hi %= d; // quotient < 2^bits exactly when the high half is below the divisor
        }
        else
        {
            Int128 sd = SignExtend(d, bits);
            Int128 dividend = (SignExtend(hi, bits) << bits) | lo;
            Int128 min = -(Int128.One << (bits - 1)), max = (Int128.One << (bits - 1)) - 1;
            Int128 q = dividend / sd;
            if (q < min || q > max)
            {
                // Pick a quotient in range (often an extreme) and a remainder
                // with the dividend's sign, then rebuild the dividend from them.
                Int128 nq = (i % 3) switch { 0 => min, 1 => max, _ => r.NextInt64((long)min, (long)max + 1) };
                Int128 rem = r.NextInt64(0, (long)Int128.Abs(sd));
                Int128 product = nq * sd;
                dividend = product + (product < 0 ? -rem : rem);
            }
            hi = (uint)((dividend >> bits) & mask);
            lo = (uint)(dividend & mask);
        }

        if (divisorReg == Register.None) WriteData(v, D, bits / 8, d);
        else SetRegValue(v, divisorReg, d);
        switch (bits)
        {
            case 8: v[Gpr.Eax] = (v[Gpr.Eax] & 0xFFFF_0000) | (hi << 8) | lo; break;
            case 16: v[Gpr.Edx] = (v[Gpr.Edx] & 0xFFFF_0000) | hi; v[Gpr.Eax] = (v[Gpr.Eax] & 0xFFFF_0000) | lo; break;
            default: v[Gpr.Edx] = hi; v[Gpr.Eax] = lo; break;
        }
    }

    private static Int128 SignExtend(uint value, int bits) => bits switch
    {
        8 => (sbyte)value,
        16 => (short)value,
        _ => (int)value,
    };

    // ---- xchg cmpxchg xadd -----------------------------------------------------

    private static void Exchange(List<Form> forms)
    {
        forms.Add(F("xchg r32, r32", (a, _) => a.xchg(ecx, edi)));
        forms.Add(F("xchg r32, eax (short)", (a, _) => Add(a, Instruction.Create(Code.Xchg_r32_EAX, Register.ESI, Register.EAX))));
        forms.Add(F("xchg r16, r16", (a, _) => a.xchg(dx, bp)));
        forms.Add(F("xchg r8, r8", (a, _) => a.xchg(al, dh)));
        forms.Add(F("xchg m32, r32", (a, _) => a.xchg(__dword_ptr[D], ebx), 0, Window.Data16));
        forms.Add(F("xchg m8, r8", (a, _) => a.xchg(__byte_ptr[D + 5], ch), 0, Window.Data16));
        forms.Add(F("lock xchg m16, r16", (a, _) => a.@lock.xchg(__word_ptr[D + 2], cx), 0, Window.Data16));
        forms.Add(F("nop", (a, _) => a.nop()));

        // cmpxchg: in half the vectors the accumulator equals the destination, so both outcomes occur.
        forms.Add(Cmpxchg("cmpxchg r32, r32", Code.Cmpxchg_rm32_r32, Register.EDI, Register.EBX, 32, false));
        forms.Add(Cmpxchg("cmpxchg r16, r16", Code.Cmpxchg_rm16_r16, Register.SI, Register.DX, 16, false));
        forms.Add(Cmpxchg("cmpxchg r8, r8", Code.Cmpxchg_rm8_r8, Register.DH, Register.BL, 8, false));
        forms.Add(Cmpxchg("cmpxchg m32, r32", Code.Cmpxchg_rm32_r32, Register.None, Register.EBX, 32, false));
        forms.Add(Cmpxchg("lock cmpxchg m32, r32", Code.Cmpxchg_rm32_r32, Register.None, Register.ECX, 32, true));
        forms.Add(Cmpxchg("lock cmpxchg m8, r8", Code.Cmpxchg_rm8_r8, Register.None, Register.CL, 8, true));

        forms.Add(F("xadd r32, r32", (a, _) => Add(a, Instruction.Create(Code.Xadd_rm32_r32, Register.EDI, Register.EBX))));
        forms.Add(F("xadd r16, r16", (a, _) => Add(a, Instruction.Create(Code.Xadd_rm16_r16, Register.SI, Register.DX))));
        forms.Add(F("xadd r8, r8", (a, _) => Add(a, Instruction.Create(Code.Xadd_rm8_r8, Register.DH, Register.BL))));
        forms.Add(F("xadd m32, r32", (a, _) => Add(a, Instruction.Create(Code.Xadd_rm32_r32, M(D + 4), Register.EBX)), 0, Window.Data16));
        forms.Add(F("lock xadd m32, r32", (a, _) => Add(a, Instruction.Create(Code.Xadd_rm32_r32, M(D + 4), Register.ESI), locked: true), 0, Window.Data16));
        forms.Add(F("lock xadd m16, r16", (a, _) => Add(a, Instruction.Create(Code.Xadd_rm16_r16, M(D + 2), Register.DI), locked: true), 0, Window.Data16));
    }

    private static Form Cmpxchg(string name, Code code, Register dst, Register src, int bits, bool locked) => new()
    {
        Name = name,
        Emit = (a, _) => Add(a, dst == Register.None ? Instruction.Create(code, M(D + 4), src) : Instruction.Create(code, dst, src), locked),
        Windows = dst == Register.None ? [Window.Data16] : [],
        Fixup = (v, _, i) =>
        {
            if (i % 2 != 0) return;
            uint current = dst == Register.None ? ReadData(v, D + 4, bits / 8) : RegValue(v, dst);
            SetRegValue(v, bits switch { 8 => Register.AL, 16 => Register.AX, _ => Register.EAX }, current);
        },
    };

    // ---- bt bts btr btc, bsf bsr, lzcnt tzcnt popcnt ------------------------------

    private static void BitOps(List<Form> forms)
    {
        // CF is the bit; ZF is unchanged; OF SF AF PF are undefined.
        const uint U = OF | SF | AF | PF;
        foreach (string op in (string[])["Bt", "Bts", "Btr", "Btc"])
        {
            string m = op.ToLowerInvariant();
            foreach (int bits in (int[])[16, 32])
            {
                (Register dst, Register src) = Regs(bits);
                Code rr = C($"{op}_rm{bits}_r{bits}"), ri = C($"{op}_rm{bits}_imm8");
                forms.Add(F($"{m} r{bits}, r{bits}", (a, _) => Add(a, Instruction.Create(rr, dst, src)), U));
                forms.Add(new Form { Name = $"{m} r{bits}, imm8", Emit = (a, v) => Add(a, Instruction.Create(ri, dst, (int)v.Imm)), Imm = (r, i) => i < 8 ? (uint)(i * 5) : (uint)r.Next(256), UndefinedFlags = U });
            }
            Code mi = C($"{op}_rm32_imm8");
            forms.Add(new Form { Name = $"{m} m32, imm8", Emit = (a, v) => Add(a, Instruction.Create(mi, M(D + 4), (int)v.Imm)), Imm = (r, i) => i < 8 ? (uint)(i * 5) : (uint)r.Next(256), UndefinedFlags = U, Windows = [Window.Data16] });
            if (op != "Bt")
                forms.Add(new Form { Name = $"lock {m} m32, imm8", Emit = (a, v) => Add(a, Instruction.Create(mi, M(D + 8), (int)v.Imm), locked: true), Imm = (r, _) => (uint)r.Next(256), UndefinedFlags = U, Windows = [Window.Data16] });
        }

        // bsf/bsr: only ZF is defined, and with a zero source so is not the
        // destination (AMD documents it as unchanged, Intel as undefined).
        foreach (string op in (string[])["Bsf", "Bsr"])
            AddCount(forms, op, CF | OF | SF | AF | PF, destUndefinedOnZero: true);
        // lzcnt/tzcnt: CF (source zero) and ZF (result zero) are defined.
        foreach (string op in (string[])["Lzcnt", "Tzcnt"])
            AddCount(forms, op, OF | SF | AF | PF, destUndefinedOnZero: false);
        // popcnt clears all but ZF: everything is defined.
        AddCount(forms, "Popcnt", 0, destUndefinedOnZero: false);
    }

    private static void AddCount(List<Form> forms, string op, uint undefined, bool destUndefinedOnZero)
    {
        string m = op.ToLowerInvariant();
        Func<string?>? gap = op switch { "Lzcnt" => () => OracleGaps.Lzcnt, "Tzcnt" => () => OracleGaps.Tzcnt, _ => null };
        foreach (int bits in (int[])[16, 32])
        {
            Register dst = bits == 32 ? Register.ECX : Register.CX, src = bits == 32 ? Register.EDI : Register.SI;
            Code code = C($"{op}_r{bits}_rm{bits}");
            forms.Add(new Form
            {
                Name = $"{m} r{bits}, r{bits}",
                Emit = (a, _) => Add(a, Instruction.Create(code, dst, src)),
                UndefinedFlags = undefined,
                Fixup = (v, _, i) => { if (i % 5 == 4) SetRegValue(v, src, 0); },
                UndefinedFor = v => destUndefinedOnZero && RegValue(v, src) == 0 ? new Undefined(0, Bit(Gpr.Ecx)) : Undefined.None,
                OracleGap = gap,
                Model = op == "Bsf" || op == "Bsr" ? null : v => CountModel(op, bits, v, RegValue(v, src), dst),
            });
        }
        Code mem = C($"{op}_r32_rm32");
        forms.Add(new Form
        {
            Name = $"{m} r32, m32",
            Emit = (a, _) => Add(a, Instruction.Create(mem, Register.EDX, M(D))),
            UndefinedFlags = undefined,
            Windows = [Window.Data16],
            Fixup = (v, _, i) => { if (i % 5 == 4) v.Mem[0] = 0; },
            UndefinedFor = v => destUndefinedOnZero && v.Mem[0] == 0 ? new Undefined(0, Bit(Gpr.Edx)) : Undefined.None,
            OracleGap = gap,
            Model = op == "Bsf" || op == "Bsr" ? null : v => CountModel(op, 32, v, v.Mem[0], Register.EDX),
        });
    }

    /// <summary>
    /// lzcnt, tzcnt and popcnt for KVMs that cannot run them (see
    /// <see cref="OracleGaps"/>): the count comes from the host CPU's own
    /// instruction through the .NET intrinsic, the flags from the SDM
    /// (CF = source is zero, ZF = result is zero; popcnt clears all but ZF,
    /// which says the source is zero).
    /// </summary>
    private static VectorResult CountModel(string op, int bits, Vector v, uint src, Register dst)
    {
        src &= SizeMask(bits);
        uint flags = v.Flags & ~Arith;
        uint result;
        switch (op)
        {
            case "Lzcnt":
                result = (System.Runtime.Intrinsics.X86.Lzcnt.IsSupported
                    ? System.Runtime.Intrinsics.X86.Lzcnt.LeadingZeroCount(src)
                    : (uint)System.Numerics.BitOperations.LeadingZeroCount(src)) - (uint)(32 - bits);
                if (src == 0) flags |= CF;
                break;
            case "Tzcnt":
                result = src == 0 ? (uint)bits
                    : System.Runtime.Intrinsics.X86.Bmi1.IsSupported
                        ? System.Runtime.Intrinsics.X86.Bmi1.TrailingZeroCount(src)
                        : (uint)System.Numerics.BitOperations.TrailingZeroCount(src);
                if (src == 0) flags |= CF;
                break;
            default:
                result = System.Runtime.Intrinsics.X86.Popcnt.IsSupported
                    ? System.Runtime.Intrinsics.X86.Popcnt.PopCount(src)
                    : (uint)System.Numerics.BitOperations.PopCount(src);
                break;
        }
        if (op == "Popcnt" ? src == 0 : result == 0) flags |= ZF;
        var after = new Vector { Mem = (uint[])v.Mem.Clone() };
        v.Regs.CopyTo(after.Regs, 0);
        SetRegValue(after, dst, result);
        return new VectorResult(after.Regs, flags, after.Mem);
    }

    // ---- setcc cmovcc jcc loop ---------------------------------------------------

    private static void Jcc(Assembler a, int cc, Label l)
    {
        switch (cc)
        {
            case 0: a.jo(l); break;
            case 1: a.jno(l); break;
            case 2: a.jb(l); break;
            case 3: a.jae(l); break;
            case 4: a.je(l); break;
            case 5: a.jne(l); break;
            case 6: a.jbe(l); break;
            case 7: a.ja(l); break;
            case 8: a.js(l); break;
            case 9: a.jns(l); break;
            case 10: a.jp(l); break;
            case 11: a.jnp(l); break;
            case 12: a.jl(l); break;
            case 13: a.jge(l); break;
            case 14: a.jle(l); break;
            default: a.jg(l); break;
        }
    }

    /// <summary><c>branch taken; mov esi, 0; jmp done; taken: mov esi, 1; done:</c></summary>
    private static void Branch(Assembler a, Action<Assembler, Label> branch)
    {
        Label taken = a.CreateLabel(), done = a.CreateLabel();
        branch(a, taken);
        a.mov(esi, 0);
        a.jmp(done);
        a.Label(ref taken);
        a.mov(esi, 1);
        a.Label(ref done);
    }

    private static void Conditions(List<Form> forms)
    {
        for (int cc = 0; cc < 16; cc++)
        {
            int c = cc;
            string n = ConditionNames[cc];
            Code set = C($"Set{n}_rm8"), cmov32 = C($"Cmov{n}_r32_rm32"), cmov16 = C($"Cmov{n}_r16_rm16");
            // Flags straight from popfd: every combination the random flags make.
            forms.Add(F($"set{n} r8", (a, _) => Add(a, Instruction.Create(set, Register.BH))));
            forms.Add(F($"cmov{n} r32, r32", (a, _) => Add(a, Instruction.Create(cmov32, Register.ECX, Register.EDX))));
            forms.Add(F($"cmov{n} r16, m16", (a, _) => Add(a, Instruction.Create(cmov16, Register.DI, M(D + 2))), 0, Window.Data16));
            forms.Add(F($"j{n}", (a, _) => Branch(a, (b, l) => Jcc(b, c, l))));
            // Flags from a compare: the case an engine may evaluate without materializing EFLAGS.
            forms.Add(F($"cmp r32, r32; j{n}", (a, _) => { a.cmp(eax, ebx); Branch(a, (b, l) => Jcc(b, c, l)); }));
            forms.Add(F($"cmp r32, r32; set{n}", (a, _) => { a.cmp(edx, ecx); Add(a, Instruction.Create(set, Register.AL)); }));
            forms.Add(F($"add r16, r16; j{n}", (a, _) => { a.add(si, di); Branch(a, (b, l) => Jcc(b, c, l)); }));
            forms.Add(F($"sub r8, r8; cmov{n}", (a, _) => { a.sub(bl, ch); Add(a, Instruction.Create(cmov32, Register.EBP, Register.EAX)); }));
            // Narrow compares and tests: the threaded engine shifts 8- and 16-bit
            // operands to the top of the word and reuses the 32-bit conditions.
            forms.Add(F($"cmp r8, r8; j{n}", (a, _) => { a.cmp(al, bh); Branch(a, (b, l) => Jcc(b, c, l)); }));
            forms.Add(F($"cmp r8, imm8; j{n}", (a, _) => { a.cmp(dl, 0x80); Branch(a, (b, l) => Jcc(b, c, l)); }));
            forms.Add(F($"cmp r16, imm16; j{n}", (a, _) => { a.cmp(si, 0x7fff); Branch(a, (b, l) => Jcc(b, c, l)); }));
            forms.Add(F($"test r8, r8; j{n}", (a, _) => { a.test(cl, dl); Branch(a, (b, l) => Jcc(b, c, l)); }));
            forms.Add(F($"cmp r8, r8; set{n}", (a, _) => { a.cmp(ah, cl); Add(a, Instruction.Create(set, Register.DL)); }));
            forms.Add(F($"test r16, r16; set{n}", (a, _) => { a.test(bx, bp); Add(a, Instruction.Create(set, Register.AL)); }));
        }
        Action<Vector, Random, int> smallEcx = (v, r, i) => v[Gpr.Ecx] = i < 4 ? (uint)i : (i % 3 == 0 ? 0 : SnippetProgram.Interesting(r));
        forms.Add(new Form { Name = "jecxz", Emit = (a, _) => Branch(a, (b, l) => b.jecxz(l)), Fixup = smallEcx });
        forms.Add(new Form { Name = "loop", Emit = (a, _) => Branch(a, (b, l) => b.loop(l)), Fixup = smallEcx });
        forms.Add(new Form { Name = "loope", Emit = (a, _) => Branch(a, (b, l) => b.loope(l)), Fixup = smallEcx });
        forms.Add(new Form { Name = "loopne", Emit = (a, _) => Branch(a, (b, l) => b.loopne(l)), Fixup = smallEcx });
        forms.Add(F("jmp rel (forward over code)", (a, _) => Branch(a, (b, l) => b.jmp(l))));
    }

    // ---- push pop pushad popad pushfd popfd enter leave ------------------------------

    private static void Stack(List<Form> forms)
    {
        Window s = Window.Stack;
        forms.Add(F("push r32", (a, _) => a.push(ebx), 0, s));
        forms.Add(F("push r16", (a, _) => a.push(dx), 0, s));
        forms.Add(F("push esp", (a, _) => a.push(esp), 0, s));
        forms.Add(new Form { Name = "push imm32", Emit = (a, v) => Add(a, Instruction.Create(Code.Pushd_imm32, v.Imm)), Imm = (r, _) => SnippetProgram.Interesting(r), Windows = [s] });
        forms.Add(new Form { Name = "push imm8 (sign-extended)", Emit = (a, v) => Add(a, Instruction.Create(Code.Pushd_imm8, (int)(sbyte)v.Imm)), Imm = (r, _) => (uint)r.Next(256), Windows = [s] });
        forms.Add(F("push m32", (a, _) => a.push(__dword_ptr[D + 4]), 0, Window.Data16, s));
        forms.Add(F("push [esp+4]", (a, _) => a.push(__dword_ptr[esp + 4]), 0, s));
        forms.Add(F("pop r32", (a, _) => a.pop(ecx), 0, s));
        forms.Add(F("pop r16", (a, _) => a.pop(si), 0, s));
        forms.Add(F("pop m32", (a, _) => a.pop(__dword_ptr[D + 8]), 0, Window.Data16, s));
        // The address of pop's memory operand uses ESP after the pop.
        forms.Add(F("pop [esp+4]", (a, _) => a.pop(__dword_ptr[esp + 4]), 0, s));
        forms.Add(new Form
        {
            Name = "pop esp",
            Emit = (a, _) => a.pop(esp),
            Windows = [s],
            // The popped value becomes ESP, and the epilogue pushes there: keep it inside the window.
            Fixup = (v, r, _) => v.Mem[TopSlot] = L.StackTop - 4 * (uint)r.Next(0, 8),
        });
        forms.Add(F("push r32; pop r32", (a, _) => { a.push(edi); a.pop(eax); }, 0, s));
        forms.Add(F("pushad", (a, _) => a.pushad(), 0, s));
        forms.Add(F("popad", (a, _) => a.popad(), 0, s));
        forms.Add(F("pushfd", (a, _) => a.pushfd(), 0, s));
        forms.Add(F("add r32, r32; pushfd", (a, _) => { a.add(eax, edx); a.pushfd(); }, 0, s));
        forms.Add(new Form
        {
            Name = "popfd",
            Emit = (a, _) => a.popfd(),
            Windows = [s],
            // Only bits this machine lets popfd change (arithmetic, DF, ID),
            // plus reserved bits that must read back fixed; TF or IF would
            // trap or take interrupts, which is not what this tests.
            Fixup = (v, r, _) => v.Mem[TopSlot] = (uint)r.Next() & (Arith | DF | ID | (1u << 3) | (1u << 5) | (1u << 15) | Reserved1),
        });

        forms.Add(F("enter 16, 0", (a, _) => a.enter((ushort)16, (byte)0), 0, s));
        forms.Add(F("enter 0, 0", (a, _) => a.enter((ushort)0, (byte)0), 0, s));
        forms.Add(F("enter 8, 1", (a, _) => a.enter((ushort)8, (byte)1), 0, s));
        forms.Add(new Form
        {
            Name = "enter 4, 2",
            Emit = (a, _) => a.enter((ushort)4, (byte)2),
            Windows = [s],
            // Level 2 copies one frame pointer from [EBP-4]: EBP must point into the stack.
            Fixup = (v, r, _) => v[Gpr.Ebp] = L.StackTop + 4 * (uint)r.Next(0, 8),
        });
        forms.Add(new Form
        {
            Name = "leave",
            Emit = (a, _) => a.leave(),
            Windows = [s],
            Fixup = (v, r, _) => v[Gpr.Ebp] = L.StackWindow + 4 * (uint)r.Next(4, 20),
        });
    }

    // ---- movs stos lods cmps scas ----------------------------------------------------

    private static void Strings(List<Form> forms)
    {
        foreach (int size in (int[])[1, 2, 4])
        {
            char sfx = size switch { 1 => 'b', 2 => 'w', _ => 'd' };
            foreach ((string prefix, RepPrefixKind rep) in (ReadOnlySpan<(string, RepPrefixKind)>)[("", RepPrefixKind.None), ("rep ", RepPrefixKind.Repe)])
            {
                bool repeats = rep != RepPrefixKind.None;
                forms.Add(StringForm($"{prefix}movs{sfx}", size, repeats, compares: false, StringInstruction("movs", size, rep)));
                forms.Add(StringForm($"{prefix}stos{sfx}", size, repeats, compares: false, StringInstruction("stos", size, rep)));
                forms.Add(StringForm($"{prefix}lods{sfx}", size, repeats, compares: false, StringInstruction("lods", size, rep)));
            }
            foreach ((string prefix, RepPrefixKind rep) in (ReadOnlySpan<(string, RepPrefixKind)>)[("", RepPrefixKind.None), ("repe ", RepPrefixKind.Repe), ("repne ", RepPrefixKind.Repne)])
            {
                bool repeats = rep != RepPrefixKind.None;
                forms.Add(StringForm($"{prefix}cmps{sfx}", size, repeats, compares: true, StringInstruction("cmps", size, rep), cmps: true, stopOnEqual: rep == RepPrefixKind.Repne));
                forms.Add(StringForm($"{prefix}scas{sfx}", size, repeats, compares: true, StringInstruction("scas", size, rep), cmps: false, stopOnEqual: rep == RepPrefixKind.Repne));
            }
        }
    }

    private static Instruction StringInstruction(string op, int size, RepPrefixKind rep) => (op, size) switch
    {
        ("movs", 1) => Instruction.CreateMovsb(32, Register.None, rep),
        ("movs", 2) => Instruction.CreateMovsw(32, Register.None, rep),
        ("movs", _) => Instruction.CreateMovsd(32, Register.None, rep),
        ("stos", 1) => Instruction.CreateStosb(32, rep),
        ("stos", 2) => Instruction.CreateStosw(32, rep),
        ("stos", _) => Instruction.CreateStosd(32, rep),
        ("lods", 1) => Instruction.CreateLodsb(32, Register.None, rep),
        ("lods", 2) => Instruction.CreateLodsw(32, Register.None, rep),
        ("lods", _) => Instruction.CreateLodsd(32, Register.None, rep),
        ("cmps", 1) => Instruction.CreateCmpsb(32, Register.None, rep),
        ("cmps", 2) => Instruction.CreateCmpsw(32, Register.None, rep),
        ("cmps", _) => Instruction.CreateCmpsd(32, Register.None, rep),
        ("scas", 1) => Instruction.CreateScasb(32, rep),
        ("scas", 2) => Instruction.CreateScasw(32, rep),
        _ => Instruction.CreateScasd(32, rep),
    };

    /// <summary>
    /// A string form: ESI and EDI point into the data window far enough from
    /// its ends for 6 elements either way, ECX is a small count for rep, and
    /// DF is set in half the vectors. For cmps/scas with repe/repne the data is
    /// shaped so that the repetition stops early at a random element.
    /// </summary>
    private static Form StringForm(string name, int size, bool rep, bool compares, Instruction instruction, bool cmps = false, bool stopOnEqual = false) => new()
    {
        Name = name,
        Emit = (a, _) => a.AddInstruction(instruction),
        Windows = [Window.DataAll],
        VaryDf = true,
        Fixup = (v, r, i) =>
        {
            v[Gpr.Esi] = D + 0x28 + (uint)r.Next(16);
            v[Gpr.Edi] = D + 0x98 + (uint)r.Next(16);
            if (rep) v[Gpr.Ecx] = i < 7 ? (uint)i : (uint)r.Next(0, 7);
            if (!compares) return;

            int step = (v.Flags & DF) != 0 ? -size : size;
            int stop = r.Next(0, 7);
            uint acc = v[Gpr.Eax] & SizeMask(size * 8);
            for (int j = 0; j <= 6; j++)
            {
                uint at = (uint)(v[Gpr.Edi] + j * step);
                // The value the comparison of element j should find "equal" to.
                uint same = cmps ? ReadData(v, (uint)(v[Gpr.Esi] + j * step), size) : acc;
                bool equal = rep ? (stopOnEqual ? j == stop : j != stop) : r.Next(2) == 0;
                WriteData(v, at, size, equal ? same : same ^ (1u << r.Next(size * 8)));
            }
        },
    };

    // ---- call ret ----------------------------------------------------------------

    private static void Calls(List<Form> forms)
    {
        Window s = Window.Stack;
        forms.Add(F("call rel32; ret", (a, _) => a.call((ulong)Subroutines.Ret), 0, s));
        forms.Add(F("call rel32; ret imm16", (a, _) => { a.push(ecx); a.push(edx); a.call((ulong)Subroutines.RetImm); }, 0, s));
        forms.Add(F("call rel32 (callee reads the return address)", (a, _) => a.call((ulong)Subroutines.ReturnAddress), 0, s));
        forms.Add(F("call rel32 (callee with a frame, ret 4)", (a, _) => { a.push(ecx); a.call((ulong)Subroutines.Framed); }, 0, s));
        forms.Add(new Form
        {
            Name = "call r32",
            Emit = (a, _) => a.call(eax),
            Windows = [s],
            Fixup = (v, _, _) => v[Gpr.Eax] = Subroutines.ReturnAddress,
        });
        forms.Add(new Form
        {
            Name = "call m32",
            Emit = (a, _) => a.call(__dword_ptr[D]),
            Windows = [Window.Data16, s],
            Fixup = (v, _, _) => v.Mem[0] = Subroutines.Framed,
        });
        // call next; next: pop eax; add eax, 8; jmp eax; ud2; target:
        // (the pop leaves EAX = next; add, jmp and ud2 take 3 + 2 + 2 bytes,
        // plus the pop's 1: the target is next + 8).
        forms.Add(F("jmp r32", (a, _) =>
        {
            Label next = a.CreateLabel();
            a.call(next);
            a.Label(ref next);
            a.pop(eax);
            Add(a, Instruction.Create(Code.Add_rm32_imm8, Register.EAX, 8));
            a.jmp(eax);
            a.ud2();
        }, 0, s));
    }

    // ---- flag instructions -------------------------------------------------------------

    private static void FlagOps(List<Form> forms)
    {
        forms.Add(F("lahf", (a, _) => a.lahf()));
        forms.Add(F("sahf", (a, _) => a.sahf()));
        forms.Add(F("cmc", (a, _) => a.cmc()));
        forms.Add(F("clc", (a, _) => a.clc()));
        forms.Add(F("stc", (a, _) => a.stc()));
        forms.Add(F("cld", (a, _) => a.cld()));
        forms.Add(F("std", (a, _) => a.std()));
    }
}
