using Iced.Intel;
using Sharpvisor.Jit.IR;

namespace Sharpvisor.Jit.Frontend;

/// <summary>Jumps, calls, returns and the stack.</summary>
internal sealed partial class Lowering
{
    private const byte Esp = 4, Ebp = 5;

    private bool Jcc()
    {
        ref var op = ref _b.Emit(Uop.Jcc);
        op.Cc = (byte)Cc;
        op.Imm = I.NearBranch32;
        return true;
    }

    /// <summary>jecxz and loop/loope/loopne (the 32-bit address-size forms that count in ECX).</summary>
    private bool JmpCx(CxBranch kind, Code expected)
    {
        if (I.Code != expected)
            return false; // a 0x67 prefix would count in CX
        ref var op = ref _b.Emit(Uop.JmpCx);
        op.Cc = (byte)kind;
        op.Imm = I.NearBranch32;
        return true;
    }

    private bool Jmp()
    {
        if (I.GetOpKind(0) is OpKind.NearBranch32 or OpKind.NearBranch16)
        {
            ref var op = ref _b.Emit(Uop.Jmp);
            op.Imm = I.NearBranch32;
            return true;
        }
        if (I.GetOpKind(0) is OpKind.Register or OpKind.Memory && OpSize(0) == 4)
        {
            byte target = Read(0);
            ref var op = ref _b.Emit(Uop.JmpInd);
            op.A = target;
            return true;
        }
        return false; // far jumps change segments: not in a flat v1 guest
    }

    private bool Call()
    {
        bool direct = I.GetOpKind(0) == OpKind.NearBranch32;
        if (!direct && !(I.GetOpKind(0) is OpKind.Register or OpKind.Memory && OpSize(0) == 4))
            return false;
        byte target = direct ? MicroOp.Zero : Read(0);
        if (target < MicroOp.FirstTemp && !direct)
        {
            // call esp-relative register: read it before the push changes ESP.
            byte t = _b.Temp();
            Mov(t, target);
            target = t;
        }
        byte sp = PushValue(Const(_b.Next), 4);
        Mov(Esp, sp);
        if (direct)
        {
            ref var op = ref _b.Emit(Uop.Jmp);
            op.Imm = I.NearBranch32;
            op.Flags = UopFlags.Call;
        }
        else
        {
            ref var op = ref _b.Emit(Uop.JmpInd);
            op.A = target;
            op.Flags = UopFlags.Call;
        }
        return true;
    }

    private bool Ret()
    {
        if (I.Code is not (Code.Retnd or Code.Retnd_imm16))
            return false;
        byte target = LoadStack(0, 4);
        AddImm(Esp, Esp, 4 + (I.OpCount > 0 ? I.Immediate16 : 0));
        ref var op = ref _b.Emit(Uop.JmpInd);
        op.A = target;
        return true;
    }

    /// <summary>d = a + imm (or - imm), no flags: stack pointer arithmetic.</summary>
    private void AddImm(byte d, byte a, int delta)
    {
        ref var op = ref _b.Emit(delta < 0 ? Uop.Sub : Uop.Add);
        op.D = d;
        op.A = a;
        op.Flags = UopFlags.BImm;
        op.Imm = (uint)Math.Abs(delta);
    }

    /// <summary>Stores <paramref name="value"/> below ESP; returns the slot holding the new ESP (not yet written).</summary>
    private byte PushValue(byte value, int size)
    {
        byte sp = _b.Temp();
        AddImm(sp, Esp, -size);
        ref var st = ref _b.Emit(Uop.Store, size);
        st.A = value;
        st.Base = sp;
        return sp;
    }

    private byte LoadStack(uint offset, int size)
    {
        byte t = _b.Temp();
        ref var ld = ref _b.Emit(Uop.Load, size);
        ld.D = t;
        ld.Base = Esp;
        ld.Disp = offset;
        return t;
    }

    private bool Push()
    {
        int size = OpSize(0);
        if (IsReg(0) && I.GetOpRegister(0).IsSegmentRegister())
            return false;
        byte v;
        if (IsImm(0))
        {
            size = I.Code == Code.Pushw_imm8 || I.Code == Code.Push_imm16 ? 2 : 4;
            v = Const(Immediate(0));
        }
        else
        {
            v = Read(0);
        }
        Mov(Esp, PushValue(v, size));
        return true;
    }

    private bool Pop()
    {
        if (IsReg(0) && I.GetOpRegister(0).IsSegmentRegister())
            return false;
        int size = OpSize(0);
        byte v = LoadStack(0, size);
        byte sp = _b.Temp();
        AddImm(sp, Esp, size);
        if (IsMem(0))
        {
            // pop [esp+x] addresses with the incremented ESP.
            ref var st = ref _b.Emit(Uop.Store, size);
            st.A = v;
            SetMem(ref st);
            if (st.Base == Esp) st.Base = sp;
            if (st.Index == Esp) st.Index = sp;
            Mov(Esp, sp);
        }
        else
        {
            Mov(Esp, sp);
            WriteReg(I.GetOpRegister(0), v);
        }
        return true;
    }

    private bool Pushad()
    {
        ref var chk = ref _b.Emit(Uop.Check);
        chk.Base = Esp;
        chk.Disp = unchecked((uint)-32);
        chk.Imm = 32;
        for (int r = 0; r < 8; r++)
        {
            ref var st = ref _b.Emit(Uop.Store);
            st.A = (byte)r;
            st.Base = Esp;
            st.Disp = unchecked((uint)(-4 * (r + 1)));
        }
        AddImm(Esp, Esp, -32);
        return true;
    }

    private bool Popad()
    {
        ref var chk = ref _b.Emit(Uop.Check);
        chk.Base = Esp;
        chk.Imm = 32;
        // Memory order from ESP up: EDI ESI EBP (ESP skipped) EBX EDX ECX EAX.
        for (int r = 7; r >= 0; r--)
        {
            if (r == Esp) continue;
            ref var ld = ref _b.Emit(Uop.Load);
            ld.D = (byte)r;
            ld.Base = Esp;
            ld.Disp = (uint)(4 * (7 - r));
        }
        AddImm(Esp, Esp, 32);
        return true;
    }

    private bool Pushfd()
    {
        byte f = _b.Temp();
        ref var op = ref _b.Emit(Uop.Pushf);
        op.D = f;
        Mov(Esp, PushValue(f, 4));
        return true;
    }

    private bool Popfd()
    {
        byte v = LoadStack(0, 4);
        AddImm(Esp, Esp, 4);
        ref var op = ref _b.Emit(Uop.Popf);
        op.A = v;
        return true;
    }

    private bool Leave()
    {
        if (I.Code != Code.Leaved)
            return false;
        byte v = _b.Temp();
        ref var ld = ref _b.Emit(Uop.Load);
        ld.D = v;
        ld.Base = Ebp;
        AddImm(Esp, Ebp, 4);
        Mov(Ebp, v);
        return true;
    }

    private bool Enter()
    {
        if (I.Code != Code.Enterd_imm16_imm8)
            return false;
        if ((I.Immediate8_2nd & 31) != 0)
        {
            // Nesting levels copy frame pointers: rare (gcc never emits them), so one op does it all.
            ref var enter = ref _b.Emit(Uop.Enter);
            enter.Imm = I.Immediate16;
            enter.Cc = (byte)(I.Immediate8_2nd & 31);
            return true;
        }
        byte sp = PushValue(Ebp, 4);
        Mov(Ebp, sp);
        AddImm(Esp, sp, -I.Immediate16);
        return true;
    }
}
