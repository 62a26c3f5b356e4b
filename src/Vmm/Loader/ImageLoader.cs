using Sharpvisor.Native;

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
        byte[] file = ReadFile(path, ramSize);
        return flatAddress is uint address
            ? FlatImage.Parse(file, address, ramSize)
            : ElfImage.Parse(file, ramSize, path);
    }

    /// <summary>
    /// The whole file, if it is a regular file and fits in RAM. What is not a
    /// regular file is refused before it is opened: a FIFO would block the
    /// open until a writer comes, and a device such as /dev/zero never ends.
    /// A file that grows while it is read, or reports no size (as /proc files
    /// do), is read only until it proves larger than RAM.
    /// </summary>
    private static byte[] ReadFile(string path, ulong ramSize)
    {
        if (path.Length == 0)
            throw new ImageException(ExitStatus.NoInput, "the image path is empty");
        FileKind kind = FileKinds.Of(path);
        if (kind == FileKind.Missing)
            throw new ImageException(ExitStatus.NoInput, $"image '{path}' not found");
        if (kind == FileKind.Directory)
            throw new ImageException(ExitStatus.NoInput, $"image '{path}' is a directory");
        if (kind != FileKind.Regular)
            throw new ImageException(ExitStatus.BadImage, $"image '{path}' is {FileKinds.Describe(kind)}, not a regular file");
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 1);
            // Checked before reading, so a huge file is refused without
            // reading it: no image can be larger than the RAM it must fit in.
            long length = stream.Length;
            if ((ulong)length > ramSize)
                throw TooLarge(path, length, ramSize);
            if (length > Array.MaxLength)
                throw new ImageException(ExitStatus.BadImage, $"image '{path}' is {length} bytes, more than this launcher can load at once");
            var file = new byte[length];
            int got = stream.ReadAtLeast(file, file.Length, throwOnEndOfStream: false);
            if (got < file.Length) return file[..got]; // it shrank while we read
            return ReadOn(stream, file, path, ramSize);
        }
        catch (UnauthorizedAccessException)
        {
            throw new ImageException(ExitStatus.NoInput, $"cannot read image '{path}': permission denied");
        }
        catch (FileNotFoundException)
        {
            throw new ImageException(ExitStatus.NoInput, $"image '{path}' not found");
        }
        catch (DirectoryNotFoundException)
        {
            throw new ImageException(ExitStatus.NoInput, $"image '{path}' not found");
        }
        catch (IOException)
        {
            throw new ImageException(ExitStatus.NoInput, $"cannot read image '{path}': an I/O error");
        }
    }

    /// <summary>Whatever follows the size the file reported, up to what RAM holds.</summary>
    private static byte[] ReadOn(FileStream stream, byte[] start, string path, ulong ramSize)
    {
        var chunk = new byte[64 * 1024];
        int n = stream.Read(chunk);
        if (n == 0) return start;
        var more = new MemoryStream();
        more.Write(start);
        do
        {
            if ((ulong)more.Length + (ulong)n > ramSize || more.Length + n > Array.MaxLength)
                throw TooLarge(path, more.Length + n, ramSize, atLeast: true);
            more.Write(chunk, 0, n);
            n = stream.Read(chunk);
        }
        while (n > 0);
        return more.ToArray();
    }

    private static ImageException TooLarge(string path, long bytes, ulong ramSize, bool atLeast = false) =>
        new(ExitStatus.BadImage,
            $"image '{path}' is {(atLeast ? "at least " : "")}{bytes} bytes, larger than guest RAM ({ramSize} bytes; see --mem)");

    /// <summary>Copies a checked image into guest RAM and zeroes each segment's bss.</summary>
    public static void Load(GuestImage image, GuestMemory memory)
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
