using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Sharpvisor.Native;

/// <summary>
/// Throws live here, out of line, so that the methods that may throw stay small
/// enough for the JIT to inline (a <c>throw</c> in a method body blocks that).
/// </summary>
internal static class ThrowHelper
{
    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    internal static void ThrowErrno(string operation, Errno errno, string? detail = null) =>
        throw new ErrnoException(operation, errno, detail);

    /// <summary>Throws for the errno the last P/Invoke left.</summary>
    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    internal static void ThrowLastErrno(string operation) =>
        throw new ErrnoException(operation, Interop.LastErrno);

    [DoesNotReturn, MethodImpl(MethodImplOptions.NoInlining)]
    internal static void ThrowObjectDisposed(object o) =>
        throw new ObjectDisposedException(o.GetType().Name);
}
