using static Sharpvisor.Tests.Oracle.UnicornInterop;

namespace Sharpvisor.Tests.Oracle;

/// <summary>A Unicorn call that failed, or a run that ended anywhere but where it was told to stop.</summary>
internal sealed class UnicornException(string message, int err = UC_ERR_OK) : Exception(message)
{
    /// <summary>The uc_err the call returned; UC_ERR_OK when the run "succeeded" but stopped in the wrong place.</summary>
    public int Err { get; } = err;
}

/// <summary>
/// The second oracle: Unicorn 2 (QEMU's x86 emulator as a library), for the
/// instructions the KVM at hand cannot run (see <see cref="OracleGaps"/>).
/// The same machine as <see cref="KvmCpu"/>: one flat 32-bit address space,
/// memory from 0, CPL 0, interrupts masked. UC_MODE_32 starts that way (flat
/// segments, protected mode, paging off), so only memory and registers need
/// setting. The CPU model is pinned to Haswell, a model with LZCNT, BMI1 and
/// POPCNT (see <see cref="UC_CPU_X86_HASWELL"/> for what Unicorn 2.0.1 makes
/// of that); UnicornSelfCheckTests prove lzcnt and tzcnt are not run as bsr
/// and bsf, the very gap this oracle fills.
/// </summary>
/// <example>
/// <code>
/// using var cpu = new UnicornCpu(0x10000);
/// cpu.Write(0x1000, [0xB8, 0x34, 0x12, 0, 0, 0xF4]); // mov eax, 0x1234; hlt
/// X86Regs after = cpu.Run(new X86Regs { Eip = 0x1000 }, until: 0x1005);
/// // after.Gpr[0] == 0x1234, after.Eip == 0x1005
/// </code>
/// </example>
internal sealed unsafe class UnicornCpu : IDisposable
{
    /// <summary>A program that loops must fail its test, not hang it; ours run in milliseconds.</summary>
    private const ulong TimeoutMicroseconds = 20_000_000;

    private readonly UnicornHandle _uc;

    /// <param name="memorySize">Guest RAM in bytes, a multiple of 4 KiB, mapped at guest-physical 0.</param>
    public UnicornCpu(ulong memorySize, int cpuModel = UC_CPU_X86_HASWELL)
    {
        if (memorySize == 0 || memorySize % 4096 != 0)
            throw new ArgumentOutOfRangeException(nameof(memorySize), memorySize, "a nonzero multiple of 4 KiB");
        MemorySize = memorySize;
        Check(uc_open(UC_ARCH_X86, UC_MODE_32, out _uc), "uc_open");
        try
        {
            // Before anything else touches the engine: Unicorn creates the
            // CPU lazily, on the first call that needs it, with whatever
            // model is set then.
            Check(uc_ctl(_uc, UC_CTL_WRITE(UC_CTL_CPU_MODEL, 1), cpuModel), "uc_ctl(UC_CTL_CPU_MODEL)");
            Check(uc_mem_map(_uc, 0, (nuint)memorySize, UC_PROT_ALL), "uc_mem_map");
            int model;
            Check(uc_ctl(_uc, UC_CTL_READ(UC_CTL_CPU_MODEL, 1), (nint)(&model)), "uc_ctl(UC_CTL_CPU_MODEL, read)");
            if (model != cpuModel)
                throw new UnicornException($"Unicorn kept CPU model {model} after being asked for {cpuModel}");
            CpuModel = model;
        }
        catch
        {
            _uc.Dispose();
            throw;
        }
    }

    public ulong MemorySize { get; }

    /// <summary>The uc_cpu_x86 model the engine runs, read back from Unicorn.</summary>
    public int CpuModel { get; }

    /// <summary>"2.0" from uc_version: the library's API version (Unicorn does not report its patch level here).</summary>
    public static string Version
    {
        get
        {
            uint major, minor;
            uc_version(&major, &minor);
            return $"{major}.{minor}";
        }
    }

    private static readonly Lazy<string?> s_unusable = new(Probe);

    /// <summary>
    /// Null when Unicorn can run our programs here; otherwise why not, for a
    /// skip message. The library is an optional package (test.sh installs it),
    /// so a machine without it skips these tests rather than failing them.
    /// </summary>
    public static string? Unusable => s_unusable.Value;

    private static string? Probe()
    {
        try
        {
            using var cpu = new UnicornCpu(0x2000);
            cpu.Write(0x1000, [0xB8, 0x34, 0x12, 0x00, 0x00, 0xF4]); // mov eax, 0x1234; hlt
            X86Regs after = cpu.Run(new X86Regs { Eip = 0x1000 }, until: 0x1005);
            return after.Gpr[0] == 0x1234 ? null : $"Unicorn ran the probe program wrongly: {after}";
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or UnicornException)
        {
            return $"Unicorn ({Lib}) is unusable here: {e.Message}";
        }
    }

    private const string Lib = "libunicorn.so.2";

    public void Write(uint address, ReadOnlySpan<byte> bytes)
    {
        fixed (byte* p = bytes)
            Check(uc_mem_write(_uc, address, p, (nuint)bytes.Length), "uc_mem_write");
    }

    public byte[] Read(uint address, int length)
    {
        var bytes = new byte[length];
        fixed (byte* p = bytes)
            Check(uc_mem_read(_uc, address, p, (nuint)length), "uc_mem_read");
        return bytes;
    }

    /// <summary>
    /// Loads <paramref name="regs"/> and runs from their EIP until EIP reaches
    /// <paramref name="until"/>, which is not executed: the address of the
    /// program's final <c>hlt</c>. Stopping there, rather than running the
    /// hlt, keeps the run independent of what Unicorn does with hlt.
    /// </summary>
    /// <exception cref="UnicornException">The run faulted (the message names the error and EIP) or stopped elsewhere.</exception>
    public X86Regs Run(X86Regs regs, uint until)
    {
        for (int g = 0; g < 8; g++) SetReg(GprIds[g], regs.Gpr[g]);
        SetReg(UC_X86_REG_EFLAGS, regs.Eflags | 0x2);
        int err = uc_emu_start(_uc, regs.Eip, until, TimeoutMicroseconds, 0);
        X86Regs after = ReadRegs();
        if (err != UC_ERR_OK)
            throw new UnicornException($"{Describe("uc_emu_start", err)} at EIP {after.Eip:x8}", err);
        if (after.Eip != until)
            throw new UnicornException($"Unicorn stopped at EIP {after.Eip:x8}, not at {until:x8} (timed out after {TimeoutMicroseconds / 1_000_000} s?)");
        return after;
    }

    public X86Regs ReadRegs()
    {
        var r = new X86Regs { Eip = GetReg(UC_X86_REG_EIP), Eflags = GetReg(UC_X86_REG_EFLAGS) };
        for (int g = 0; g < 8; g++) r.Gpr[g] = GetReg(GprIds[g]);
        return r;
    }

    // Unicorn reads and writes 32-bit registers through a pointer to as many
    // bytes as the register has; a zeroed 64-bit slot holds either size.
    private void SetReg(int id, uint value)
    {
        ulong v = value;
        Check(uc_reg_write(_uc, id, &v), "uc_reg_write");
    }

    private uint GetReg(int id)
    {
        ulong v = 0;
        Check(uc_reg_read(_uc, id, &v), "uc_reg_read");
        return (uint)v;
    }

    private static void Check(int err, string call)
    {
        if (err != UC_ERR_OK) throw new UnicornException(Describe(call, err), err);
    }

    public void Dispose() => _uc.Dispose();
}
