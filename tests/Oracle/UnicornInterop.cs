using System.Runtime.InteropServices;

namespace Sharpvisor.Tests.Oracle;

/// <summary>
/// The slice of Unicorn's C API (unicorn/unicorn.h, unicorn/x86.h, API 2.0)
/// the second oracle needs. Test-only, like <see cref="KvmInterop"/>. Names
/// stay verbatim from the headers so each value can be checked against them;
/// the tests need only the shared library (Debian's libunicorn2), never the
/// headers (libunicorn-dev).
/// </summary>
internal static unsafe partial class UnicornInterop
{
    private const string Lib = "libunicorn.so.2";

    // uc_arch, uc_mode
    internal const int UC_ARCH_X86 = 4;
    internal const int UC_MODE_32 = 1 << 2;

    // uc_prot
    internal const uint UC_PROT_ALL = 7;

    // uc_err: the values in header order, and their names for messages.
    internal const int UC_ERR_OK = 0;
    internal const int UC_ERR_INSN_INVALID = 10;
    internal const int UC_ERR_EXCEPTION = 21;

    private static readonly string[] s_errNames =
    [
        "UC_ERR_OK", "UC_ERR_NOMEM", "UC_ERR_ARCH", "UC_ERR_HANDLE", "UC_ERR_MODE", "UC_ERR_VERSION",
        "UC_ERR_READ_UNMAPPED", "UC_ERR_WRITE_UNMAPPED", "UC_ERR_FETCH_UNMAPPED", "UC_ERR_HOOK",
        "UC_ERR_INSN_INVALID", "UC_ERR_MAP", "UC_ERR_WRITE_PROT", "UC_ERR_READ_PROT", "UC_ERR_FETCH_PROT",
        "UC_ERR_ARG", "UC_ERR_READ_UNALIGNED", "UC_ERR_WRITE_UNALIGNED", "UC_ERR_FETCH_UNALIGNED",
        "UC_ERR_HOOK_EXIST", "UC_ERR_RESOURCE", "UC_ERR_EXCEPTION",
    ];

    internal static string ErrName(int err) => (uint)err < (uint)s_errNames.Length ? s_errNames[err] : $"uc_err {err}";

    // uc_control_type, and UC_CTL(type, nr, rw) = type | nr << 26 | rw << 30.
    internal const int UC_CTL_CPU_MODEL = 7;
    internal const int UC_CTL_IO_WRITE = 1;
    internal const int UC_CTL_IO_READ = 2;
    internal static int UC_CTL_WRITE(int type, int nr) => type | nr << 26 | UC_CTL_IO_WRITE << 30;
    internal static int UC_CTL_READ(int type, int nr) => type | nr << 26 | UC_CTL_IO_READ << 30;

    // uc_cpu_x86. Haswell is the oldest Intel model whose QEMU definition
    // has LZCNT (ABM), TZCNT (BMI1) and POPCNT. Unicorn 2.0.1 overrides every
    // model's feature bits with one fixed set (ABM and BMI1 in, POPCNT out:
    // CPUID leaf 1 ECX is 0x02182200 on all models), so today the pin only
    // changes the family/model CPUID reports; it is there so that a Unicorn
    // which honours the model runs what this oracle is for.
    internal const int UC_CPU_X86_HASWELL = 19;

    // uc_x86_reg
    internal const int UC_X86_REG_EAX = 19;
    internal const int UC_X86_REG_EBP = 20;
    internal const int UC_X86_REG_EBX = 21;
    internal const int UC_X86_REG_ECX = 22;
    internal const int UC_X86_REG_EDI = 23;
    internal const int UC_X86_REG_EDX = 24;
    internal const int UC_X86_REG_EFLAGS = 25;
    internal const int UC_X86_REG_EIP = 26;
    internal const int UC_X86_REG_ESI = 29;
    internal const int UC_X86_REG_ESP = 30;

    /// <summary>The GPRs in x86 (ModRM) order, as <see cref="X86Regs.Gpr"/> holds them; Unicorn numbers them alphabetically.</summary>
    internal static readonly int[] GprIds =
    [
        UC_X86_REG_EAX, UC_X86_REG_ECX, UC_X86_REG_EDX, UC_X86_REG_EBX,
        UC_X86_REG_ESP, UC_X86_REG_EBP, UC_X86_REG_ESI, UC_X86_REG_EDI,
    ];

    [LibraryImport(Lib)]
    internal static partial uint uc_version(uint* major, uint* minor);

    [LibraryImport(Lib)]
    internal static partial int uc_open(int arch, int mode, out UnicornHandle uc);

    [LibraryImport(Lib)]
    internal static partial int uc_close(nint uc);

    /// <summary>
    /// uc_ctl is variadic in C. The System V x86-64 ABI passes the variadic
    /// integer arguments in the same registers as fixed ones (AL only counts
    /// vector registers, and no vector argument is passed), so this fixed
    /// three-argument prototype makes the same call for the one control used.
    /// </summary>
    [LibraryImport(Lib)]
    internal static partial int uc_ctl(UnicornHandle uc, int control, nint arg);

    [LibraryImport(Lib)]
    internal static partial int uc_mem_map(UnicornHandle uc, ulong address, nuint size, uint perms);

    [LibraryImport(Lib)]
    internal static partial int uc_mem_write(UnicornHandle uc, ulong address, void* bytes, nuint size);

    [LibraryImport(Lib)]
    internal static partial int uc_mem_read(UnicornHandle uc, ulong address, void* bytes, nuint size);

    [LibraryImport(Lib)]
    internal static partial int uc_reg_write(UnicornHandle uc, int regid, void* value);

    [LibraryImport(Lib)]
    internal static partial int uc_reg_read(UnicornHandle uc, int regid, void* value);

    /// <param name="until">The address at which emulation stops, before executing the instruction there.</param>
    /// <param name="timeout">Microseconds; 0 is none.</param>
    /// <param name="count">Instructions; 0 is no limit.</param>
    [LibraryImport(Lib)]
    internal static partial int uc_emu_start(UnicornHandle uc, ulong begin, ulong until, ulong timeout, nuint count);

    [LibraryImport(Lib)]
    internal static partial nint uc_strerror(int code);

    /// <summary>"uc_mem_map: UC_ERR_ARG (Invalid argument (UC_ERR_ARG))"</summary>
    internal static string Describe(string call, int err) =>
        $"{call}: {ErrName(err)} ({Marshal.PtrToStringUTF8(uc_strerror(err))})";
}

/// <summary>A Unicorn engine (uc_engine*), closed by uc_close.</summary>
internal sealed class UnicornHandle() : SafeHandle(0, ownsHandle: true)
{
    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle() => UnicornInterop.uc_close(handle) == UnicornInterop.UC_ERR_OK;
}
