using System.Runtime.InteropServices;
using System.Text;
using Iced.Intel;
using Sharpvisor.Jit.Cpu;
using static Iced.Intel.AssemblerRegisters;

namespace Sharpvisor.Tests.Oracle;

/// <summary>
/// Where a snippet program puts things in guest-physical memory. Identical on
/// KVM and on the engine, so the same bytes run on both and the result areas
/// compare byte for byte.
/// </summary>
internal static class GuestLayout
{
    public const uint MemorySize = 0x10_0000;
    /// <summary>Callees for the call/ret forms, at fixed addresses so a vector can name them in a register or in memory.</summary>
    public const uint Subroutines = 0x1000;
    /// <summary>Memory operands and string buffers.</summary>
    public const uint Data = 0x2000;
    public const int DataBytes = 0x100;
    /// <summary>ESP at the start of every vector; the stack window straddles it so pops read vector data.</summary>
    public const uint StackTop = 0x8000;
    public const uint StackWindow = StackTop - 0x30;
    public const int StackWindowBytes = 0x60;
    public const uint Code = 0x1_0000;
    public const uint CodeLimit = 0x8_0000;
    public const uint Results = 0x8_0000;
}

/// <summary>A run of guest memory a form reads or writes: set from the vector before, saved to the result after.</summary>
internal readonly record struct Window(uint Address, int Bytes)
{
    public int Dwords => Bytes / 4;

    public static readonly Window Data16 = new(GuestLayout.Data, 16);
    public static readonly Window DataAll = new(GuestLayout.Data, GuestLayout.DataBytes);
    public static readonly Window Stack = new(GuestLayout.StackWindow, GuestLayout.StackWindowBytes);
}

/// <summary>What the architecture leaves undefined for one vector: these flags and registers are not compared.</summary>
internal readonly record struct Undefined(uint Flags, byte Registers = 0)
{
    public static readonly Undefined None = new(0);
}

/// <summary>One set of inputs for a form: all eight registers, EFLAGS, the form's memory windows and its immediate.</summary>
internal sealed class Vector
{
    public uint[] Regs { get; } = new uint[8];
    public uint Flags { get; set; }
    /// <summary>The immediate, for forms whose encoding carries one (each vector assembles its own copy of the instruction).</summary>
    public uint Imm { get; set; }
    /// <summary>The windows' initial contents, window after window.</summary>
    public uint[] Mem { get; init; } = [];

    public Span<byte> MemBytes => MemoryMarshal.AsBytes(Mem.AsSpan());

    public ref uint this[Gpr r] => ref Regs[(int)r];
}

/// <summary>
/// One instruction form under test: how to emit it for a vector, which inputs
/// it needs (valid pointers, a divisor that does not fault), which memory it
/// touches and what the manuals leave undefined. Its name is the test case.
/// </summary>
internal sealed class Form
{
    public required string Name { get; init; }
    public required Action<Assembler, Vector> Emit { get; init; }
    public Window[] Windows { get; init; } = [];
    /// <summary>Adjusts the random inputs: the vector index lets a form cover its cases in order.</summary>
    public Action<Vector, Random, int>? Fixup { get; init; }
    /// <summary>The immediate of vector i; null for forms without a per-vector immediate.</summary>
    public Func<Random, int, uint>? Imm { get; init; }
    public Func<Vector, Undefined>? UndefinedFor { get; init; }
    /// <summary>Flags undefined for every vector (folded into <see cref="UndefinedFor"/>'s answer).</summary>
    public uint UndefinedFlags { get; init; }
    /// <summary>String forms run with DF set in some vectors; everything else keeps DF clear.</summary>
    public bool VaryDf { get; init; }
    public int VectorCount { get; init; } = 32;
    /// <summary>Why KVM here cannot serve as this form's oracle (see <see cref="OracleGaps"/>); null when it can.</summary>
    public Func<string?>? OracleGap { get; init; }
    /// <summary>
    /// Where KVM has a gap, what the form computes, for a second-best oracle
    /// (the form's values still come from the host CPU where it can supply
    /// them); null leaves such a form untested against anything but itself.
    /// </summary>
    public Func<Vector, VectorResult>? Model { get; init; }

