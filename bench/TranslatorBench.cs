using BenchmarkDotNet.Attributes;
using Iced.Intel;
using Sharpvisor.Jit.Frontend;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Native;
using Sharpvisor.Vmm;
using Sharpvisor.Vmm.Loader;

namespace Sharpvisor.Bench;

/// <summary>
/// The front end's cost per guest instruction: translating (decode, lower to
/// micro-ops, flag liveness, peephole) every block a real guest ran, against
/// the baseline of Iced decoding the same instructions and nothing else.
/// Divide Mean by <see cref="Instructions"/> (printed in the log) for µs per instruction.
/// </summary>
[MemoryDiagnoser]
public unsafe class TranslatorBench
{
    private Machine _machine = null!;
    private uint[] _starts = [];
    private Translator _translator = null!;
    private Decoder _decoder = null!;
    private GuestCodeReader _reader = null!;

    /// <summary>Guest instructions translated per invocation.</summary>
    public long Instructions { get; private set; }

    [Params("sort", "switch", "int64")]
    public string Guest { get; set; } = "sort";

    [GlobalSetup]
    public void Setup()
    {
        _machine = ProcessRuns.RanGuest(Guest, EngineKind.Threaded);
        _starts = _machine.Engine.BlockStarts.Order().ToArray();
        _translator = new Translator(_machine.Memory);
        _reader = new GuestCodeReader(_machine.Memory.Base, _machine.Memory.Size);
        _decoder = Decoder.Create(32, _reader);
        Instructions = Translate();
        Console.WriteLine($"// {Guest}: {_starts.Length} blocks, {Instructions} guest instructions per invocation");
    }

    [GlobalCleanup]
    public void Cleanup() => _machine.Dispose();

    [Benchmark]
    public long Translate()
    {
        long n = 0;
        foreach (uint start in _starts)
            n += _translator.Translate(start).GuestInstructions;
        return n;
    }

    /// <summary>Iced alone: decode the same blocks' instructions, no lowering.</summary>
    [Benchmark(Baseline = true)]
    public long DecodeOnly()
    {
        long n = 0;
        foreach (uint start in _starts)
        {
            _reader.Seek(start);
            _decoder.IP = start;
            for (int count = 1; ; count++)
            {
                // The same block ends as the translator's.
                _decoder.Decode(out Instruction insn);
                n++;
                if (insn.IsInvalid || insn.FlowControl is not (FlowControl.Next or FlowControl.Interrupt) || insn.Mnemonic == Mnemonic.Hlt
                    || count >= Translator.MaxInstructions || (insn.NextIP32 & Translator.PageMask) != (start & Translator.PageMask))
                    break;
            }
        }
        return n;
    }
}
