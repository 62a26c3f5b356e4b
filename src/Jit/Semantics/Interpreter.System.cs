using System.Runtime.CompilerServices;
using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Runtime;

namespace Sharpvisor.Jit.Semantics;

/// <summary>The flag instructions (clc, std, sahf...), cpuid, and the calls into the host (hypercall, hlt).</summary>
internal static unsafe partial class Interpreter
{
    internal static void FlagOp(CpuState* s, uint* r, ref MicroOp op)
    {
        switch (op.Cc)
        {
            case 0: SetFlagBits(s, Eflags.CF, 0); break;
            case 1: SetFlagBits(s, Eflags.CF, Eflags.CF); break;
            case 2: SetFlagBits(s, Eflags.CF, LazyFlags.Carry(s) != 0 ? 0 : Eflags.CF); break;
            case 3: s->Flags &= ~Eflags.DF; break;
            case 4: s->Flags |= Eflags.DF; break;
            case 5: SetFlagBits(s, Eflags.SF | Eflags.ZF | Eflags.AF | Eflags.PF | Eflags.CF, r[op.A]); break;
            default: r[op.D] = LazyFlags.Materialize(s) & 0xFF; break;
        }
    }

    /// <summary>
    /// <c>int $0x1f</c>, straight into the VM's hypercall host (the threaded
    /// engine's handler calls this too: a notify is the path whose cost bench
    /// notify compares with a bare write). In line: the host sees exact
    /// state, EIP after the instruction. <see cref="BlockExit.Reached"/> to
    /// go on, else <see cref="BlockExit.Stop"/> with the host's exit.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static BlockExit Hypercall(Vcpu v, CpuState* s, uint next)
    {
        s->Eip = next;
        VcpuExit? exit = v.Host.Hypercall(v);
        return exit == null ? BlockExit.Reached : v.Stop(s, exit, next);
    }

    /// <summary><c>hlt</c>: the host waits for an interrupt (or stops the vCPU), seeing state as <see cref="Hypercall"/> does.</summary>
    internal static BlockExit Halt(Vcpu v, CpuState* s, uint next)
    {
        s->Eip = next;
        VcpuExit? exit = v.Host.Halt(v);
        return exit == null ? BlockExit.Reached : v.Stop(s, exit, next);
    }

    // Journey: cpuid
    /// <summary>
    /// cpuid advertises exactly what the engines implement, so a guest that
    /// probes features never takes a path we would stop on.
    /// </summary>
    internal static void Cpuid(Vcpu v, uint* r)
    {
        uint leaf = r[0];
        uint a = 0, b = 0, c = 0, d = 0;
        switch (leaf)
        {
            case 0:
                a = 7;
                b = Ascii("Shar"); d = Ascii("pvis"); c = Ascii("orV1");
                break;
            case 1:
                a = 0x00000600;                       // family 6, model 0, stepping 0
                b = (uint)v.Index << 24;              // initial APIC id = vCPU index
                c = (1u << 23) | (1u << 31);          // POPCNT, hypervisor present
                d = (1u << 4) | (1u << 15);           // TSC, CMOV
                break;
            case 7:
                // BMI1 stays clear: tzcnt runs, but andn/bextr/blsi/blsmsk/blsr do not.
                break;
            case 0x40000000:
                a = 0x40000001;
                b = Ascii("Shar"); c = Ascii("pvis"); d = Ascii("orV1");
                break;
            case 0x40000001:
                a = Engines.AbiVersion;
                b = Engines.TscKhz;
                break;
            case 0x80000000:
                a = 0x80000001;
                break;
            case 0x80000001:
                c = 1u << 5;                          // ABM: lzcnt
                break;
        }
        r[0] = a; r[3] = b; r[1] = c; r[2] = d;
    }

    private static uint Ascii(string four) => (uint)(four[0] | four[1] << 8 | four[2] << 16 | four[3] << 24);
}