    public Undefined Undefined(Vector v)
    {
        Undefined u = UndefinedFor?.Invoke(v) ?? Oracle.Undefined.None;
        return u with { Flags = u.Flags | UndefinedFlags };
    }

    public override string ToString() => Name;
}

/// <summary>The state one vector left: the eight registers, EFLAGS and the form's windows.</summary>
internal sealed record VectorResult(uint[] Regs, uint Eflags, uint[] Mem);

/// <summary>
/// A whole guest program for one form: for each vector, load the registers,
/// EFLAGS (push imm32; popfd) and memory windows, run the instruction, then
/// store the registers, the windows and EFLAGS (pushfd) to that vector's
/// record in the result area; <c>hlt</c> after the last vector. One program
/// per form means one KVM_RUN per form, which matters under nested KVM where
/// every exit is slow.
/// </summary>
/// <remarks>
/// Only plain moves, push imm/popfd and pushfd/pop surround the instruction
/// under test, so a broken engine instruction shows up in its own form's
/// test rather than in every test. The moves change no flags, which is why the
/// flags are loaded first and saved last.
/// </remarks>
internal sealed class SnippetProgram
{
    private static readonly AssemblerRegister32[] Gprs = [eax, ecx, edx, ebx, esp, ebp, esi, edi];

    /// <summary>Edge values every form sees: zero, one, all ones and the sign boundaries of each size.</summary>
    public static readonly uint[] Edges = [0, 1, 0xFFFF_FFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFF, 0x80, 0x7F, 0xFFFF, 0x8000];

    private SnippetProgram(Form form, Vector[] vectors, byte[] code, byte[] subroutines, int recordBytes)
    {
        Form = form;
        Vectors = vectors;
        Code = code;
        SubroutineBytes = subroutines;
        RecordBytes = recordBytes;
    }

    public Form Form { get; }
    public Vector[] Vectors { get; }
    public byte[] Code { get; }
    public byte[] SubroutineBytes { get; }
    /// <summary>Bytes per vector in the result area: 8 registers, EFLAGS, then the windows.</summary>
    public int RecordBytes { get; }

    /// <summary>Where EIP is after the final <c>hlt</c>, on KVM and on the engine alike.</summary>
    public uint EndEip => GuestLayout.Code + (uint)Code.Length;

    public static SnippetProgram Build(Form form)
    {
        var random = new Random(StableSeed(form.Name));
        var vectors = new Vector[form.VectorCount];
        int windowDwords = form.Windows.Sum(w => w.Dwords);
        for (int i = 0; i < vectors.Length; i++)
            vectors[i] = MakeVector(form, random, i, windowDwords);

        int recordBytes = 36 + 4 * windowDwords;
        var a = new Assembler(32);
        for (int i = 0; i < vectors.Length; i++)
            EmitVector(a, form, vectors[i], GuestLayout.Results + (uint)(i * recordBytes));
        a.hlt();
        byte[] code = Assemble(a, GuestLayout.Code);
        if (GuestLayout.Code + code.Length > GuestLayout.CodeLimit)
            throw new InvalidOperationException($"{form.Name}: program of {code.Length} bytes overruns the code area");
        if (GuestLayout.Results + (ulong)(vectors.Length * recordBytes) > GuestLayout.MemorySize)
            throw new InvalidOperationException($"{form.Name}: results overrun guest memory");
        return new SnippetProgram(form, vectors, code, Subroutines.Bytes, recordBytes);
    }

    /// <summary>The registers at entry: only EIP and ESP matter, the program sets everything else.</summary>
    public X86Regs EntryRegs()
    {
        var r = new X86Regs { Eip = GuestLayout.Code, Eflags = Eflags.Reserved1 };
        r.Gpr[4] = GuestLayout.StackTop;
        return r;
    }

