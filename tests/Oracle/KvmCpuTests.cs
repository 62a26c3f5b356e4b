using System.Runtime.CompilerServices;
using static Sharpvisor.Tests.Oracle.KvmInterop;

namespace Sharpvisor.Tests.Oracle;

public class KvmInteropTests
{
    [Fact]
    public void IoctlNumbers_EncodeTheSizesOfOurStructs()
    {
        Assert.Equal(Unsafe.SizeOf<kvm_regs>(), IocSize(KVM_GET_REGS));
        Assert.Equal(Unsafe.SizeOf<kvm_regs>(), IocSize(KVM_SET_REGS));
        Assert.Equal(Unsafe.SizeOf<kvm_sregs>(), IocSize(KVM_GET_SREGS));
        Assert.Equal(Unsafe.SizeOf<kvm_sregs>(), IocSize(KVM_SET_SREGS));
        Assert.Equal(Unsafe.SizeOf<kvm_userspace_memory_region>(), IocSize(KVM_SET_USER_MEMORY_REGION));
        Assert.Equal(Unsafe.SizeOf<kvm_cpuid2>(), IocSize(KVM_SET_CPUID2));
        Assert.Equal(Unsafe.SizeOf<kvm_cpuid2>(), IocSize(KVM_GET_SUPPORTED_CPUID));
        Assert.Equal(24, Unsafe.SizeOf<kvm_segment>());
        Assert.Equal(40, Unsafe.SizeOf<kvm_cpuid_entry2>());
    }
}

[Collection(OracleCollection.Name)]
public class KvmCpuTests
{
    private static readonly byte[] Hlt = [0xF4];

    private static X86Regs RunBytes(KvmCpu cpu, byte[] code, X86Regs? regs = null)
    {
        code.CopyTo(cpu.Memory[0x1000..]);
        regs ??= new X86Regs();
        regs.Eip = 0x1000;
        return cpu.Run(regs);
    }

    [Fact]
    public void Run_StopsAtHlt_WithTheRegistersTheGuestLeft()
    {
        OracleCollection.SkipUnlessKvm();
        using var cpu = new KvmCpu(0x4000);
        var regs = new X86Regs();
        for (int i = 0; i < 8; i++) regs.Gpr[i] = 0x1111_1111u * (uint)(i + 1);
        regs.Gpr[4] = 0x3000;
        // xchg ecx, edx; inc edi; stc; hlt
        X86Regs after = RunBytes(cpu, [0x87, 0xCA, 0x47, 0xF9, .. Hlt], regs);
        Assert.Equal(0x1005u, after.Eip); // after the hlt
        Assert.Equal([0x11111111u, 0x33333333, 0x22222222, 0x44444444, 0x3000, 0x66666666, 0x77777777, 0x88888889], after.Gpr);
        Assert.Equal(0x83u, after.Eflags); // SF from inc, CF from stc, bit 1; IF stays clear
    }

    [Fact]
    public void Run_WritesGuestMemoryTheHostSees()
    {
        OracleCollection.SkipUnlessKvm();
        using var cpu = new KvmCpu(0x4000);
        // mov dword [0x2000], 0xdeadbeef; hlt
        RunBytes(cpu, [0xC7, 0x05, 0x00, 0x20, 0x00, 0x00, 0xEF, 0xBE, 0xAD, 0xDE, .. Hlt]);
        Assert.Equal(0xDEADBEEFu, BitConverter.ToUInt32(cpu.Memory[0x2000..]));
    }

    [Fact]
    public void Run_ReportsAGuestExceptionAsATripleFault()
    {
        OracleCollection.SkipUnlessKvm();
        using var cpu = new KvmCpu(0x4000);
        var e = Assert.Throws<KvmExitException>(() => RunBytes(cpu, [0x0F, 0x0B])); // ud2
        Assert.Equal(KVM_EXIT_SHUTDOWN, e.ExitReason);
        Assert.Contains("KVM_EXIT_SHUTDOWN", e.Message);
    }

    [Fact]
    public void Run_ReportsPortIo()
    {
        OracleCollection.SkipUnlessKvm();
        using var cpu = new KvmCpu(0x4000);
        var regs = new X86Regs();
        regs.Gpr[2] = 0x3F8;
        var e = Assert.Throws<KvmExitException>(() => RunBytes(cpu, [0xEE, .. Hlt], regs)); // out dx, al
        Assert.Equal(KVM_EXIT_IO, e.ExitReason);
        Assert.Contains("out port 0x3f8", e.Message);
    }

    [Fact]
    public void Run_ReportsAnAccessOutsideRam()
    {
        OracleCollection.SkipUnlessKvm();
        using var cpu = new KvmCpu(0x4000);
        // mov eax, [0x100000]
        var e = Assert.Throws<KvmExitException>(() => RunBytes(cpu, [0xA1, 0x00, 0x00, 0x10, 0x00, .. Hlt]));
        Assert.Equal(KVM_EXIT_MMIO, e.ExitReason);
        Assert.Contains("0x100000", e.Message);
    }

    [Fact]
    public void Guest_SeesTheHostCpuidVendor()
    {
        OracleCollection.SkipUnlessKvm();
        using var cpu = new KvmCpu(0x4000);
        // cpuid (leaf 0); hlt
        X86Regs after = RunBytes(cpu, [0x0F, 0xA2, .. Hlt]);
        Assert.NotEqual(0u, after.Gpr[0]);
        string vendor = string.Concat(new[] { after.Gpr[3], after.Gpr[2], after.Gpr[1] }
            .Select(v => System.Text.Encoding.ASCII.GetString(BitConverter.GetBytes(v))));
        Assert.Contains(vendor, new[] { "GenuineIntel", "AuthenticAMD", "HygonGenuine" });
    }

    [Fact]
    public void SeveralVms_RunAtOnce()
    {
        OracleCollection.SkipUnlessKvm();
        // Each thread its own VM: KVM has no shared state between them, and
        // this proves it here (the collection is serial for speed, not safety).
        var results = new uint[4];
        Parallel.For(0, results.Length, i =>
        {
            using var cpu = new KvmCpu(0x4000);
            var regs = new X86Regs();
            regs.Gpr[0] = (uint)i;
            for (int round = 0; round < 20; round++)
                regs = RunBytes(cpu, [0x40, .. Hlt], regs); // inc eax; hlt
            results[i] = regs.Gpr[0];
        });
        Assert.Equal([20u, 21, 22, 23], results);
    }

    [Fact]
    public void Dispose_ClosesEveryDescriptor()
    {
        OracleCollection.SkipUnlessKvm();
        HashSet<int> before = FdSnapshot.Open();
        using (var cpu = new KvmCpu(0x4000))
            RunBytes(cpu, Hlt);
        HashSet<int> after = FdSnapshot.Open();
        after.ExceptWith(before);
        Assert.Empty(after);
    }
}
