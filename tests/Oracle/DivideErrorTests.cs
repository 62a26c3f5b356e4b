using Iced.Intel;
using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Native;
using static Iced.Intel.AssemblerRegisters;

namespace Sharpvisor.Tests.Oracle;

/// <summary>
/// #DE, kept out of the vector programs (one fault ends a program): a zero
/// divisor and a quotient that does not fit. The real CPU, with no IDT, turns
/// the exception into a triple fault, and Unicorn stops at the divide; our
/// engine must stop with a fault at the divide, registers as they were before it.
/// </summary>
[Collection(OracleCollection.Name)]
public class DivideErrorTests
{
    private const uint Entry = 0x1000;

    public static TheoryData<string, EngineKind> Cases => new()
    {
        { "div by zero", EngineKind.Threaded }, { "div by zero", EngineKind.Il }, { "div by zero", EngineKind.X64 },
        { "idiv overflow", EngineKind.Threaded }, { "idiv overflow", EngineKind.Il }, { "idiv overflow", EngineKind.X64 },
        { "div r8 quotient overflow", EngineKind.Threaded }, { "div r8 quotient overflow", EngineKind.Il }, { "div r8 quotient overflow", EngineKind.X64 },
    };

    /// <summary>The program, and the address of its faulting divide.</summary>
    private static (byte[] Code, uint DivideAt) Program(string name)
    {
        var a = new Assembler(32);
        Label divide = a.CreateLabel();
        switch (name)
        {
            case "div by zero":
                a.mov(eax, 5); a.xor(edx, edx); a.xor(ecx, ecx);
                a.Label(ref divide); a.div(ecx);
                break;
            case "idiv overflow":
                a.mov(eax, 0x8000_0000); a.mov(edx, 0xFFFF_FFFF); a.mov(ecx, 0xFFFF_FFFF);
                a.Label(ref divide); a.idiv(ecx);
                break;
            default:
                a.mov(eax, 0x1000); a.mov(ebx, 2);
                a.Label(ref divide); a.div(bl); // 0x1000 / 2 = 0x800: does not fit AL
                break;
        }
        a.hlt();
        var writer = new BlockWriter();
        var result = a.Assemble(writer, Entry, BlockEncoderOptions.ReturnNewInstructionOffsets);
        uint at = (uint)result.GetLabelRIP(divide);
        return (writer.Bytes.ToArray(), at);
    }

    public static TheoryData<string, OracleKind> OracleCases => new()
    {
        { "div by zero", OracleKind.Kvm }, { "idiv overflow", OracleKind.Kvm }, { "div r8 quotient overflow", OracleKind.Kvm },
        { "div by zero", OracleKind.Unicorn }, { "idiv overflow", OracleKind.Unicorn }, { "div r8 quotient overflow", OracleKind.Unicorn },
    };

    /// <summary>
    /// The programs fault where the engine test expects, on each oracle that
    /// runs here: KVM, with no IDT, shuts down; Unicorn, with no interrupt
    /// hook, stops with UC_ERR_EXCEPTION at the divide.
    /// </summary>
    [Theory, MemberData(nameof(OracleCases))]
    public void DivideError_OnEachOracle_Faults(string name, OracleKind oracle)
    {
        OracleCollection.SkipUnless(oracle);
        (byte[] code, uint divideAt) = Program(name);
        var regs = new X86Regs { Eip = Entry };
        regs.Gpr[4] = 0x3000;
        if (oracle == OracleKind.Kvm)
        {
            using var cpu = new KvmCpu(0x4000);
            code.CopyTo(cpu.Memory[(int)Entry..]);
            var e = Assert.Throws<KvmExitException>(() => cpu.Run(regs));
            Assert.Equal(KvmInterop.KVM_EXIT_SHUTDOWN, e.ExitReason);
        }
        else
        {
            using var cpu = new UnicornCpu(0x4000);
            cpu.Write(Entry, code);
            var e = Assert.Throws<UnicornException>(() => cpu.Run(regs, until: Entry + (uint)code.Length - 1));
            Assert.Equal(UnicornInterop.UC_ERR_EXCEPTION, e.Err);
            Assert.Equal(divideAt, cpu.ReadRegs().Eip);
        }
    }

    [Theory, MemberData(nameof(Cases))]
    public unsafe void DivideError_OnEngine_IsAFaultAtTheDivide(string name, EngineKind kind)
    {
        (byte[] code, uint divideAt) = Program(name);
        using var mem = GuestMemory.Allocate(0x4000);
        using var engine = new ExecutionEngine(mem, kind);
        using var vcpu = new Vcpu(engine, 0, new OracleHost());
        code.CopyTo(new Span<byte>(mem.Base + Entry, code.Length));
        vcpu.State.Eip = Entry;
        vcpu.State[Gpr.Esp] = 0x3000;
        vcpu.State.SetEflags(Eflags.Reserved1);

        VcpuExit exit = vcpu.Run();
        Assert.Equal(StopReason.Fault, exit.Reason);
        Assert.Equal(divideAt, vcpu.State.Eip);
        // The divide did not happen: the dividend is still in place.
        Assert.Equal(name == "div by zero" ? 5u : name == "idiv overflow" ? 0x8000_0000u : 0x1000u, vcpu.State[Gpr.Eax]);
    }

    private sealed class BlockWriter : CodeWriter
    {
        public List<byte> Bytes { get; } = [];
        public override void WriteByte(byte value) => Bytes.Add(value);
    }
}