    /// <summary>Copies the program and the subroutines into guest memory (which must be zeroed, as both backends' is).</summary>
    public void Load(Span<byte> memory)
    {
        SubroutineBytes.CopyTo(memory[(int)GuestLayout.Subroutines..]);
        Code.CopyTo(memory[(int)GuestLayout.Code..]);
    }

    public VectorResult[] ReadResults(ReadOnlySpan<byte> memory)
    {
        var results = new VectorResult[Vectors.Length];
        for (int i = 0; i < results.Length; i++)
        {
            ReadOnlySpan<uint> rec = MemoryMarshal.Cast<byte, uint>(
                memory.Slice((int)GuestLayout.Results + i * RecordBytes, RecordBytes));
            results[i] = new VectorResult(rec[..8].ToArray(), rec[8], rec[9..].ToArray());
        }
        return results;
    }

    private static Vector MakeVector(Form form, Random r, int i, int windowDwords)
    {
        var v = new Vector { Mem = new uint[windowDwords] };
        for (int g = 0; g < 8; g++)
        {
            // The first twenty vectors walk the edges so that every pair of
            // registers meets many edge pairs; the rest are random, biased
            // towards edges and small numbers where carries and signs change.
            v.Regs[g] = i < 10 ? Edges[(i + 3 * g) % Edges.Length]
                : i < 20 ? Edges[(i * 7 + g) % Edges.Length]
                : Interesting(r);
        }
        v[Gpr.Esp] = GuestLayout.StackTop;

        uint flags = Eflags.Reserved1 | ((uint)r.Next() & (Eflags.Arith & ~Eflags.CF));
        // CF on input both ways across the edge vectors (adc, sbb, rcl and
        // rcr read it), in a pattern that does not follow the edge index.
        if (((i ^ (i >> 1)) & 1) != 0) flags |= Eflags.CF;
        if (form.VaryDf && (i & 2) != 0) flags |= Eflags.DF;
        v.Flags = flags;

        for (int k = 0; k < v.Mem.Length; k++) v.Mem[k] = Interesting(r);
        if (form.Imm is { } imm) v.Imm = imm(r, i);
        form.Fixup?.Invoke(v, r, i);
        return v;
    }

    /// <summary>A random value that is often an edge, a small number or an edge with one bit flipped.</summary>
    public static uint Interesting(Random r) => r.Next(5) switch
    {
        0 => Edges[r.Next(Edges.Length)],
        1 => (uint)r.Next(0, 64),
        2 => Edges[r.Next(Edges.Length)] ^ (1u << r.Next(32)),
        _ => (uint)r.NextInt64(0, 1L << 32),
    };

    private static void EmitVector(Assembler a, Form form, Vector v, uint record)
    {
        a.mov(esp, GuestLayout.StackTop);
        a.push(v.Flags);
        a.popfd();
        // The windows after the flags: the push above writes below the stack
        // top, inside the stack window.
        int k = 0;
        foreach (Window w in form.Windows)
            for (int d = 0; d < w.Dwords; d++)
                a.mov(__dword_ptr[w.Address + (uint)(4 * d)], v.Mem[k++]);
        for (int g = 0; g < 8; g++)
            a.mov(Gprs[g], v.Regs[g]);

        form.Emit(a, v);

        for (int g = 0; g < 8; g++)
            a.mov(__dword_ptr[record + (uint)(4 * g)], Gprs[g]);
        uint slot = record + 36;
        foreach (Window w in form.Windows)
            for (int d = 0; d < w.Dwords; d++, slot += 4)
            {
                a.mov(eax, __dword_ptr[w.Address + (uint)(4 * d)]);
                a.mov(__dword_ptr[slot], eax);
            }
        // Last, so that pushfd's store below ESP cannot land in a window
        // before the window is saved.
        a.pushfd();
        a.pop(eax);
        a.mov(__dword_ptr[record + 32], eax);
    }

