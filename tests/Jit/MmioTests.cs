using Iced.Intel;
using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.Runtime;
using static Iced.Intel.AssemblerRegisters;

namespace Sharpvisor.Tests.Jit;

/// <summary>
/// Loads and stores that reach a device's registers (docs/guest-abi.md,
/// "Devices"): on every engine, in cold and in compiled code, each plain
/// mov/movzx/movsx is one device access with the guest's registers exact,
/// and the guest goes on after it; anything else touching a window stops the
/// guest with a device-access fault at that instruction.
/// </summary>
public class MmioTests
{
    private const uint Dev = GuestHarness.MmioBase;

    /// <summary>A device: a word per 4-byte offset, read back as written, plus a few fixed values; every access logged.</summary>
    private sealed class FakeDevice
    {
        public readonly Dictionary<uint, uint> Words = new()
        {
            [0x40] = 0xF0, [0x44] = 0x8001, [0x48] = 0x77,
        };
        public readonly List<(uint Offset, int Size, bool Write, uint Value)> Log = [];

        public string? Access(uint address, int size, bool write, ref uint value)
        {
            uint offset = address - Dev;
            if (offset >= 0x1000) return $"no device at 0x{address:x8}";
            if ((offset & (uint)(size - 1)) != 0) return $"fake0: a {size * 8}-bit access at offset 0x{offset:x} is misaligned";
            if (write) Words[offset] = value;
            else value = Words.GetValueOrDefault(offset);
            Log.Add((offset, size, write, value));
            return null;
        }
    }

    [Theory]
    [MemberData(nameof(GuestHarness.Kinds), MemberType = typeof(GuestHarness))]
    public void PlainMovs_ReachTheDevice_AndTheGuestGoesOn_InColdAndCompiledCode(EngineKind kind)
    {
        GuestHarness.SkipIfUnavailable(kind);
        const int rounds = 200; // past every engine's threshold: the loop runs compiled too
        var device = new FakeDevice();
        using var h = new GuestHarness(kind, a =>
        {
            var loop = a.CreateLabel();
            a.mov(esi, Dev);
            a.mov(ecx, rounds);
            a.xor(ebx, ebx);
            a.Label(ref loop);
            a.mov(__dword_ptr[esi + 0x10], ecx);     // store r32
            a.mov(eax, __dword_ptr[esi + 0x10]);     // load r32: what was stored
            a.add(ebx, eax);
            a.mov(__byte_ptr[esi + 0x20], 0x5A);     // store imm8
            a.mov(__word_ptr[Dev + 0x30], 0x1234);   // store imm16, absolute address
            a.movzx(edx, __byte_ptr[esi + 0x40]);    // 0xF0, zero-extended
            a.movsx(edi, __word_ptr[esi + 0x44]);    // 0x8001, sign-extended
            a.mov(ah, __byte_ptr[esi + 0x48]);       // 0x77 into bits 8-15 only
            a.dec(ecx);
            a.jnz(loop);
            a.hlt();
        });
        h.OnMmio = device.Access;
        VcpuExit exit = h.Run();

        Assert.Equal(StopReason.Shutdown, exit.Reason);
        Assert.Equal((uint)(rounds * (rounds + 1) / 2), h.State[Gpr.Ebx]);
        Assert.Equal(0u, h.State[Gpr.Ecx]);
        Assert.Equal(0xF0u, h.State[Gpr.Edx]);
        Assert.Equal(0xFFFF8001u, h.State[Gpr.Edi]);
        Assert.Equal(0x7701u, h.State[Gpr.Eax]); // al = the last round's load (1), ah = 0x77
        Assert.Equal(rounds * 7, device.Log.Count);
        for (int r = 0; r < rounds; r++)
        {
            uint n = (uint)(rounds - r);
            Assert.Equal((0x10u, 4, true, n), device.Log[r * 7]);
            Assert.Equal((0x10u, 4, false, n), device.Log[r * 7 + 1]);
            Assert.Equal((0x20u, 1, true, 0x5Au), device.Log[r * 7 + 2]);
            Assert.Equal((0x30u, 2, true, 0x1234u), device.Log[r * 7 + 3]);
            Assert.Equal((0x40u, 1, false, 0xF0u), device.Log[r * 7 + 4]);
            Assert.Equal((0x44u, 2, false, 0x8001u), device.Log[r * 7 + 5]);
            Assert.Equal((0x48u, 1, false, 0x77u), device.Log[r * 7 + 6]);
        }
    }

