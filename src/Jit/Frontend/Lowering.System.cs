using Iced.Intel;
using Sharpvisor.Jit.IR;

namespace Sharpvisor.Jit.Frontend;

/// <summary>Flags instructions, string instructions, cpuid/rdtsc, hlt and the hypercall trap.</summary>
internal sealed partial class Lowering
{
    /// <summary>lguest's trap number: <c>int $0x1f</c> is a hypercall.</summary>
    public const byte HypercallVector = 0x1f;

    private bool System(Uop kind)
    {
        _b.Emit(kind);
        return true;
    }

    // Journey: lower-hypercall
    /// <summary>
    /// The guest's side of the door is one instruction, <c>int $0x1f</c>,
    /// lguest's trap number. It becomes one micro-op, and that is all the
    /// front end does: the engines, not the decoder, call the host, each in
    /// its own way, and all end in the same <c>IVcpuHost.Hypercall</c>. Any
    /// other <c>int</c> is not lowered, so the guest stops on it as an
    /// unsupported instruction.
    /// </summary>
    private bool Int()
    {
        if (I.Immediate8 != HypercallVector)
            return false;
        _b.Emit(Uop.Hypercall);
        return true;
    }

    private bool FlagOp(int which)
    {
        ref var op = ref _b.Emit(Uop.FlagOp);
        op.Cc = (byte)which;
        return true;
    }

    private bool Sahf()
    {
        byte ah = ReadReg(Register.AH);
        ref var op = ref _b.Emit(Uop.FlagOp);
        op.Cc = 5;
        op.A = ah;
        return true;
    }

    private bool Lahf()
    {
        byte t = _b.Temp();
        ref var op = ref _b.Emit(Uop.FlagOp);
        op.Cc = 6;
        op.D = t;
        WriteReg(Register.AH, t);
        return true;
    }

    private bool StringOp(StringKind kind)
    {
        // movsd/cmpsd also name SSE instructions: only the string forms get here.
        if (I.Code is not (Code.Movsb_m8_m8 or Code.Movsw_m16_m16 or Code.Movsd_m32_m32
            or Code.Stosb_m8_AL or Code.Stosw_m16_AX or Code.Stosd_m32_EAX
            or Code.Lodsb_AL_m8 or Code.Lodsw_AX_m16 or Code.Lodsd_EAX_m32
            or Code.Cmpsb_m8_m8 or Code.Cmpsw_m16_m16 or Code.Cmpsd_m32_m32
            or Code.Scasb_AL_m8 or Code.Scasw_AX_m16 or Code.Scasd_EAX_m32))
            return false;
        if (I.MemorySize.GetSize() is not (1 or 2 or 4))
            return false;
        ref var op = ref _b.Emit(Uop.String, I.MemorySize.GetSize());
        op.Cc = (byte)kind;
        if (I.HasRepePrefix || I.HasRepPrefix) op.Flags |= UopFlags.Rep;
        if (I.HasRepnePrefix) op.Flags |= kind is StringKind.Cmps or StringKind.Scas ? UopFlags.RepNe : UopFlags.Rep;
        if (kind is StringKind.Cmps or StringKind.Scas) op.Flags |= UopFlags.SetFlags;
        return true;
    }
}
