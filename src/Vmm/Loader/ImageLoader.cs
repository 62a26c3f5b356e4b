namespace Sharpvisor.Vmm.Loader;

// Journey: image
/// <summary>
/// Reads an image file and places it in guest RAM (guest ABI v1, "Image").
/// A guest is loaded the way a boot loader loads a kernel: each ELF segment
/// is copied to its physical address, with no dynamic linker and no
/// relocation, because there is no operating system inside to do either.
/// Reading checks everything against the RAM size first (bounds, overlap,
/// truncation), so that a bad image is rejected with one clear line before
/// any memory is touched.
/// </summary>
public static class ImageLoader
{
    /// <summary>
    /// Reads and checks <paramref name="path"/>: an ELF32 i386 executable, or
    /// with <paramref name="flatAddress"/> a flat binary loaded there.
    /// </summary>
    /// <exception cref="ImageException">The file is missing (66) or not loadable (65).</exception>
    public static GuestImage Read(string path, ulong ramSize, uint? flatAddress)
    {
        byte[] file;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
                throw new ImageException(ExitStatus.NoInput,
                    Directory.Exists(path) ? $"image '{path}' is a directory" : $"image '{path}' not found");
            // Checked before reading, so a huge file is refused without
            // reading it: no image can be larger than the RAM it must fit in.
            if ((ulong)info.Length > ramSize)
                throw new ImageException(ExitStatus.BadImage,
                    $"image '{path}' is {info.Length} bytes, larger than guest RAM ({ramSize} bytes; see --mem)");
            file = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ImageException(ExitStatus.NoInput, $"cannot read image '{path}': {e.Message}");
        }
        return flatAddress is uint address
            ? FlatImage.Parse(file, address, ramSize)
            : ElfImage.Parse(file, ramSize, path);
    }

    /// <summary>Copies a checked image into guest RAM and zeroes each segment's bss.</summary>
    public static void Load(GuestImage image, Sharpvisor.Native.GuestMemory memory)
    {
        foreach (ImageSegment s in image.Segments)
        {
            // Read() checked the bounds against the RAM size; a failure here
            // means the image was checked against a different machine.
            if (!memory.TryGetSpan(s.Address, checked((int)s.MemorySize), out Span<byte> target))
                throw new InvalidOperationException($"segment at 0x{s.Address:x} does not fit this machine's RAM");
            image.File.AsSpan((int)s.FileOffset, (int)s.FileSize).CopyTo(target);
            // RAM starts zeroed, but bss must be zero whatever came before.
            target[(int)s.FileSize..].Clear();
        }
    }
}
