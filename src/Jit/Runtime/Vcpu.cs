using System.Runtime.InteropServices;
using Sharpvisor.Jit.Cpu;
using Sharpvisor.Native;

namespace Sharpvisor.Jit.Runtime;

/// <summary>
/// One virtual CPU: its registers and the loop that runs translated blocks on
/// the calling thread until the guest stops it or the host asks it to stop.
/// </summary>
public sealed unsafe partial class Vcpu : IDisposable
{
    private CpuState* _state;

    public Vcpu(ExecutionEngine engine, int index, IVcpuHost host)
    {
        Engine = engine;
        Index = index;
        Host = host;
        _state = (CpuState*)NativeMemory.AlignedAlloc((nuint)sizeof(CpuState), 64);
        _state->Reset();
    }

    public ExecutionEngine Engine { get; }
    public int Index { get; }
    public IVcpuHost Host { get; }

    /// <summary>The registers. Only the vCPU's thread touches them while <see cref="Run"/> runs.</summary>
    public ref CpuState State => ref *_state;

    internal CpuState* StatePointer => _state;

    /// <summary>Runs guest code from <c>State.Eip</c> until the vCPU stops; never throws for anything the guest does.</summary>
    public VcpuExit Run() => throw new NotImplementedException("engine under construction");

    /// <summary>Asks a running vCPU to stop at the next block boundary (any thread may call).</summary>
    public void RequestStop(VcpuExit exit) => throw new NotImplementedException("engine under construction");

    public void Dispose()
    {
        if (_state != null)
        {
            NativeMemory.AlignedFree(_state);
            _state = null;
        }
    }
}
