using System.Runtime.InteropServices;

namespace Sharpvisor.Native;

internal static partial class Interop
{
    /// <summary>The kernel's id for the calling thread (what ps, top and /proc show).</summary>
    [LibraryImport(Libc, EntryPoint = "gettid")]
    internal static partial int GetTid();
}
