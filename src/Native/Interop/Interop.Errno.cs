using System.Runtime.InteropServices;

namespace Sharpvisor.Native;

internal static partial class Interop
{
    /// <summary>errno as left by the last P/Invoke marked SetLastError.</summary>
    internal static Errno LastErrno => (Errno)Marshal.GetLastPInvokeError();
}
