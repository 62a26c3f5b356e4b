namespace Sharpvisor.Native;

public enum GuestAccess : byte
{
    Read,
    Write,
    Execute,
}

/// <summary>
/// A guest access that fell outside guest RAM: data, not an exception, so that
/// the vCPU loop can stop the guest with a reason and the host carries on.
/// </summary>
public readonly record struct GuestFault(ulong Address, ulong Size, GuestAccess Access)
{
    public override string ToString()
    {
        string verb = Access switch { GuestAccess.Write => "write", GuestAccess.Execute => "fetch", _ => "read" };
        return $"{verb} of {Size} byte{(Size == 1 ? "" : "s")} at 0x{Address:x} outside guest RAM";
    }
}
