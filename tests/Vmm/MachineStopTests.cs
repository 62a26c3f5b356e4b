using Sharpvisor.Jit.Runtime;
using Sharpvisor.Vmm;
using Sharpvisor.Vmm.Loader;

namespace Sharpvisor.Tests.Vmm;

/// <summary>
/// A stop asked for before the vCPUs run (a signal that arrives while the
/// launcher is still setting up) is not lost: Run returns it at once.
/// </summary>
public class MachineStopTests
{
    public static TheoryData<string, int> EnginesAndVcpus => new()
    {
        { "threaded", 1 }, { "threaded", 3 }, { "x64", 1 }, { "x64", 2 }, { "il", 2 },
    };

    [Theory]
    [MemberData(nameof(EnginesAndVcpus))]
    public void RequestStop_BeforeRun_StopsEveryVcpuBeforeTheGuestRuns(string engine, int vcpus)
    {
        using var dir = new TempDir();
        string spin = dir.Write("spin.bin", [0xEB, 0xFE]); // jmp $
        GuestImage image = ImageLoader.Read(spin, 1 << 20, 0x1000);
        using var machine = new Machine(new MachineConfig(1 << 20, Sharpvisor.Vmm.Launcher.EngineNames.Of(engine), vcpus), image, Stream.Null);
        machine.RequestStop(new VcpuExit(StopReason.Signal, "SIGINT received, vCPU stopped", Signal: 2));
        // The timeout only bounds a lost stop: it would end the run as a Timeout, not a Signal.
        VcpuExit exit = machine.Run(TimeSpan.FromSeconds(60));
        Assert.Equal(StopReason.Signal, exit.Reason);
        Assert.Null(machine.StoppedBy);
        Assert.All(machine.Vcpus, v => Assert.Equal(0x1000u, v.State.Eip));
    }

    [Fact]
    public void RequestStop_AfterRun_ChangesNothing()
    {
        using var dir = new TempDir();
        // mov eax, 2; mov ebx, 5; int 0x1f: LHCALL_SHUTDOWN(5)
        string guest = dir.Write("bye.bin", [0xB8, 2, 0, 0, 0, 0xBB, 5, 0, 0, 0, 0xCD, 0x1F]);
        GuestImage image = ImageLoader.Read(guest, 1 << 20, 0x1000);
        using var machine = new Machine(new MachineConfig(1 << 20, EngineKind.Threaded, 1), image, Stream.Null);
        VcpuExit exit = machine.Run(TimeSpan.FromSeconds(60));
        machine.RequestStop(new VcpuExit(StopReason.Signal, "late", Signal: 15));
        Assert.Equal(StopReason.Shutdown, exit.Reason);
        Assert.Equal(0, machine.StoppedBy);
    }
}
