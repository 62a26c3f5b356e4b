using System.Buffers;
using System.Text;
using System.Text.Json;
using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.Runtime;

namespace Sharpvisor.Vmm.Launcher;

/// <summary>
/// <c>--regs</c>: why the VM stopped, the guest fault if it was one, and every vCPU's registers, as one line
/// of JSON, the last line on stderr, for scripts and tests to read.
/// Utf8JsonWriter writes it without reflection, so it stays AOT-safe.
/// </summary>
public static class RegsReport
{
    public static string Format(VcpuExit exit, int exitStatus, IReadOnlyList<Vcpu> vcpus)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartObject("stop");
            json.WriteString("reason", ReasonName(exit.Reason));
            json.WriteNumber("exit", exitStatus);
            if (exit.GuestStatus is int status) json.WriteNumber("guest_status", status);
            else json.WriteNull("guest_status");
            json.WriteString("message", exit.Message);
            json.WriteEndObject();
            WriteFault(json, exit.Fault);
            json.WriteStartArray("vcpus");
            foreach (Vcpu vcpu in vcpus)
            {
                ref CpuState s = ref vcpu.State;
                json.WriteStartObject();
                json.WriteNumber("id", vcpu.Index);
                json.WriteNumber("eax", s[Gpr.Eax]);
                json.WriteNumber("ebx", s[Gpr.Ebx]);
                json.WriteNumber("ecx", s[Gpr.Ecx]);
                json.WriteNumber("edx", s[Gpr.Edx]);
                json.WriteNumber("esi", s[Gpr.Esi]);
                json.WriteNumber("edi", s[Gpr.Edi]);
                json.WriteNumber("ebp", s[Gpr.Ebp]);
                json.WriteNumber("esp", s[Gpr.Esp]);
                json.WriteNumber("eip", s.Eip);
                json.WriteNumber("eflags", s.GetEflags());
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>
    /// <c>"fault"</c>: the guest fault field by field, so that tools read it
    /// without parsing the message; null when the stop was no fault, and each
    /// field null where it does not apply to the kind.
    /// </summary>
    private static void WriteFault(Utf8JsonWriter json, GuestFault? fault)
    {
        if (fault == null)
        {
            json.WriteNull("fault");
            return;
        }
        json.WriteStartObject("fault");
        json.WriteString("kind", FaultKinds.JsonName(fault.Kind));
        WriteNumberOrNull(json, "address", fault.Address);
        WriteNumberOrNull(json, "size", fault.Size);
        json.WriteNumber("eip", fault.Eip);
        json.WriteString("bytes", fault.Hex());
        WriteNumberOrNull(json, "hypercall", fault.Hypercall);
        json.WriteEndObject();
    }

    private static void WriteNumberOrNull(Utf8JsonWriter json, string name, uint? value)
    {
        if (value is uint v) json.WriteNumber(name, v);
        else json.WriteNull(name);
    }

    public static string ReasonName(StopReason reason) => reason switch
    {
        StopReason.Shutdown => "shutdown",
        StopReason.Fault => "fault",
        StopReason.Deadlock => "deadlock",
        StopReason.Timeout => "timeout",
        StopReason.Signal => "signal",
        _ => "error",
    };
}
