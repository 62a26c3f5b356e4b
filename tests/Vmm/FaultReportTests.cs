using System.Text.Json;
using Iced.Intel;
using Sharpvisor.Jit.Runtime;
using static Iced.Intel.AssemblerRegisters;

namespace Sharpvisor.Tests.Vmm;

/// <summary>
/// Each kind of guest fault through <c>sharpvisor run --regs</c> on every
/// engine: the one stderr line, and the <c>"fault"</c> object field by field.
/// Memory faults come after a loop of a few hundred turns, so that the IL
/// and x64 engines raise them from compiled code, not only the cold tier.
/// </summary>
public class FaultReportTests
{
    private const uint Ram = 1 << 20;
    private const uint Load = 0x1000;

    /// <summary>Where the faulting instruction is (a class, so the program can bind its label in place).</summary>
    private sealed class Mark { public Label Label; }

    /// <param name="Program">Writes the guest; the mark's label marks the faulting instruction (its address is the expected EIP).</param>
    /// <param name="At">Where the image is loaded.</param>
    /// <param name="Eip">The expected EIP when it is not the label's (a fetch outside RAM).</param>
    private sealed record Case(Action<Assembler, Mark> Program, string Kind, uint? Address, uint? Size, string Bytes,
        uint? Hypercall = null, uint At = Load, uint? Eip = null, string[]? Extra = null);

    /// <summary>The lowest address a walk of 4 KiB steps from 0x2000 reaches outside 1 MiB of RAM.</summary>
    private const uint End = Ram;

    private static readonly Dictionary<string, Case> Cases = new()
    {
        ["read"] = new((a, f) =>
        {
            // mov ebx, 0x2000; f: mov eax, [ebx]; add ebx, 0x1000; jmp f
            a.mov(ebx, 0x2000);
            a.Label(ref f.Label);
            a.mov(eax, __dword_ptr[ebx]);
            a.add(ebx, 0x1000);
            a.jmp(f.Label);
        }, "read_outside_ram", End, 4, "8b03"),
        ["write"] = new((a, f) =>
        {
            a.mov(ebx, 0x2000);
            a.Label(ref f.Label);
            a.mov(__word_ptr[ebx + 2], ax);
            a.add(ebx, 0x1000);
            a.jmp(f.Label);
        }, "write_outside_ram", End + 2, 2, "66894302"),
        ["access"] = new((a, f) =>
        {
            // popad checks its 32 bytes before it reads any.
            a.mov(esp, 0x2000);
            a.Label(ref f.Label);
            a.popad();
            a.add(esp, 0x1000 - 32);
            a.jmp(f.Label);
        }, "access_outside_ram", End, 32, "61"),
        ["fetch"] = new((a, f) =>
        {
            a.mov(ecx, 300);
            Label loop = a.CreateLabel();
            a.Label(ref loop);
            a.dec(ecx);
            a.jnz(loop);
            a.mov(eax, 0x7ff00000);
            a.Label(ref f.Label);
            a.jmp(eax);
        }, "fetch_outside_ram", 0x7ff00000, null, "", Eip: 0x7ff00000),
        ["fetch straddling the end of RAM"] = new((a, f) =>
        {
            // The last three bytes of RAM hold the first three of a five-byte mov.
            a.Label(ref f.Label);
            a.db(0xb8, 0x01, 0x02);
        }, "fetch_outside_ram", End, null, "b80102", At: End - 3),
        ["running off the end of RAM"] = new((a, f) =>
        {
            // A complete instruction in the last byte of RAM: execution goes on at the first byte outside.
            a.Label(ref f.Label);
            a.nop();
        }, "fetch_outside_ram", End, null, "", At: End - 1, Eip: End),
        ["divide"] = new((a, f) =>
        {
            a.mov(ecx, 300);
            Label loop = a.CreateLabel();
            a.Label(ref loop);
            a.xor(edx, edx);
            a.mov(eax, 10);
            a.Label(ref f.Label);
            a.div(ecx);
            a.dec(ecx);
            a.jmp(loop);
        }, "divide_error", null, null, "f7f1"),
        ["invalid"] = new((a, f) =>
        {
            // FF /7 is no instruction; RAM after the image is zero, so all 15 bytes are reported.
            a.Label(ref f.Label);
            a.db(0xff, 0xff);
        }, "invalid_instruction", null, null, "ffff" + string.Concat(Enumerable.Repeat("00", 13))),
        ["unsupported"] = new((a, f) =>
        {
            a.mov(dx, 0x3f8);
            a.Label(ref f.Label);
            a.@in(al, dx);
        }, "unsupported_instruction", null, null, "ec"),
        ["unknown hypercall"] = new((a, f) =>
        {
            a.mov(eax, 99);
            a.Label(ref f.Label);
            a.@int(0x1f);
        }, "unknown_hypercall", null, null, "cd1f", Hypercall: 99),
        ["notify value 0"] = new((a, f) =>
        {
            a.mov(eax, 17);
            a.mov(ebx, 0);
            a.Label(ref f.Label);
            a.@int(0x1f);
        }, "notify_value_zero", null, null, "cd1f", Hypercall: 17),
        ["console write outside RAM"] = new((a, f) =>
        {
            a.mov(eax, 32);
            a.mov(ebx, 0xfffff000);
            a.mov(ecx, 16);
            a.Label(ref f.Label);
            a.@int(0x1f);
        }, "console_write_outside_ram", 0xfffff000, 16, "cd1f", Hypercall: 32),
        ["device"] = new((a, f) =>
        {
            // A read-modify-write of a device register: not one plain access.
            a.Label(ref f.Label);
            a.add(__dword_ptr[0xd000_0070u], eax);
        }, "device_access", 0xd0000070, null, "0105700000d0", Extra: ["--device", "rng"]),
    };

