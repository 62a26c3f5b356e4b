using Iced.Intel;
using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Native;

namespace Sharpvisor.Jit.Frontend;

/// <summary>
/// The front end both backends share: decodes guest code with Iced into a
/// basic block and lowers it into micro-ops.
/// </summary>
/// <remarks>
/// A block ends after a control transfer, before an instruction that starts on
/// the next page (so invalidating a page never has to split a block), or at
/// <see cref="MaxInstructions"/>. Not thread-safe: one per vCPU.
/// </remarks>
internal sealed unsafe class Translator
{
    public const int MaxInstructions = 64;
    public const uint PageMask = ~(uint)(GuestMemory.PageSize - 1);

    private readonly GuestMemory _memory;
    private readonly GuestCodeReader _reader;
    private readonly Decoder _decoder;
    private readonly BlockBuilder _builder = new();
    private readonly Lowering _lowering;

    public Translator(GuestMemory memory)
    {
        _memory = memory;
        _reader = new GuestCodeReader(memory.Base, memory.Size);
        _decoder = Decoder.Create(32, _reader, DecoderOptions.None);
        _lowering = new Lowering(_builder) { NewFault = NewFault };
    }

    // Journey: translate
    /// <summary>
    /// Translates the block at <paramref name="eip"/>: decodes instructions
    /// out of guest RAM until a control transfer, a page boundary or
    /// <see cref="MaxInstructions"/>, lowering each into micro-ops. A block is
    /// the unit of everything downstream (caching, linking, invalidation,
    /// tiering), because inside a block control flows straight through. Bytes
    /// that do not decode are not an error here: they become a fault op, and
    /// the guest faults only if it actually runs them. The caller has checked
    /// that eip is in RAM.
    /// </summary>
    public Block Translate(uint eip)
    {
        _builder.Clear();
        _reader.Seek(eip);
        _decoder.IP = eip;
        uint page = eip & PageMask;
        int count = 0;
        uint end = eip;
        while (true)
        {
            _decoder.Decode(out Instruction insn);
            _builder.BeginInstruction(insn);
            count++;
            end = insn.NextIP32;
            if (insn.IsInvalid)
            {
                // Bytes that run past the end of RAM fail at its first byte outside.
                _lowering.Fault(_decoder.LastError == DecoderError.NoMoreBytes
                    ? NewFault(FaultKind.FetchOutsideRam, insn.IP32) with { Address = (uint)_memory.Size }
                    : NewFault(FaultKind.InvalidInstruction, insn.IP32));
                end = insn.IP32 + 1;
                break;
            }
            if (!_lowering.Lower())
                break; // the block ends with the fault op Lower emitted
            if (EndsBlock(in insn) || count >= MaxInstructions || (insn.NextIP32 & PageMask) != page)
                break;
        }

        // Fall through into the next block if the last op does not transfer
        // control, or if there is none: nops up to a page boundary lower to nothing.
        if (_builder.Count == 0 || !UopTable.Of(_builder.Ops[^1].Kind).EndsBlock)
        {
            ref var j = ref _builder.Emit(Uop.Jmp);
            j.Imm = end;
        }

        FlagLiveness.Run(_builder.Ops);
        var block = new Block(eip, end, Peephole.Run(_builder.ToArray()), _builder.Faults, count);
        return block;
    }

    private static bool EndsBlock(in Instruction insn) =>
        insn.FlowControl is not (FlowControl.Next or FlowControl.Interrupt) || insn.Mnemonic == Mnemonic.Hlt;

    private GuestFault NewFault(FaultKind kind, uint eip) => GuestFault.At(kind, eip, _memory.Base, _memory.Size);
}
