using Iced.Intel;
using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.Frontend;

namespace Sharpvisor.Jit.Runtime;

// Journey: mmio-access
/// <summary>
/// A load or store that missed RAM and hit a device's register window: the
/// instruction is decoded again from guest RAM and run here, against the
/// device, as KVM emulates an MMIO exit. Every engine gets here the same way
/// (its bounds check fails, and it reports the access with the state exact
/// at the instruction), so none of them compiles device accesses, and RAM
/// accesses pay nothing for devices.
/// </summary>
/// <remarks>
/// Only plain <c>mov</c>, <c>movzx</c> and <c>movsx</c> of 8, 16 or 32 bits
/// between a register (or, for stores, an immediate) and memory reach a
/// device: they are the accesses a driver makes, and each is exactly one
/// device access. Anything else touching a window (a read-modify-write,
/// <c>xchg</c>, a string op, push and pop) would be several accesses, or a
/// locked one, and is a guest fault.
/// </remarks>
internal static unsafe class MmioAccess
{
    public static BlockExit Run(Vcpu v, CpuState* s, uint address, uint eip)
    {
        // One reader and decoder per vCPU, made at its first device access:
        // a doorbell store allocates nothing after that.
        (GuestCodeReader reader, Decoder decoder) = v.MmioDecoder ??= NewDecoder(v);
        reader.Seek(eip);
        decoder.IP = eip;
        decoder.Decode(out Instruction insn);
        if (!TryShape(in insn, out Shape shape, out string? why))
            return v.DeviceFault(s, address, null, eip, $"device register 0x{address:x8}: {why}");
        int size = insn.MemorySize.GetSize();
        // The engines' access and the decoded one are the same instruction at
        // the same state, so they name the same address; a mismatch would be
        // our bug, and stopping the guest is the safe answer to it.
        if (EffectiveAddress(s, in insn) != address)
            return v.DeviceFault(s, address, (uint)size, eip, $"device register 0x{address:x8}: the access does not match its instruction");

        uint value = 0;
        if (shape.Store)
            value = shape.FromImmediate ? (uint)insn.GetImmediate(1) : ReadRegister(s, insn.Op1Register);
        string? fault = v.Host.Mmio(v, address, size, shape.Store, ref value);
        if (fault != null)
            return v.DeviceFault(s, address, (uint)size, eip, fault);
        if (!shape.Store)
        {
            uint mask = size == 4 ? uint.MaxValue : (1u << (size * 8)) - 1;
            value &= mask;
            if (shape.SignExtend)
                value = size == 1 ? (uint)(sbyte)value : size == 2 ? (uint)(short)value : value;
            WriteRegister(s, insn.Op0Register, value);
        }
        s->Eip = (uint)insn.NextIP;
        return BlockExit.Continue;
    }

    private static (GuestCodeReader, Decoder) NewDecoder(Vcpu v)
    {
        var reader = new GuestCodeReader(v.MemoryBase, v.MemorySize);
        return (reader, Decoder.Create(32, reader, 0, DecoderOptions.None));
    }

    private readonly record struct Shape(bool Store, bool FromImmediate, bool SignExtend);

    /// <summary>Whether the instruction is one device access, and which way.</summary>
    private static bool TryShape(in Instruction insn, out Shape shape, out string? why)
    {
        shape = default;
        why = null;
        if (insn.IsInvalid || insn.Mnemonic is not (Mnemonic.Mov or Mnemonic.Movzx or Mnemonic.Movsx))
        {
            why = "only plain mov, movzx and movsx loads and stores reach a device";
            return false;
        }
        if (insn.OpCount != 2 || insn.HasLockPrefix || insn.MemorySize.GetSize() is not (1 or 2 or 4))
        {
            why = "only 8-, 16- and 32-bit mov, movzx and movsx reach a device";
            return false;
        }
        if (insn.Op0Kind == OpKind.Memory && insn.Mnemonic == Mnemonic.Mov)
        {
            if (insn.Op1Kind is OpKind.Immediate8 or OpKind.Immediate16 or OpKind.Immediate32)
            {
                shape = new Shape(Store: true, FromImmediate: true, SignExtend: false);
                return true;
            }
            if (insn.Op1Kind == OpKind.Register && IsGpr(insn.Op1Register))
            {
                shape = new Shape(Store: true, FromImmediate: false, SignExtend: false);
                return true;
            }
        }
        else if (insn.Op1Kind == OpKind.Memory && insn.Op0Kind == OpKind.Register && IsGpr(insn.Op0Register))
        {
            shape = new Shape(Store: false, FromImmediate: false, SignExtend: insn.Mnemonic == Mnemonic.Movsx);
            return true;
        }
        why = "only mov between a general register (or an immediate) and memory reaches a device";
        return false;
    }

    private static bool IsGpr(Register r) => r.IsGPR8() || r.IsGPR16() || r.IsGPR32();

    /// <summary>The memory operand's address from the registers (flat segments, 32-bit addressing).</summary>
    private static uint EffectiveAddress(CpuState* s, in Instruction insn)
    {
        uint ea = insn.MemoryDisplacement32;
        if (insn.MemoryBase != Register.None)
            ea += ReadRegister(s, insn.MemoryBase);
        if (insn.MemoryIndex != Register.None)
            ea += ReadRegister(s, insn.MemoryIndex) * (uint)insn.MemoryIndexScale;
        return ea;
    }

    // Iced numbers each register size in the x86 encoding's order (AL, CL, DL,
    // BL, AH, CH, DH, BH; AX...; EAX...), which is also Gpr's.

    private static uint ReadRegister(CpuState* s, Register r)
    {
        if (r.IsGPR32()) return s->Slots[r - Register.EAX];
        if (r.IsGPR16()) return s->Slots[r - Register.AX] & 0xFFFF;
        int n = r - Register.AL;
        return n < 4 ? s->Slots[n] & 0xFF : (s->Slots[n - 4] >> 8) & 0xFF;
    }

    private static void WriteRegister(CpuState* s, Register r, uint value)
    {
        if (r.IsGPR32())
        {
            s->Slots[r - Register.EAX] = value;
            return;
        }
        if (r.IsGPR16())
        {
            ref uint reg16 = ref s->Slots[r - Register.AX];
            reg16 = (reg16 & 0xFFFF0000u) | (value & 0xFFFF);
            return;
        }
        int n = r - Register.AL;
        ref uint reg = ref s->Slots[n < 4 ? n : n - 4];
        reg = n < 4 ? (reg & 0xFFFFFF00u) | (value & 0xFF) : (reg & 0xFFFF00FFu) | ((value & 0xFF) << 8);
    }
}
