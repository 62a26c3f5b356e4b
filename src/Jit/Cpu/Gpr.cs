namespace Sharpvisor.Jit.Cpu;

/// <summary>The eight 32-bit general registers, numbered as x86 encodes them (ModRM reg field).</summary>
public enum Gpr : byte
{
    Eax = 0, Ecx = 1, Edx = 2, Ebx = 3, Esp = 4, Ebp = 5, Esi = 6, Edi = 7,
}
