using Iced.Intel;
using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Runtime;

namespace Sharpvisor.Jit.Frontend;

/// <summary>
/// Collects the micro-ops of one block while the lowering walks its
/// instructions; hands out temporaries (reset at every instruction).
/// </summary>
internal sealed class BlockBuilder
{
    private readonly List<MicroOp> _ops = new(64);
    private readonly List<GuestFault> _faults = new();
    private byte _nextTemp;

    public uint Eip;
    public uint Next;
    public Instruction Insn;

    public int Count => _ops.Count;

    public void BeginInstruction(in Instruction insn)
    {
        Insn = insn;
        Eip = insn.IP32;
        Next = insn.NextIP32;
        _nextTemp = MicroOp.FirstTemp;
    }

    public byte Temp()
    {
        if (_nextTemp >= MicroOp.Zero)
            throw new InvalidOperationException($"instruction at {Eip:x8} needs more temporaries than a vCPU has");
        return _nextTemp++;
    }

    public ref MicroOp Emit(Uop kind, int size = 4)
    {
        _ops.Add(new MicroOp
        {
            Kind = kind,
            Size = (byte)size,
            Eip = Eip,
            Next = Next,
            Base = MicroOp.Zero,
            Index = MicroOp.Zero,
            A = MicroOp.Zero,
            B = MicroOp.Zero,
        });
        return ref System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_ops)[^1];
    }

    public int AddFault(GuestFault fault)
    {
        _faults.Add(fault);
        return _faults.Count - 1;
    }

    public Span<MicroOp> Ops => System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_ops);

    public MicroOp[] ToArray() => _ops.ToArray();

    public GuestFault[] Faults => _faults.ToArray();

    public void Clear()
    {
        _ops.Clear();
        _faults.Clear();
    }
}