    public static TheoryData<EngineKind, string> FaultCases()
    {
        var data = new TheoryData<EngineKind, string>();
        foreach (EngineKind kind in new[] { EngineKind.Threaded, EngineKind.Il, EngineKind.X64 })
            foreach (string name in Refused.Keys)
                data.Add(kind, name);
        return data;
    }

    /// <summary>Instructions that touch a window but are not one plain access, and accesses the device refuses.</summary>
    private static readonly Dictionary<string, Action<Assembler>> Refused = new()
    {
        ["add [m], r32"] = a => a.add(__dword_ptr[esi], eax),
        ["cmp [m], imm"] = a => a.cmp(__dword_ptr[esi], 0),
        ["xchg [m], r32"] = a => a.xchg(__dword_ptr[esi], eax),
        ["lock inc [m]"] = a => a.@lock.inc(__dword_ptr[esi]),
        ["rep stosd"] = a => { a.mov(edi, esi); a.mov(ecx, 4); a.rep.stosd(); },
        ["movsd"] = a => { a.mov(edi, 0x2000); a.movsd(); },
        ["push [m]"] = a => a.push(__dword_ptr[esi]),
        ["pop into esp in a window"] = a => { a.mov(esp, esi); a.pop(eax); },
        ["misaligned mov"] = a => a.mov(eax, __dword_ptr[esi + 2]),
        ["between windows"] = a => a.mov(eax, __dword_ptr[esi + 0x10000]),
    };

    [Theory]
    [MemberData(nameof(FaultCases))]
    public void OtherAccesses_AreADeviceFault_AtTheInstruction_WithTheRegistersBeforeIt(EngineKind kind, string name)
    {
        GuestHarness.SkipIfUnavailable(kind);
        var device = new FakeDevice();
        using var h = new GuestHarness(kind, a =>
        {
            a.mov(esi, Dev);
            a.mov(eax, 0x1234_5678);
            a.mov(ebx, 7);
            Refused[name](a);
            a.mov(ebx, 8); // never reached
            a.hlt();
        });
        h.OnMmio = device.Access;
        VcpuExit exit = h.Run();

        Assert.Equal(StopReason.Fault, exit.Reason);
        Assert.Equal(FaultKind.DeviceAccess, exit.Fault!.Kind);
        Assert.Equal(exit.Fault.Eip, h.State.Eip);
        Assert.Equal(7u, h.State[Gpr.Ebx]);
        Assert.Equal(0x1234_5678u, h.State[Gpr.Eax]);
        Assert.DoesNotContain(device.Log, e => e.Write); // nothing half done
        Assert.Contains(exit.Fault.Detail!, exit.Fault.Describe()); // the device's line, whole
        Assert.Contains("0x", exit.Fault.Detail!); // which names the address or offset
        Assert.DoesNotContain('\n', exit.Fault.Describe());
    }

    [Fact]
    public void WithoutADevice_AnAccessOutsideRam_IsStillTheRamFault()
    {
        using var h = new GuestHarness(EngineKind.Threaded, a =>
        {
            a.mov(eax, __dword_ptr[Dev]);
            a.hlt();
        });
        VcpuExit exit = h.Run();
        Assert.Equal(FaultKind.ReadOutsideRam, exit.Fault!.Kind);
    }
}
