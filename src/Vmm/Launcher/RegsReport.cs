using System.Buffers;
using System.Text;
using System.Text.Json;
using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.Runtime;

namespace Sharpvisor.Vmm.Launcher;

/// <summary>
/// <c>--regs</c>: why the VM stopped and every vCPU's registers, as one line
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
