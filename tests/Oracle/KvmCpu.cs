using System.Runtime.InteropServices;
using Sharpvisor.Native;
using static Sharpvisor.Tests.Oracle.KvmInterop;

namespace Sharpvisor.Tests.Oracle;

/// <summary>The 32-bit register file the differential tests set and read: GPRs in x86 order, EIP, EFLAGS.</summary>
internal sealed class X86Regs
{
    /// <summary>EAX ECX EDX EBX ESP EBP ESI EDI, as the ModRM reg field numbers them.</summary>
    public uint[] Gpr { get; } = new uint[8];
    public uint Eip { get; set; }
    public uint Eflags { get; set; } = 0x2;

    public static readonly string[] Names = ["EAX", "ECX", "EDX", "EBX", "ESP", "EBP", "ESI", "EDI"];

    public override string ToString() =>
        string.Join(' ', Gpr.Select((v, i) => $"{Names[i]}={v:x8}")) + $" EIP={Eip:x8} EFLAGS={Eflags:x8}";
}

/// <summary>A KVM run that ended in anything but hlt: a triple fault, port I/O, a failed entry...</summary>
internal sealed class KvmExitException(uint exitReason, string message, uint suberror = 0) : Exception(message)
{
    public uint ExitReason { get; } = exitReason;

    /// <summary>For KVM_EXIT_INTERNAL_ERROR, the kernel's suberror.</summary>
    public uint Suberror { get; } = suberror;

    /// <summary>
    /// KVM had to emulate the instruction and its emulator does not know it:
    /// a gap in the oracle, not a fault of the guest program.
    /// </summary>
    public bool IsEmulationGap => ExitReason == KVM_EXIT_INTERNAL_ERROR && Suberror == KVM_INTERNAL_ERROR_EMULATION;
}

/// <summary>
/// The oracle: one real x86 CPU, through KVM. A VM with one memory slot at
/// guest-physical 0 and one vCPU in flat 32-bit protected mode, paging off,
/// CPL 0 and interrupts masked, the machine model our engine implements. Code
/// runs until <c>hlt</c>; anything else stops the run with an exception that
/// says what happened (a guest exception without an IDT is a triple fault,
/// KVM_EXIT_SHUTDOWN).
/// </summary>
/// <example>
/// <code>
/// using var cpu = new KvmCpu(0x10000);
/// cpu.Memory[0x1000] = 0xF4;                      // hlt
/// var regs = new X86Regs { Eip = 0x1000 };
/// X86Regs after = cpu.Run(regs);                  // after.Eip == 0x1001
/// </code>
/// </example>
internal sealed unsafe class KvmCpu : IDisposable
{
    /// <summary>Where KVM_SET_TSS_ADDR puts the three pages Intel's real-mode emulation wants: above any RAM we map.</summary>
    private const ulong TssAddress = 0xFFFB_D000;

    private readonly SafeFdHandle _kvm;
    private readonly SafeFdHandle _vm;
    private readonly SafeFdHandle _vcpu;
    private byte* _memory;
    private readonly ulong _memorySize;
    private kvm_run* _run;
    private readonly nuint _runSize;

