namespace Sharpvisor.Jit.Runtime;

/// <summary>
/// How running a block (or one op of it) ended: what every engine returns to
/// the dispatcher, and what the dispatcher follows to find the next block.
/// </summary>
/// <remarks>
/// An int underneath, so that threaded handlers, machine code and IL regions
/// return it in a register exactly as they returned the bare numbers.
/// </remarks>
public enum BlockExit
{
    /// <summary>An indirect exit (or a re-entry after a code write): the next block is found by EIP.</summary>
    Continue = 0,
    /// <summary>The vCPU stopped; its exit is set.</summary>
    Stop = 1,
    /// <summary>The block's branch was taken: follow its taken link.</summary>
    Taken = 2,
    /// <summary>The block's branch fell through: follow its fallthrough link.</summary>
    Fallthrough = 3,
    /// <summary>Not an exit: the op ran and the next op of the block should run (from <c>Interpreter.Step</c>).</summary>
    Reached = 4,
    /// <summary>From a string op inside the semantics: leave the block, <c>s->Eip</c> is set (the caller returns <see cref="Continue"/>).</summary>
    Reenter = 5,
}
