using Iced.Intel;
using Sharpvisor.Native;

namespace Sharpvisor.Jit.Frontend;

/// <summary>
/// Feeds Iced's decoder straight from guest RAM. Past the end of RAM it reports
/// no more bytes, which the decoder turns into an error value, never a throw.
/// </summary>
internal sealed unsafe class GuestCodeReader : CodeReader
{
    private readonly byte* _base;
    private readonly ulong _size;
    private ulong _pos;

    public GuestCodeReader(byte* memBase, ulong size)
    {
        _base = memBase;
        _size = size;
    }

    public void Seek(uint address) => _pos = address;

    // The compare is GuestMemory's precondition for the one byte read.
    public override int ReadByte() => _pos < _size ? GuestMemory.ReadUnchecked8(_base, (nuint)_pos++) : -1;
}
