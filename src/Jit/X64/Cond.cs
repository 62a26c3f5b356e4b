namespace Sharpvisor.Jit.X64;

/// <summary>x86 condition codes, in encoding order.</summary>
internal static class Cond
{
    public const int O = 0, NO = 1, B = 2, AE = 3, E = 4, NE = 5, BE = 6, A = 7, S = 8, NS = 9, P = 10, NP = 11, L = 12, GE = 13, LE = 14, G = 15;
}
