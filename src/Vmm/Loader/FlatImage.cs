namespace Sharpvisor.Vmm.Loader;

/// <summary>A flat binary: the whole file at one address, which is also the entry point.</summary>
internal static class FlatImage
{
    public static GuestImage Parse(byte[] file, uint address, ulong ramSize)
    {
        if (file.Length == 0)
            throw new ImageException(ExitStatus.BadImage, "flat image is empty");
        var segment = new ImageSegment(address, 0, (uint)file.Length, (uint)file.Length);
        if (segment.End > ramSize)
            throw new ImageException(ExitStatus.BadImage,
                $"flat image of {file.Length} bytes at 0x{address:x} ends at 0x{segment.End:x}, past the end of guest RAM (0x{ramSize:x}; see --mem)");
        return new GuestImage(address, [segment], file);
    }
}
