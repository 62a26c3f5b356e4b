using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using Iced.Intel;
using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Jit.Threaded;
using Sharpvisor.Jit.X64;
using Sharpvisor.Vmm;
using Sharpvisor.Vmm.Loader;

namespace Sharpvisor.Bench;

/// <summary>
/// The x64 tier's compile cost, and why it has its own encoder: compiling
/// every block a real guest ran (selecting the instructions from micro-ops
/// and encoding them) against the baseline of Iced's encoder alone
/// (BlockEncoder, which Iced's Assembler ends in) encoding the very same
/// machine code, already decoded into Iced instructions.
/// </summary>
[MemoryDiagnoser]
public unsafe class X64CompilerBench
{
    private Block[] _blocks = [];
    private List<Instruction>[] _decoded = [];
    private BlockCompiler _compiler = null!;
    private ThreadedHeader* _header;
    private Machine _machine = null!;

    [Params("sort", "switch", "int64")]
    public string Guest { get; set; } = "sort";

    [GlobalSetup]
    public void Setup()
    {
        _machine = ProcessRuns.RanGuest(Guest, EngineKind.X64);
        _blocks = _machine.Engine.BlockStarts.Select(s => _machine.Vcpu.BlockAt(s)!).OrderBy(b => b.Start).ToArray();
        _header = (ThreadedHeader*)NativeMemory.AllocZeroed((nuint)sizeof(ThreadedHeader));
        _compiler = new BlockCompiler(_machine.Engine.Memory.Size, _machine.Engine.CodePages, _machine.Engine.CodeBits, null);
        var decoded = new List<List<Instruction>>();
        long bytes = 0;
        foreach (var b in _blocks)
        {
            if (!_compiler.Compile(b, _header, 0x7000_0000))
                continue;
            byte[] code = _compiler.Output.Code.ToArray();
            bytes += code.Length;
            var d = Decoder.Create(64, code, 0x1000_0000);
            var list = new List<Instruction>();
            while (d.IP < 0x1000_0000ul + (ulong)code.Length) list.Add(d.Decode());
            decoded.Add(list);
        }
        _decoded = decoded.ToArray();
        Console.WriteLine($"// {Guest}: {_blocks.Length} blocks, {_decoded.Length} compiled, {_decoded.Sum(l => l.Count)} host instructions, {bytes} bytes");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        NativeMemory.Free(_header);
        _machine.Dispose();
    }

    [Benchmark(Baseline = true)]
    public int IcedBlockEncoder()
    {
        int total = 0;
        foreach (var list in _decoded)
        {
            var writer = new CountingWriter();
            if (!BlockEncoder.TryEncode(64, new InstructionBlock(writer, list, 0x1000_0000), out string? error, out _))
                throw new InvalidOperationException(error);
            total += writer.Count;
        }
        return total;
    }

    [Benchmark]
    public int CompileFromMicroOps()
    {
        int total = 0;
        foreach (var b in _blocks)
            if (_compiler.Compile(b, _header, 0x7000_0000))
                total += _compiler.Output.Length;
        return total;
    }

    private sealed class CountingWriter : CodeWriter
    {
        public int Count;
        public override void WriteByte(byte value) => Count++;
    }
}
