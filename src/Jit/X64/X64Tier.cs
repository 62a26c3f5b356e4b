using System.Runtime.InteropServices;
using Sharpvisor.Jit.IR;
using Sharpvisor.Jit.Threaded;
using Sharpvisor.Native;

namespace Sharpvisor.Jit.X64;

// Journey: x64-tier
/// <summary>
/// The x64 engine's hot tier: blocks that the threaded engine has entered
/// <c>HotThreshold</c> times get machine code of their own, written by
/// <see cref="BlockCompiler"/> into <see cref="CodeMemory"/>. This is what
/// makes the native-AOT binary fast, where there is no JIT to compile IL.
/// </summary>
/// <remarks>
/// <para>
/// The threaded code stays the block's first form and its fallback: the
/// block's first op gets a handler that counts entries, then one that calls
/// the machine code (<see cref="X64Handlers"/>). The machine code gives the
/// vCPU back to the threaded engine at any op it does not handle, with
/// registers and flags exactly as the threaded code would have them there.
/// </para>
/// <para>
/// Machine code is never freed while the engine lives: a retired block's code
/// stays in place, unreachable (its links are cleared and its header marked
/// invalid, and a vCPU still inside it finishes as it would in stale threaded
/// code). The region is 64 MiB of address space, touched only as it fills;
/// when it is full, blocks stay threaded. Everything here runs under the
/// engine's lock.
/// </para>
/// </remarks>
internal sealed unsafe class X64Tier : IDisposable
{
    /// <summary>Address space reserved for machine code.</summary>
    public const int RegionSize = 64 << 20;

    private readonly CodeMemory _code;
    private readonly BlockCompiler _compiler;
    private readonly long _exitStub;

    /// <summary>Blocks compiled, bytes of code, and blocks refused (not even their first op compiles, or the region is full).</summary>
    public long Compiled, Bytes, Refused;

    /// <summary>The entry stub, <c>int (X64Frame*, void* code)</c>.</summary>
    public delegate* unmanaged[SuppressGCTransition]<X64Frame*, void*, int> EntryStub { get; }

    /// <summary>Entries in <see cref="IndirectCache"/>: the size of a vCPU's jump cache, because both are indexed by <see cref="Runtime.Vcpu.JumpSlot"/>.</summary>
    public const int IndirectCacheSize = Runtime.Vcpu.JumpCacheSize;

    /// <summary>
    /// The blocks that machine code's indirect jumps (returns, calls through
    /// pointers, jump tables) look for their target in, by
    /// <see cref="Runtime.Vcpu.JumpSlot"/> of the target: one per engine,
    /// filled by every entry into machine code from threaded code, read
    /// without a lock (a slot is one pointer, and a stale one names a
    /// descriptor marked invalid).
    /// </summary>
    public X64Block** IndirectCache { get; }

    private X64Tier(CodeMemory code, ulong memSize, byte* codePages, byte* codeBits)
    {
        _code = code;
        // Zeroed: an empty slot is null, which the indirect jump's code tests for.
        IndirectCache = (X64Block**)NativeMemory.AllocZeroed(IndirectCacheSize, (nuint)sizeof(nint));
        _compiler = new BlockCompiler(memSize, codePages, codeBits, IndirectCache);
        var a = new Assembler();
        // Entry: save what the System V ABI says we must, load the guest's
        // registers, and jump to the block.
        foreach (var r in Saved) a.Push(r);
        a.Mov(8, Reg.Rax, Reg.Rsi);
        a.Load(8, Reg.Rbx, new Mem(Reg.Rdi, X64Frame.StateOffset));
        a.Load(8, Reg.Rsi, new Mem(Reg.Rdi, X64Frame.MemOffset));
        a.Load(4, Reg.Rbp, new Mem(Reg.Rdi, X64Frame.BudgetOffset));
        for (int g = 0; g < 8; g++) a.Load(4, (Reg)((int)Reg.R8 + g), new Mem(Reg.Rbx, g * 4));
        a.JmpReg(Reg.Rax);
        a.Align(16);
        int exitAt = a.Length;
        // Exit (eax holds what the code returns): store the guest's registers, restore ours.
        for (int g = 0; g < 8; g++) a.Store(4, new Mem(Reg.Rbx, g * 4), (Reg)((int)Reg.R8 + g));
        a.Store(4, new Mem(Reg.Rbx, X64Frame.OffsetFromState + X64Frame.BudgetOffset), Reg.Rbp);
        for (int i = Saved.Length - 1; i >= 0; i--) a.Pop(Saved[i]);
        a.Ret();
        a.ResolveLabels();
        long at = code.TryReserve(a.Length);
        if (at < 0)
            throw new ArgumentException($"a code region of {code.Size} bytes cannot hold even the entry and exit stubs", nameof(code));
        code.Write(at, a.Code);
        EntryStub = (delegate* unmanaged[SuppressGCTransition]<X64Frame*, void*, int>)code.ExecutableAt(at);
        _exitStub = (long)code.ExecutableAt(at + exitAt);
    }

    private static readonly Reg[] Saved = [Reg.Rbx, Reg.Rbp, Reg.R12, Reg.R13, Reg.R14, Reg.R15];

    /// <summary>True where the tier can exist: an x86-64 host running Linux.</summary>
    public static bool IsSupported => RuntimeInformation.ProcessArchitecture == Architecture.X64 && OperatingSystem.IsLinux();

    /// <summary>The tier for one engine, or null with the reason (no x86-64 host, no executable memory).</summary>
    public static X64Tier? TryCreate(ulong memSize, byte* codePages, byte* codeBits, int regionSize, out string? why)
    {
        if (!IsSupported)
        {
            why = $"machine code needs an x86-64 Linux host (this is {RuntimeInformation.ProcessArchitecture})";
            return null;
        }
        var code = CodeMemory.TryCreate((nuint)regionSize, out why);
        return code == null ? null : new X64Tier(code, memSize, codePages, codeBits);
    }

    /// <summary>
    /// Compiles <paramref name="block"/> and places its descriptor and code;
    /// null if it stays threaded.
    /// </summary>
    public X64Block* Compile(Block block, ThreadedHeader* header)
    {
        if (!_compiler.Compile(block, header, _exitStub))
        {
            Refused++;
            return null;
        }
        var asm = _compiler.Output;
        int codeAt = (sizeof(X64Block) + 15) & ~15;
        long at = _code.TryReserve(codeAt + asm.Length);
        if (at < 0)
        {
            Refused++;
            return null;
        }
        // The reservation is ours until the descriptor is returned (and then
        // published by the caller): plain writes through the writer.
        long x = (long)_code.ExecutableAt(at + codeAt);
        _code.Write(at + codeAt, asm.Code);
        foreach (var (offset, target) in asm.External)
            _code.Write(at + codeAt + offset, checked((int)(target - (x + offset + 4))));
        _code.Write(at, new X64Block { Header = header, Code = (void*)x, Start = block.Start, Invalid = block.Invalid ? 1 : 0 });
        Compiled++;
        Bytes += asm.Length;
        return (X64Block*)_code.ExecutableAt(at);
    }

    /// <summary>Marks a block's machine code invalid for indirect jumps (its block is being retired).</summary>
    public void Invalidate(X64Block* d)
    {
        // Other vCPUs may be reading the flag (an indirect jump checks it), so
        // the one store that touches published code memory is the volatile one.
        _code.WriteVolatile32(_code.OffsetOf(d) + X64Block.InvalidOffset, 1);
    }

    public void Dispose()
    {
        _code.Dispose();
        NativeMemory.Free(IndirectCache);
    }
}