    public static TheoryData<string, string> EngineAndCase()
    {
        var data = new TheoryData<string, string>();
        foreach (string engine in new[] { "il", "x64", "threaded" })
            foreach (string name in Cases.Keys)
                data.Add(engine, name);
        return data;
    }

    private static (string Path, uint Eip) Build(TempDir dir, Case c)
    {
        var asm = new Assembler(32);
        var f = new Mark { Label = asm.CreateLabel() };
        c.Program(asm, f);
        var stream = new MemoryStream();
        AssemblerResult result = asm.Assemble(new StreamCodeWriter(stream), c.At, BlockEncoderOptions.ReturnNewInstructionOffsets);
        return (dir.Write("guest.bin", stream.ToArray()), (uint)result.GetLabelRIP(f.Label));
    }

    internal static (CliTests.Result Result, JsonElement Root) Run(string path, uint at, string engine, params string[] extra)
    {
        CliTests.Result r = CliTests.Execute(["run", path, "--flat", $"0x{at:x}", "--mem", "1M", "--engine", engine, "--timeout", "60", "--regs", .. extra]);
        using JsonDocument doc = JsonDocument.Parse(r.StderrLines[^1]);
        return (r, doc.RootElement.Clone());
    }

    private static void AssertNumberOrNull(uint? expected, JsonElement value)
    {
        if (expected is uint v) Assert.Equal(v, value.GetUInt32());
        else Assert.Equal(JsonValueKind.Null, value.ValueKind);
    }

    [Theory]
    [MemberData(nameof(EngineAndCase))]
    public void Fault_IsReportedAsDataInRegsJson_AndAsTheStopLine(string engine, string name)
    {
        Case c = Cases[name];
        using var dir = new TempDir();
        (string path, uint label) = Build(dir, c);
        uint eip = c.Eip ?? label;
        (CliTests.Result r, JsonElement root) = Run(path, c.At, engine, c.Extra ?? []);

        Assert.Equal(80, r.Status);
        Assert.Equal(2, r.StderrLines.Length);
        JsonElement stop = root.GetProperty("stop");
        Assert.Equal("fault", stop.GetProperty("reason").GetString());
        // The stop line is the record's own description, and so is the JSON's message.
        Assert.Equal($"sharpvisor: guest fault: {stop.GetProperty("message").GetString()}", r.StderrLines[0]);

        JsonElement fault = root.GetProperty("fault");
        Assert.Equal(["kind", "address", "size", "eip", "bytes", "hypercall"], fault.EnumerateObject().Select(p => p.Name));
        Assert.Equal(c.Kind, fault.GetProperty("kind").GetString());
        AssertNumberOrNull(c.Address, fault.GetProperty("address"));
        AssertNumberOrNull(c.Size, fault.GetProperty("size"));
        Assert.Equal(eip, fault.GetProperty("eip").GetUInt32());
        Assert.Equal(c.Bytes, fault.GetProperty("bytes").GetString());
        AssertNumberOrNull(c.Hypercall, fault.GetProperty("hypercall"));
        // The registers are as before the faulting instruction, with EIP at it.
        Assert.Equal(eip, root.GetProperty("vcpus")[0].GetProperty("eip").GetUInt32());
    }

