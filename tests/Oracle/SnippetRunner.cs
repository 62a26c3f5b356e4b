using System.Collections.Concurrent;
using Sharpvisor.Jit.Cpu;
using Sharpvisor.Jit.Runtime;
using Sharpvisor.Native;

namespace Sharpvisor.Tests.Oracle;

/// <summary>
/// The engine's machine for snippet programs: nothing but a CPU. <c>hlt</c>
/// ends the program; a hypercall has no business in one.
/// </summary>
internal sealed class OracleHost : IVcpuHost
{
    /// <summary>The exit <see cref="Halt"/> returns: "the program finished", as distinct from a real shutdown.</summary>
    public static readonly VcpuExit Finished = new(StopReason.Shutdown, "hlt", 0);

    public VcpuExit? Hypercall(Vcpu vcpu) =>
        VcpuExit.Of(new GuestFault(FaultKind.UnknownHypercall, vcpu.State.Eip, null, null, [], vcpu.State[Gpr.Eax]));

    public VcpuExit? Halt(Vcpu vcpu) => Finished;
}

/// <summary>Runs snippet programs on KVM, on Unicorn and on our engines and returns their result areas.</summary>
internal static class SnippetRunner
{
    /// <summary>
    /// A guest that never halts (an engine bug in a jump) must fail its test,
    /// not hang the run. Generous: the machine is shared and noisy, and a first
    /// run includes translating every block.
    /// </summary>
    private static readonly TimeSpan EngineTimeout = TimeSpan.FromSeconds(30);

    /// <summary>The program's results on the oracle named, KVM or Unicorn.</summary>
    public static VectorResult[] On(OracleKind oracle, SnippetProgram program) =>
        oracle == OracleKind.Kvm ? OnKvm(program) : OnUnicorn(program);

    private static readonly ConcurrentDictionary<string, Lazy<VectorResult[]>> s_kvmResults = new();

    /// <summary>The program's results on the real CPU; computed once per form and shared by both engines' tests.</summary>
    public static VectorResult[] OnKvm(SnippetProgram program) =>
        s_kvmResults.GetOrAdd(program.Form.Name, _ => new Lazy<VectorResult[]>(() => RunKvm(program))).Value;

    private static VectorResult[] RunKvm(SnippetProgram program)
    {
        using var cpu = new KvmCpu(GuestLayout.MemorySize);
        program.Load(cpu.Memory);
        X86Regs end = cpu.Run(program.EntryRegs());
        if (end.Eip != program.EndEip)
            throw new InvalidOperationException($"'{program.Form.Name}' halted on KVM at {end.Eip:x8}, not at the end of the program ({program.EndEip:x8})");
        return program.ReadResults(cpu.Memory);
    }

    private static readonly ConcurrentDictionary<string, Lazy<VectorResult[]>> s_unicornResults = new();

    /// <summary>
    /// The program's results on Unicorn, the second oracle; computed once per
    /// form. Runs are serialized: separate engines share nothing in the API,
    /// but this keeps QEMU's process-wide state out of the question, and a
    /// run takes milliseconds.
    /// </summary>
    public static VectorResult[] OnUnicorn(SnippetProgram program) =>
        s_unicornResults.GetOrAdd(program.Form.Name, _ => new Lazy<VectorResult[]>(() =>
        {
            lock (s_unicornResults) return RunUnicorn(program);
        })).Value;

    private static VectorResult[] RunUnicorn(SnippetProgram program)
    {
        using var cpu = new UnicornCpu(GuestLayout.MemorySize);
        var memory = new byte[GuestLayout.MemorySize];
        program.Load(memory);
        cpu.Write(0, memory);
        // Stop at the final hlt, before running it: EIP is then one byte short of KVM's.
        cpu.Run(program.EntryRegs(), until: program.EndEip - 1);
        return program.ReadResults(cpu.Read(0, (int)GuestLayout.MemorySize));
    }

    /// <summary>Runs the program on one of our engines; a stop other than the final hlt fails with the engine's own message.</summary>
    /// <param name="ilRegions">For the IL engine: compile a region at every block's first entry.</param>
    public static unsafe VectorResult[] OnEngine(SnippetProgram program, EngineKind kind, bool ilRegions = false)
    {
        var mem = GuestMemory.Allocate(GuestLayout.MemorySize);
        // The x64 engine compiles every block at its first entry here, so that
        // every form runs as machine code (what it does not compile still
        // runs, handed to the threaded engine); the IL engine only when asked
        // (a region per block costs too much to do for every form).
        var engine = new ExecutionEngine(mem, kind) { HotThreshold = kind == EngineKind.X64 || ilRegions ? 1 : 64 };
        var vcpu = new Vcpu(engine, 0, new OracleHost());
        bool runaway = false;
        try
        {
            program.Load(new Span<byte>(mem.Base, (int)mem.Size));
            X86Regs entry = program.EntryRegs();
            vcpu.State.Eip = entry.Eip;
            vcpu.State[Gpr.Esp] = entry.Gpr[4];
            vcpu.State.SetEflags(entry.Eflags);

            VcpuExit? exit = null;
            Exception? thrown = null;
            var thread = new Thread(() =>
            {
                try { exit = vcpu.Run(); }
                catch (Exception e) { thrown = e; }
            }) { IsBackground = true, Name = $"snippet {program.Form.Name} ({kind})" };
            thread.Start();
            if (!thread.Join(EngineTimeout))
            {
                try { vcpu.RequestStop(new VcpuExit(StopReason.Timeout, "snippet test timed out")); }
                catch (NotImplementedException) { }
                if (!thread.Join(TimeSpan.FromSeconds(5)))
                {
                    runaway = true;
                    throw new TimeoutException($"'{program.Form.Name}' on {kind} ran past {EngineTimeout.TotalSeconds} s and ignored RequestStop (a loop in translated code?)");
                }
            }
            if (thrown != null)
                throw new InvalidOperationException($"'{program.Form.Name}' on {kind}: Vcpu.Run threw: {thrown.GetType().Name}: {thrown.Message}", thrown);
            if (exit != OracleHost.Finished)
                throw new InvalidOperationException($"'{program.Form.Name}' on {kind} stopped with {exit?.Reason}: {exit?.Message} (EIP {vcpu.State.Eip:x8})");
            if (vcpu.State.Eip != program.EndEip)
                throw new InvalidOperationException($"'{program.Form.Name}' on {kind} halted at {vcpu.State.Eip:x8}, not at the end of the program ({program.EndEip:x8})");
            return program.ReadResults(new ReadOnlySpan<byte>(mem.Base, (int)mem.Size));
        }
        finally
        {
            if (!runaway)
            {
                vcpu.Dispose();
                engine.Dispose();
                mem.Dispose();
            }
            else
            {
                // The vCPU thread still runs guest code: its memory must
                // outlive it, so leak this run's objects rather than free
                // them under its feet.
                GC.SuppressFinalize(mem);
            }
        }
    }
}
