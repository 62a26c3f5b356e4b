using System.Runtime.InteropServices;

namespace Sharpvisor.Native;

internal static partial class Interop
{
    /// <summary>getrandom(2) with flags 0: the urandom source, blocking only until it is first seeded.</summary>
    [LibraryImport(Libc, EntryPoint = "getrandom", SetLastError = true)]
    internal static unsafe partial nint GetRandom(void* buf, nuint buflen, uint flags);
}