    [Theory]
    [InlineData("il")]
    [InlineData("x64")]
    [InlineData("threaded")]
    public void LoneNopAtTheLastByteOfDefaultRam_IsAFetchFaultAtTheEndOfRam_Exit80(string engine)
    {
        using var dir = new TempDir();
        string path = dir.Write("nop.bin", [0x90]);
        CliTests.Result r = CliTests.Execute("run", path, "--flat", "0x3ffffff", "--engine", engine, "--timeout", "60", "--regs");
        Assert.Equal(80, r.Status);
        Assert.Equal("sharpvisor: guest fault: instruction fetch at 0x04000000 outside guest RAM", r.StderrLines[0]);
        using JsonDocument doc = JsonDocument.Parse(r.StderrLines[^1]);
        Assert.Equal("fetch_outside_ram", doc.RootElement.GetProperty("fault").GetProperty("kind").GetString());
        Assert.Equal(0x4000000u, doc.RootElement.GetProperty("fault").GetProperty("eip").GetUInt32());
        Assert.Equal(0x4000000u, doc.RootElement.GetProperty("vcpus")[0].GetProperty("eip").GetUInt32());
    }

    [Theory]
    [InlineData("il")]
    [InlineData("x64")]
    [InlineData("threaded")]
    public void BlockOfNothingButNops_RunsOnIntoTheNextPage(string engine)
    {
        // One nop in the last byte of a page is a block without a micro-op of its own.
        using var dir = new TempDir();
        string path = dir.Write("nops.bin", [0x90, 0xB8, 2, 0, 0, 0, 0xBB, 5, 0, 0, 0, 0xCD, 0x1F]); // nop; mov eax, 2; mov ebx, 5; int 0x1f
        CliTests.Result r = CliTests.Execute("run", path, "--flat", "0x1fff", "--engine", engine, "--timeout", "60");
        Assert.Equal(5, r.Status);
        Assert.Equal("", r.Stderr);
    }

    /// <summary>
    /// Every way an instruction can address memory with 16-bit registers (a
    /// 0x67 prefix), and jcxz/loop counting in CX: not in the ABI, so each is
    /// an unsupported instruction, named, never a 32-bit access.
    /// </summary>
    [Theory]
    [MemberData(nameof(EngineAndAddress16Form))]
    public void AddressSizePrefix_IsAnUnsupportedInstruction_NamedWithItsBytes(string engine, string hex, string name)
    {
        byte[] form = Convert.FromHexString(hex);
        using var dir = new TempDir();
        var asm = new Assembler(32);
        Label main = asm.CreateLabel(), done = asm.CreateLabel(), f = asm.CreateLabel();
        asm.jmp(main);
        asm.Label(ref done);
        // done (0x1002): shut down with status 0, where the form would go on to if it ran.
        asm.mov(eax, 2);
        asm.xor(ebx, ebx);
        asm.@int(0x1f);
        asm.Label(ref main);
        asm.mov(__dword_ptr[0x2000], 0x1002); // jmp/call [bx] would go to done
        asm.mov(ebx, 0x2000);
        asm.mov(esi, 0x3000);
        asm.mov(edi, 0x4000);
        asm.mov(ecx, 1);
        asm.mov(eax, 0);
        asm.Label(ref f);
        asm.db(form);
        asm.jmp(done);
        var stream = new MemoryStream();
        AssemblerResult result = asm.Assemble(new StreamCodeWriter(stream), Load, BlockEncoderOptions.ReturnNewInstructionOffsets);
        string path = dir.Write("a16.bin", stream.ToArray());
        Assert.Equal(0x1002UL, result.GetLabelRIP(done));
        uint eip = (uint)result.GetLabelRIP(f);
        name = name.Replace("NEXT", $"{eip + form.Length:x8}h");

        (CliTests.Result r, JsonElement root) = Run(path, Load, engine);

        Assert.Equal(80, r.Status);
        Assert.Equal($"sharpvisor: guest fault: unsupported instruction '{name}' (bytes {string.Join(' ', form.Select(b => b.ToString("x2")))}) at eip 0x{eip:x8}", r.StderrLines[0]);
        JsonElement fault = root.GetProperty("fault");
        Assert.Equal("unsupported_instruction", fault.GetProperty("kind").GetString());
        Assert.Equal(JsonValueKind.Null, fault.GetProperty("address").ValueKind);
        Assert.Equal(JsonValueKind.Null, fault.GetProperty("size").ValueKind);
        Assert.Equal(eip, fault.GetProperty("eip").GetUInt32());
        Assert.Equal(hex, fault.GetProperty("bytes").GetString());
        Assert.Equal(eip, root.GetProperty("vcpus")[0].GetProperty("eip").GetUInt32());
        Assert.Equal(0x2000u, root.GetProperty("vcpus")[0].GetProperty("ebx").GetUInt32());
    }

