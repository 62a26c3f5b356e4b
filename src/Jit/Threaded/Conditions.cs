using Sharpvisor.Jit.Runtime;

namespace Sharpvisor.Jit.Threaded;

/// <summary>
/// The x86 conditions as types, so that a handler specialised on one
/// (<c>Jcc&lt;CcL&gt;</c>) tests it with one host compare and no switch. Only
/// the two records that nearly every condition follows are covered: a 32-bit
/// compare (or sub) and a 32-bit logic op. Anything else, and the overflow and
/// parity conditions, go to the general evaluation in
/// <see cref="Cpu.LazyFlags"/>, in a handler of its own.
/// </summary>
internal interface ICondition
{
    /// <summary>The condition after a 32-bit <c>a - b</c> (cmp or sub) that gave <paramref name="res"/>.</summary>
    static abstract bool AfterSub(uint a, uint b, uint res);

    /// <summary>The condition after a 32-bit and/or/xor/test that gave <paramref name="res"/> (CF = OF = 0).</summary>
    static abstract bool AfterLogic(uint res);
}

internal struct CcB : ICondition
{
    public static bool AfterSub(uint a, uint b, uint res) => a < b;
    public static bool AfterLogic(uint res) => false;
}

internal struct CcAE : ICondition
{
    public static bool AfterSub(uint a, uint b, uint res) => a >= b;
    public static bool AfterLogic(uint res) => true;
}

internal struct CcE : ICondition
{
    public static bool AfterSub(uint a, uint b, uint res) => a == b;
    public static bool AfterLogic(uint res) => res == 0;
}

internal struct CcNE : ICondition
{
    public static bool AfterSub(uint a, uint b, uint res) => a != b;
    public static bool AfterLogic(uint res) => res != 0;
}

internal struct CcBE : ICondition
{
    public static bool AfterSub(uint a, uint b, uint res) => a <= b;
    public static bool AfterLogic(uint res) => res == 0;
}

internal struct CcA : ICondition
{
    public static bool AfterSub(uint a, uint b, uint res) => a > b;
    public static bool AfterLogic(uint res) => res != 0;
}

internal struct CcS : ICondition
{
    public static bool AfterSub(uint a, uint b, uint res) => (int)res < 0;
    public static bool AfterLogic(uint res) => (int)res < 0;
}

internal struct CcNS : ICondition
{
    public static bool AfterSub(uint a, uint b, uint res) => (int)res >= 0;
    public static bool AfterLogic(uint res) => (int)res >= 0;
}

internal struct CcL : ICondition
{
    public static bool AfterSub(uint a, uint b, uint res) => (int)a < (int)b;
    public static bool AfterLogic(uint res) => (int)res < 0;
}

internal struct CcGE : ICondition
{
    public static bool AfterSub(uint a, uint b, uint res) => (int)a >= (int)b;
    public static bool AfterLogic(uint res) => (int)res >= 0;
}

internal struct CcLE : ICondition
{
    public static bool AfterSub(uint a, uint b, uint res) => (int)a <= (int)b;
    public static bool AfterLogic(uint res) => (int)res <= 0;
}

internal struct CcG : ICondition
{
    public static bool AfterSub(uint a, uint b, uint res) => (int)a > (int)b;
    public static bool AfterLogic(uint res) => (int)res > 0;
}

/// <summary>
/// Picks the instantiation of a handler for condition code <c>cc</c>: C#
/// cannot pass an open generic method, so each family of condition handlers
/// names its own through <see cref="Get{TC}"/>.
/// </summary>
internal unsafe interface IConditionHandlers
{
    static abstract delegate*<ref ThreadedContext, ThreadedOp*, BlockExit> Get<TC>() where TC : struct, ICondition;
}

internal static unsafe class ConditionSelect
{
    /// <summary>The handler of <typeparamref name="TH"/> for <paramref name="cc"/>, or null for O, NO, P and NP.</summary>
    public static delegate*<ref ThreadedContext, ThreadedOp*, BlockExit> For<TH>(int cc) where TH : IConditionHandlers => cc switch
    {
        2 => TH.Get<CcB>(),
        3 => TH.Get<CcAE>(),
        4 => TH.Get<CcE>(),
        5 => TH.Get<CcNE>(),
        6 => TH.Get<CcBE>(),
        7 => TH.Get<CcA>(),
        8 => TH.Get<CcS>(),
        9 => TH.Get<CcNS>(),
        12 => TH.Get<CcL>(),
        13 => TH.Get<CcGE>(),
        14 => TH.Get<CcLE>(),
        15 => TH.Get<CcG>(),
        _ => null,
    };
}