    internal static byte[] Assemble(Assembler a, uint address)
    {
        var writer = new ByteWriter();
        a.Assemble(writer, address);
        return writer.Bytes.ToArray();
    }

    /// <summary>FNV-1a of the form name: string.GetHashCode changes from run to run, and the vectors must not.</summary>
    private static int StableSeed(string s)
    {
        uint h = 2166136261;
        foreach (char c in s) h = (h ^ c) * 16777619;
        return (int)h;
    }

    private sealed class ByteWriter : CodeWriter
    {
        public List<byte> Bytes { get; } = [];
        public override void WriteByte(byte value) => Bytes.Add(value);
    }

    /// <summary>Inputs of one vector, for a failure message.</summary>
    public string DescribeInputs(int index)
    {
        Vector v = Vectors[index];
        var sb = new StringBuilder();
        sb.Append(string.Join(' ', v.Regs.Select((x, g) => $"{X86Regs.Names[g]}={x:x8}")));
        sb.Append($" EFLAGS={v.Flags:x8} ({FlagNames(v.Flags)})");
        if (Form.Imm != null) sb.Append($" imm=0x{v.Imm:x}");
        int k = 0;
        foreach (Window w in Form.Windows)
        {
            sb.Append($"\n    mem 0x{w.Address:x}:");
            for (int d = 0; d < w.Dwords; d++) sb.Append($" {v.Mem[k++]:x8}");
        }
        return sb.ToString();
    }

    public static readonly (uint Bit, string Name)[] FlagBits =
    [
        (Eflags.CF, "CF"), (Eflags.PF, "PF"), (Eflags.AF, "AF"), (Eflags.ZF, "ZF"), (Eflags.SF, "SF"),
        (Eflags.TF, "TF"), (Eflags.IF, "IF"), (Eflags.DF, "DF"), (Eflags.OF, "OF"), (Eflags.ID, "ID"),
    ];

    public static string FlagNames(uint flags)
    {
        string s = string.Join(' ', FlagBits.Where(f => (flags & f.Bit) != 0).Select(f => f.Name));
        return s.Length == 0 ? "none" : s;
    }
}

/// <summary>
/// Callees at fixed addresses, for the call and ret forms. Each is assembled
/// at its own address, so its bytes do not depend on the others.
/// </summary>
internal static class Subroutines
{
    /// <summary><c>ret</c></summary>
    public const uint Ret = GuestLayout.Subroutines;
    /// <summary><c>ret 8</c>: pops two argument dwords with the return address.</summary>
    public const uint RetImm = GuestLayout.Subroutines + 0x10;
    /// <summary><c>mov edx, [esp]; ret</c>: leaves the return address in EDX.</summary>
    public const uint ReturnAddress = GuestLayout.Subroutines + 0x20;
    /// <summary>A C-style callee with a frame: EAX = its argument + EBX; <c>ret 4</c>.</summary>
    public const uint Framed = GuestLayout.Subroutines + 0x30;

    public static readonly byte[] Bytes = Build();

    private static byte[] Build()
    {
        var image = new byte[0x40];
        Put(image, Ret, a => a.ret());
        Put(image, RetImm, a => a.ret(8));
        Put(image, ReturnAddress, a => { a.mov(edx, __dword_ptr[esp]); a.ret(); });
        Put(image, Framed, a =>
        {
            a.push(ebp);
            a.mov(ebp, esp);
            a.mov(eax, __dword_ptr[ebp + 8]);
            a.add(eax, ebx);
            a.leave();
            a.ret(4);
        });
        return image;
    }

    private static void Put(byte[] image, uint address, Action<Assembler> body)
    {
        var a = new Assembler(32);
        body(a);
        byte[] code = SnippetProgram.Assemble(a, address);
        if (code.Length > 0x10) throw new InvalidOperationException($"subroutine at 0x{address:x} is {code.Length} bytes");
        code.CopyTo(image, (int)(address - GuestLayout.Subroutines));
    }
}
