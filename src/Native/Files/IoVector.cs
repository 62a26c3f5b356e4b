using System.Runtime.InteropServices;

namespace Sharpvisor.Native;

/// <summary>
/// One piece of a scattered buffer for <see cref="DiskFile"/>'s vectored I/O:
/// the kernel's struct iovec (a pointer and a length, 16 bytes on x86-64).
/// </summary>
/// <remarks>
/// The pointer is raw: whoever builds a vector guarantees that
/// [Base, Base + Length) is live, writable memory of theirs for the whole
/// call (a device: a range of guest RAM it has checked with
/// <see cref="GuestMemory.Contains(ulong, ulong)"/>).
/// </remarks>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct IoVector
{
    public byte* Base;
    public nuint Length;

    public IoVector(byte* @base, nuint length)
    {
        Base = @base;
        Length = length;
    }
}
