using System.Runtime.InteropServices;

namespace Sharpvisor.Tests.Oracle;

/// <summary>
/// The slice of the KVM API the oracle needs, and the libc calls that reach it.
/// Test-only: the VMM itself never runs guests on KVM, so none of this belongs
/// in <c>src/Native</c>. Kernel names stay verbatim (linux/kvm.h), so that a
/// reader can check each one against the header.
/// </summary>
internal static unsafe partial class KvmInterop
{
    private const string Libc = "libc.so.6";

    // <fcntl.h>, <sys/mman.h>
    internal const int O_RDWR = 0x2;
    internal const int O_CLOEXEC = 0x80000;
    internal const int PROT_READ = 0x1;
    internal const int PROT_WRITE = 0x2;
    internal const int MAP_SHARED = 0x01;
    internal const int MAP_PRIVATE = 0x02;
    internal const int MAP_ANONYMOUS = 0x20;
    internal const int MAP_NORESERVE = 0x4000;
    internal static readonly void* MAP_FAILED = (void*)-1;

    // The ioctl numbers, as _IO/_IOR/_IOW/_IOWR(KVMIO = 0xAE, nr, type) encode
    // them: direction in bits 30-31, the argument's size in bits 16-29. The
    // sizes are checked against the structs below by a test
    // (KvmInteropTests), so a wrong layout fails there, not as EINVAL here.
    internal const nuint KVM_GET_API_VERSION = 0xAE00;
    internal const nuint KVM_CREATE_VM = 0xAE01;
    internal const nuint KVM_GET_VCPU_MMAP_SIZE = 0xAE04;
    internal const nuint KVM_GET_SUPPORTED_CPUID = 0xC008AE05; // _IOWR, struct kvm_cpuid2 (8)
    internal const nuint KVM_CREATE_VCPU = 0xAE41;
    internal const nuint KVM_SET_USER_MEMORY_REGION = 0x4020AE46; // _IOW, struct kvm_userspace_memory_region (32)
    internal const nuint KVM_SET_TSS_ADDR = 0xAE47;
    internal const nuint KVM_RUN = 0xAE80;
    internal const nuint KVM_GET_REGS = 0x8090AE81; // _IOR, struct kvm_regs (144)
    internal const nuint KVM_SET_REGS = 0x4090AE82; // _IOW, struct kvm_regs (144)
    internal const nuint KVM_GET_SREGS = 0x8138AE83; // _IOR, struct kvm_sregs (312)
    internal const nuint KVM_SET_SREGS = 0x4138AE84; // _IOW, struct kvm_sregs (312)
    internal const nuint KVM_SET_CPUID2 = 0x4008AE90; // _IOW, struct kvm_cpuid2 (8)

    /// <summary>The only API version there has ever been; anything else is not the KVM this code knows.</summary>
    internal const int KVM_API_VERSION = 12;

    // kvm_run.exit_reason
    internal const uint KVM_EXIT_UNKNOWN = 0;
    internal const uint KVM_EXIT_EXCEPTION = 1;
    internal const uint KVM_EXIT_IO = 2;
    internal const uint KVM_EXIT_HYPERCALL = 3;
    internal const uint KVM_EXIT_DEBUG = 4;
    internal const uint KVM_EXIT_HLT = 5;
    internal const uint KVM_EXIT_MMIO = 6;
    internal const uint KVM_EXIT_IRQ_WINDOW_OPEN = 7;
    internal const uint KVM_EXIT_SHUTDOWN = 8;
    internal const uint KVM_EXIT_FAIL_ENTRY = 9;
    internal const uint KVM_EXIT_INTR = 10;
    internal const uint KVM_EXIT_INTERNAL_ERROR = 17;

    internal const byte KVM_EXIT_IO_IN = 0;

    // kvm_run.internal.suberror
    internal const uint KVM_INTERNAL_ERROR_EMULATION = 1;

