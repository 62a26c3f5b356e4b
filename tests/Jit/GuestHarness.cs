using Iced.Intel;
using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Native;

namespace Sharpvisor.Tests.Jit;

/// <summary>Runs a few hand-assembled instructions on one engine: code at 0x1000, `hlt` ends the run.</summary>
internal sealed unsafe class GuestHarness : IDisposable, IVcpuHost
{
    public const uint CodeBase = 0x1000;
    public const ulong RamSize = 1 << 20;

    /// <param name="hotThreshold">Block entries before compiling; by default 64, and 1 for the x64 engine, so that its tests run machine code from the first entry.</param>
    public GuestHarness(EngineKind kind, Action<Assembler> program, int hotThreshold = 0, Qsbr? qsbr = null, int x64CodeBytes = Sharpvisor.Jit.X64.X64Tier.RegionSize, ulong ramSize = RamSize)
    {
        Memory = GuestMemory.Allocate(ramSize);
        var asm = new Assembler(32);
        program(asm);
        var stream = new MemoryStream();
        asm.Assemble(new StreamCodeWriter(stream), CodeBase);
        byte[] code = stream.ToArray();
        code.CopyTo(new Span<byte>(Memory.Base + CodeBase, code.Length));
        if (hotThreshold == 0)
            hotThreshold = kind == EngineKind.X64 ? 1 : 64;
        Engine = new ExecutionEngine(Memory, kind, qsbr, x64CodeBytes) { HotThreshold = hotThreshold };
        Vcpu = new Vcpu(Engine, 0, this);
        Vcpu.State.Eip = CodeBase;
        Vcpu.State[Gpr.Esp] = (uint)Math.Min(ramSize, 1ul << 20);
        Vcpu.State.SetEflags(Eflags.Initial);
    }

    public GuestMemory Memory { get; }
    public ExecutionEngine Engine { get; }
    public Vcpu Vcpu { get; }
    public ref CpuState State => ref Vcpu.State;

    /// <summary>Called on every hypercall; returns null to continue.</summary>
    public Func<Vcpu, VcpuExit?>? OnHypercall { get; set; }

    public VcpuExit Run() => Vcpu.Run();

    public uint Read32(uint address) => *(uint*)(Memory.Base + address);

    public VcpuExit? Hypercall(Vcpu vcpu) => OnHypercall?.Invoke(vcpu) ?? VcpuExit.Of(new GuestFault(FaultKind.UnknownHypercall, vcpu.State.Eip, null, null, [], vcpu.State[Gpr.Eax]));

    public VcpuExit? Halt(Vcpu vcpu) => new(StopReason.Shutdown, "hlt", 0);

    /// <summary>A device range for MMIO tests: accesses outside RAM at or above this go to <see cref="OnMmio"/>.</summary>
    public const uint MmioBase = 0xD000_0000;

    /// <summary>Serves device accesses (address, size, write, value stored or ref value loaded); returns null or a fault line. Null: no device.</summary>
    public MmioHandler? OnMmio { get; set; }

    public delegate string? MmioHandler(uint address, int size, bool write, ref uint value);

    public bool ClaimsMmio(uint address) => OnMmio != null && address >= MmioBase;

    public string? Mmio(Vcpu vcpu, uint address, int size, bool write, ref uint value) => OnMmio!(address, size, write, ref value);

    public static TheoryData<EngineKind> Kinds => new(EngineKind.Threaded, EngineKind.Il, EngineKind.X64);

    public static void SkipIfUnavailable(EngineKind kind)
    {
        if (kind == EngineKind.Il && !Engines.IsIlAvailable)
            Assert.Skip("the IL engine needs dynamic code");
        if (kind == EngineKind.X64 && !Engines.IsX64Available)
            Assert.Skip("the x64 engine needs an x86-64 Linux host");
    }

    public void Dispose()
    {
        Vcpu.Dispose();
        Engine.Dispose();
        Memory.Dispose();
    }
}