    private static readonly (string Hex, string Name)[] Address16Forms =
    [
        ("678b07", "mov eax,[bx]"),
        ("678b4702", "mov eax,[bx+2]"),
        ("678b00", "mov eax,[bx+si]"),
        ("678b061000", "mov eax,[10h]"),
        ("67a11000", "mov eax,[word 10h]"),
        ("67c60001", "mov byte [bx+si],1"),
        ("670fb607", "movzx eax,byte [bx]"),
        ("67f00107", "lock add [bx],eax"),
        ("678d07", "lea eax,[bx]"),
        ("67ff27", "jmp dword [bx]"),
        ("67ff17", "call dword [bx]"),
        ("67ff37", "push dword [bx]"),
        ("678f07", "pop dword [bx]"),
        ("67a4", "a16 movsb"),
        ("67f3a5", "a16 rep movsd"),
        ("67ac", "a16 lodsb"),
        ("67aa", "a16 stosb"),
        ("67ae", "a16 scasb"),
        ("67a6", "a16 cmpsb"),
        ("67d7", "a16 xlatb"),
        ("67e300", "jcxz NEXT"),
        ("67e200", "loop NEXT,cx"),
        ("67e100", "loope NEXT,cx"),
        ("67e000", "loopne NEXT,cx"),
    ];

    public static TheoryData<string, string, string> EngineAndAddress16Form()
    {
        var data = new TheoryData<string, string, string>();
        foreach (string engine in new[] { "il", "x64", "threaded" })
            foreach ((string hex, string name) in Address16Forms)
                data.Add(engine, hex, name);
        return data;
    }

    [Theory]
    [InlineData("il")]
    [InlineData("x64")]
    [InlineData("threaded")]
    public void StopThatIsNoFault_HasANullFault(string engine)
    {
        using var dir = new TempDir();
        string path = dir.Write("hi.elf", TestElf.HiGuest().Build());
        CliTests.Result r = CliTests.Execute("run", path, "--engine", engine, "--timeout", "60", "--regs");
        Assert.Equal(7, r.Status);
        using JsonDocument doc = JsonDocument.Parse(r.StderrLines[^1]);
        Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("fault").ValueKind);
    }

    [Fact]
    public void EveryFaultKind_HasAJsonName_AndNoTwoShareOne()
    {
        string[] names = Enum.GetValues<FaultKind>().Select(FaultKinds.JsonName).ToArray();
        Assert.Equal(names.Length, names.Distinct().Count());
        Assert.All(names, n => Assert.Matches("^[a-z_]+$", n));
    }

    [Fact]
    public void GuestAbiDoc_NamesEveryFaultKind()
    {
        string doc = File.ReadAllText(Path.Combine(RepoRoot(), "docs", "guest-abi.md"));
        string section = doc[doc.IndexOf("## A fault in `--regs`", StringComparison.Ordinal)..];
        section = section[..section.IndexOf("\n## ", 1, StringComparison.Ordinal)];
        var named = System.Text.RegularExpressions.Regex.Matches(section, "`([a-z_]+)`").Select(m => m.Groups[1].Value)
            .Where(n => n.Contains('_')).ToHashSet();
        Assert.Equal(Enum.GetValues<FaultKind>().Select(FaultKinds.JsonName).Order(), named.Order());
    }

    private static string RepoRoot() =>
        Sharpvisor.Journey.JourneyGenerator.FindRepoRoot(AppContext.BaseDirectory)
        ?? throw new InvalidOperationException($"no aot.sln above {AppContext.BaseDirectory}");

    [Fact]
    public void EveryFaultKind_IsCoveredByACase()
    {
        var covered = Cases.Values.Select(c => c.Kind).ToHashSet();
        Assert.All(Enum.GetValues<FaultKind>(), k => Assert.Contains(FaultKinds.JsonName(k), covered));
    }
}
