namespace Sharpvisor.Native;

internal static partial class Interop
{
    /// <summary>
    /// glibc by its soname. The bare name "libc" would make the loader probe
    /// <c>libc.so</c>, which on Debian is a linker script (and only present with
    /// libc6-dev), so we name the real shared object.
    /// </summary>
    internal const string Libc = "libc.so.6";
}