    [LibraryImport(Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int open(string path, int flags);

    [LibraryImport(Libc, EntryPoint = "close", SetLastError = true)]
    internal static partial int close(int fd);

    /// <summary>ioctl(2) with no argument or an integer one (KVM_CREATE_VCPU takes the vCPU id by value).</summary>
    [LibraryImport(Libc, EntryPoint = "ioctl", SetLastError = true)]
    internal static partial int ioctl(SafeHandle fd, nuint request, nuint arg);

    /// <summary>ioctl(2) with a pointer to the request's struct.</summary>
    [LibraryImport(Libc, EntryPoint = "ioctl", SetLastError = true)]
    internal static partial int ioctl(SafeHandle fd, nuint request, void* arg);

    [LibraryImport(Libc, EntryPoint = "mmap", SetLastError = true)]
    internal static partial void* mmap(void* addr, nuint length, int prot, int flags, int fd, nint offset);

    [LibraryImport(Libc, EntryPoint = "munmap", SetLastError = true)]
    internal static partial int munmap(void* addr, nuint length);

    [StructLayout(LayoutKind.Sequential)]
    internal struct kvm_regs
    {
        public ulong rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
        public ulong r8, r9, r10, r11, r12, r13, r14, r15;
        public ulong rip, rflags;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct kvm_segment
    {
        public ulong @base;
        public uint limit;
        public ushort selector;
        public byte type;
        public byte present, dpl, db, s, l, g, avl;
        public byte unusable;
        public byte padding;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct kvm_dtable
    {
        public ulong @base;
        public ushort limit;
        public ushort padding0, padding1, padding2;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct kvm_sregs
    {
        public kvm_segment cs, ds, es, fs, gs, ss;
        public kvm_segment tr, ldt;
        public kvm_dtable gdt, idt;
        public ulong cr0, cr2, cr3, cr4, cr8;
        public ulong efer;
        public ulong apic_base;
        public fixed ulong interrupt_bitmap[4]; // (KVM_NR_INTERRUPTS + 63) / 64
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct kvm_userspace_memory_region
    {
        public uint slot;
        public uint flags;
        public ulong guest_phys_addr;
        public ulong memory_size;
        public ulong userspace_addr;
    }

    /// <summary>The header of struct kvm_cpuid2; nent entries follow it.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct kvm_cpuid2
    {
        public uint nent;
        public uint padding;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct kvm_cpuid_entry2
    {
        public uint function;
        public uint index;
        public uint flags;
        public uint eax, ebx, ecx, edx;
        public uint padding0, padding1, padding2;
    }

    /// <summary>
    /// The start of the shared struct kvm_run (the vCPU fd's mmap): the exit
    /// reason, and the members of the exit union that the oracle reports.
    /// </summary>
    [StructLayout(LayoutKind.Explicit)]
    internal struct kvm_run
    {
        [FieldOffset(0)] public byte request_interrupt_window;
        [FieldOffset(1)] public byte immediate_exit;
        [FieldOffset(8)] public uint exit_reason;
        [FieldOffset(12)] public byte ready_for_interrupt_injection;
        [FieldOffset(13)] public byte if_flag;
        [FieldOffset(14)] public ushort flags;
        [FieldOffset(16)] public ulong cr8;
        [FieldOffset(24)] public ulong apic_base;

        // union { ... } at 32
        [FieldOffset(32)] public ulong fail_entry_hardware_entry_failure_reason;
        [FieldOffset(40)] public uint fail_entry_cpu;

        [FieldOffset(32)] public byte io_direction;
        [FieldOffset(33)] public byte io_size;
        [FieldOffset(34)] public ushort io_port;
        [FieldOffset(36)] public uint io_count;
        [FieldOffset(40)] public ulong io_data_offset;

        [FieldOffset(32)] public ulong mmio_phys_addr;
        [FieldOffset(40)] public ulong mmio_data;
        [FieldOffset(48)] public uint mmio_len;
        [FieldOffset(52)] public byte mmio_is_write;

        [FieldOffset(32)] public uint internal_suberror;
        [FieldOffset(36)] public uint internal_ndata;
        [FieldOffset(40)] public fixed ulong internal_data[16];

        [FieldOffset(32)] public uint ex_exception;
        [FieldOffset(36)] public uint ex_error_code;
    }

    /// <summary>The size an _IOC request number carries for its argument.</summary>
    internal static int IocSize(nuint request) => (int)((request >> 16) & 0x3FFF);

    internal static string ExitName(uint reason) => reason switch
    {
        KVM_EXIT_UNKNOWN => "KVM_EXIT_UNKNOWN",
        KVM_EXIT_EXCEPTION => "KVM_EXIT_EXCEPTION",
        KVM_EXIT_IO => "KVM_EXIT_IO",
        KVM_EXIT_HYPERCALL => "KVM_EXIT_HYPERCALL",
        KVM_EXIT_DEBUG => "KVM_EXIT_DEBUG",
        KVM_EXIT_HLT => "KVM_EXIT_HLT",
        KVM_EXIT_MMIO => "KVM_EXIT_MMIO",
        KVM_EXIT_IRQ_WINDOW_OPEN => "KVM_EXIT_IRQ_WINDOW_OPEN",
        KVM_EXIT_SHUTDOWN => "KVM_EXIT_SHUTDOWN",
        KVM_EXIT_FAIL_ENTRY => "KVM_EXIT_FAIL_ENTRY",
        KVM_EXIT_INTR => "KVM_EXIT_INTR",
        KVM_EXIT_INTERNAL_ERROR => "KVM_EXIT_INTERNAL_ERROR",
        _ => $"exit reason {reason}",
    };
}