    /// <param name="memorySize">Guest RAM in bytes, a multiple of 4 KiB, mapped at guest-physical 0.</param>
    /// <param name="hostCpuid">
    /// Give the guest the CPUID KVM supports (KVM_SET_CPUID2 from KVM_GET_SUPPORTED_CPUID).
    /// Without it every leaf reads as zero, though instructions still execute natively.
    /// </param>
    public KvmCpu(ulong memorySize, bool hostCpuid = true)
    {
        if (memorySize == 0 || memorySize % 4096 != 0)
            throw new ArgumentOutOfRangeException(nameof(memorySize), memorySize, "a nonzero multiple of 4 KiB");
        _memorySize = memorySize;
        try
        {
            _kvm = Open("/dev/kvm");
            int version = ioctl(_kvm, KVM_GET_API_VERSION, 0);
            if (version < 0) Throw("KVM_GET_API_VERSION");
            if (version != KVM_API_VERSION)
                throw new NotSupportedException($"KVM_GET_API_VERSION is {version}, this code speaks {KVM_API_VERSION}");

            _vm = Handle(ioctl(_kvm, KVM_CREATE_VM, 0), "KVM_CREATE_VM");
            Check(ioctl(_vm, KVM_SET_TSS_ADDR, (nuint)TssAddress), "KVM_SET_TSS_ADDR");

            // MAP_NORESERVE: untouched guest pages cost nothing, as with GuestMemory.
            void* mem = mmap(null, (nuint)memorySize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (mem == MAP_FAILED) Throw("mmap(guest memory)");
            _memory = (byte*)mem;
            var region = new kvm_userspace_memory_region
            {
                slot = 0, flags = 0, guest_phys_addr = 0, memory_size = memorySize, userspace_addr = (ulong)_memory,
            };
            Check(ioctl(_vm, KVM_SET_USER_MEMORY_REGION, &region), "KVM_SET_USER_MEMORY_REGION");

            _vcpu = Handle(ioctl(_vm, KVM_CREATE_VCPU, 0), "KVM_CREATE_VCPU");
            int runSize = ioctl(_kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
            if (runSize < sizeof(kvm_run)) Throw("KVM_GET_VCPU_MMAP_SIZE");
            _runSize = (nuint)runSize;
            void* run = mmap(null, _runSize, PROT_READ | PROT_WRITE, MAP_SHARED, _vcpu.Fd, 0);
            if (run == MAP_FAILED) Throw("mmap(kvm_run)");
            _run = (kvm_run*)run;

            if (hostCpuid) SetHostCpuid();
            SetFlatProtectedMode();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public ulong MemorySize => _memorySize;

    private static readonly Lazy<string?> s_unusable = new(Probe);

    /// <summary>
    /// Null when KVM can run our guests here; otherwise why not, for a skip
    /// message. Decided once per process by running a two-instruction guest,
    /// since /dev/kvm can exist and still fail (no nested virtualization, a
    /// sandbox that forbids the ioctls), or when the run hides KVM to check
    /// the engines against Unicorn (<see cref="Reference.KvmHidden"/>).
    /// </summary>
    public static string? Unusable => s_unusable.Value;

    private static string? Probe()
    {
        if (Reference.KvmHidden is { } hidden) return hidden;
        if (!File.Exists("/dev/kvm")) return "/dev/kvm is absent";
        try
        {
            using var cpu = new KvmCpu(0x2000);
            byte[] code = [0xB8, 0x34, 0x12, 0x00, 0x00, 0xF4]; // mov eax, 0x1234; hlt
            code.CopyTo(cpu.Memory[0x1000..]);
            X86Regs after = cpu.Run(new X86Regs { Eip = 0x1000 });
            if (after.Gpr[0] != 0x1234 || after.Eip != 0x1006)
                return $"KVM ran the probe guest wrongly: {after}";
            return null;
        }
        catch (Exception e) when (e is ErrnoException or NotSupportedException or KvmExitException or DllNotFoundException)
        {
            return $"KVM is unusable here: {e.Message}";
        }
    }

    /// <summary>Guest RAM, guest-physical 0 at index 0.</summary>
    public Span<byte> Memory => new(_memory, checked((int)_memorySize));

    /// <summary>The CPUID leaves the guest sees (empty without <c>hostCpuid</c>), for the report.</summary>
    public IReadOnlyList<kvm_cpuid_entry2> Cpuid { get; private set; } = [];

    /// <summary>Loads <paramref name="regs"/>, runs until the guest executes <c>hlt</c>, and returns the registers then.</summary>
    /// <exception cref="KvmExitException">The run ended another way; the message names the exit and the guest EIP.</exception>
    public X86Regs Run(X86Regs regs)
    {
        var k = new kvm_regs
        {
            rax = regs.Gpr[0], rcx = regs.Gpr[1], rdx = regs.Gpr[2], rbx = regs.Gpr[3],
            rsp = regs.Gpr[4], rbp = regs.Gpr[5], rsi = regs.Gpr[6], rdi = regs.Gpr[7],
            rip = regs.Eip, rflags = regs.Eflags | 0x2,
        };
        Check(ioctl(_vcpu, KVM_SET_REGS, &k), "KVM_SET_REGS");

        while (true)
        {
            if (ioctl(_vcpu, KVM_RUN, 0) < 0)
            {
                Errno e = (Errno)Marshal.GetLastPInvokeError();
                // A signal for the runtime (the GC suspends threads with one)
                // interrupts KVM_RUN; the guest is intact and simply resumes.
                if (e is Errno.EINTR or Errno.EAGAIN) continue;
                throw new ErrnoException("KVM_RUN", e);
            }
            uint reason = _run->exit_reason;
            if (reason == KVM_EXIT_HLT) return ReadRegs();
            if (reason == KVM_EXIT_INTR) continue;
            throw new KvmExitException(reason, DescribeExit(reason), reason == KVM_EXIT_INTERNAL_ERROR ? _run->internal_suberror : 0);
        }
    }

    private X86Regs ReadRegs()
    {
        kvm_regs k;
        Check(ioctl(_vcpu, KVM_GET_REGS, &k), "KVM_GET_REGS");
        var r = new X86Regs { Eip = (uint)k.rip, Eflags = (uint)k.rflags };
        r.Gpr[0] = (uint)k.rax; r.Gpr[1] = (uint)k.rcx; r.Gpr[2] = (uint)k.rdx; r.Gpr[3] = (uint)k.rbx;
        r.Gpr[4] = (uint)k.rsp; r.Gpr[5] = (uint)k.rbp; r.Gpr[6] = (uint)k.rsi; r.Gpr[7] = (uint)k.rdi;
        return r;
    }

    private string DescribeExit(uint reason)
    {
        string where;
        try { where = $"guest EIP {ReadRegs().Eip:x8}"; }
        catch (ErrnoException) { where = "guest EIP unknown"; }
        string detail = reason switch
        {
            KVM_EXIT_SHUTDOWN => "triple fault: the guest raised an exception, and there is no IDT to deliver it",
            KVM_EXIT_IO => $"port I/O: {(_run->io_direction == KVM_EXIT_IO_IN ? "in" : "out")} port 0x{_run->io_port:x}, size {_run->io_size}",
            KVM_EXIT_MMIO => $"access outside RAM: {(_run->mmio_is_write != 0 ? "write" : "read")} of {_run->mmio_len} bytes at 0x{_run->mmio_phys_addr:x}",
            KVM_EXIT_FAIL_ENTRY => $"VM entry failed, hardware reason 0x{_run->fail_entry_hardware_entry_failure_reason:x}",
            KVM_EXIT_INTERNAL_ERROR => DescribeInternalError(),
            KVM_EXIT_EXCEPTION => $"exception {_run->ex_exception}, error code {_run->ex_error_code}",
            _ => "unexpected exit",
        };
        return $"{ExitName(reason)} at {where}: {detail}";
    }

    /// <summary>
    /// Suberror 1 is KVM_INTERNAL_ERROR_EMULATION: an exit made KVM emulate the
    /// instruction, and its emulator does not know it. The data words say
    /// which (the kernel puts the instruction bytes there).
    /// </summary>
    private string DescribeInternalError()
    {
        uint n = Math.Min(_run->internal_ndata, 16u);
        var words = new string[n];
        for (int i = 0; i < n; i++) words[i] = $"{_run->internal_data[i]:x}";
        string kind = _run->internal_suberror == KVM_INTERNAL_ERROR_EMULATION ? " (KVM_INTERNAL_ERROR_EMULATION: KVM had to emulate an instruction its emulator lacks)" : "";
        return $"KVM internal error, suberror {_run->internal_suberror}{kind}, data [{string.Join(' ', words)}]";
    }

    /// <summary>
    /// Flat 32-bit protected mode straight from the segment caches: KVM loads
    /// the hidden parts from kvm_sregs, so the GDT in guest memory is never
    /// read (nothing reloads a segment register) and none is needed.
    /// </summary>
    private void SetFlatProtectedMode()
    {
        kvm_sregs s;
        Check(ioctl(_vcpu, KVM_GET_SREGS, &s), "KVM_GET_SREGS");
        s.cs = Flat(selector: 0x08, type: 0xB); // execute/read, accessed
        kvm_segment data = Flat(selector: 0x10, type: 0x3); // read/write, accessed
        s.ds = s.es = s.fs = s.gs = s.ss = data;
        // VMX checks TR and LDTR even in a guest that never uses them: a busy
        // 32-bit TSS, and an unusable LDT.
        s.tr = new kvm_segment { @base = 0, limit = 0x67, selector = 0x18, type = 0xB, present = 1 };
        s.ldt = new kvm_segment { selector = 0, type = 0x2, present = 0, unusable = 1 };
        // Sane tables that point nowhere in use: a 4-entry GDT (null, code,
        // data, TSS) the descriptors above would have come from, no IDT, so
        // any guest exception is a triple fault we report.
        s.gdt = new kvm_dtable { @base = 0, limit = 4 * 8 - 1 };
        s.idt = new kvm_dtable { @base = 0, limit = 0 };
        s.cr0 = 0x11; // PE, plus ET which every CPU since the 486 reads as 1
        s.cr2 = s.cr3 = s.cr4 = 0;
        s.efer = 0;
        Check(ioctl(_vcpu, KVM_SET_SREGS, &s), "KVM_SET_SREGS");
    }

    private static kvm_segment Flat(ushort selector, byte type) => new()
    {
        @base = 0, limit = 0xFFFF_FFFF, selector = selector, type = type,
        present = 1, dpl = 0, db = 1, s = 1, l = 0, g = 1,
    };

    /// <summary>
    /// Gives the guest the CPUID KVM supports. The instructions under test
    /// (lzcnt, tzcnt, popcnt) do not consult CPUID when they run; this is so
    /// that a guest that checks before using them sees what the CPU does.
    /// </summary>
    private void SetHostCpuid()
    {
        for (int n = 64; n <= 4096; n *= 2)
        {
            int bytes = sizeof(kvm_cpuid2) + n * sizeof(kvm_cpuid_entry2);
            byte* buf = (byte*)NativeMemory.AllocZeroed((nuint)bytes);
            try
            {
                ((kvm_cpuid2*)buf)->nent = (uint)n;
                if (ioctl(_kvm, KVM_GET_SUPPORTED_CPUID, buf) < 0)
                {
                    Errno e = (Errno)Marshal.GetLastPInvokeError();
                    if (e == Errno.E2BIG) continue; // more leaves than room: try a bigger buffer
                    throw new ErrnoException("KVM_GET_SUPPORTED_CPUID", e);
                }
                Check(ioctl(_vcpu, KVM_SET_CPUID2, buf), "KVM_SET_CPUID2");
                int count = (int)((kvm_cpuid2*)buf)->nent;
                Cpuid = new ReadOnlySpan<kvm_cpuid_entry2>(buf + sizeof(kvm_cpuid2), count).ToArray();
                return;
            }
            finally
            {
                NativeMemory.Free(buf);
            }
        }
        throw new ErrnoException("KVM_GET_SUPPORTED_CPUID", Errno.E2BIG);
    }

    private static SafeFdHandle Open(string path)
    {
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0) Throw($"open({path})");
        return new SafeFdHandle(fd, ownsHandle: true);
    }

    private static SafeFdHandle Handle(int fd, string operation)
    {
        if (fd < 0) Throw(operation);
        return new SafeFdHandle(fd, ownsHandle: true);
    }

    private static void Check(int result, string operation)
    {
        if (result < 0) Throw(operation);
    }

    private static void Throw(string operation) =>
        throw new ErrnoException(operation, (Errno)Marshal.GetLastPInvokeError());

    public void Dispose()
    {
        if (_run != null)
        {
            munmap(_run, _runSize);
            _run = null;
        }
        _vcpu?.Dispose();
        _vm?.Dispose();
        // The VM is gone, so nothing maps guest RAM into a guest any more.
        if (_memory != null)
        {
            munmap(_memory, (nuint)_memorySize);
            _memory = null;
        }
        _kvm?.Dispose();
    }
}
