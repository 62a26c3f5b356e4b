using System.Buffers.Binary;
using ELFSharp.ELF;
using ELFSharp.ELF.Segments;

namespace Sharpvisor.Vmm.Loader;

/// <summary>
/// A static ELF32 i386 executable: ELFSharp reads the headers, and the checks
/// here decide whether the guest ABI can run it. Only program headers
/// matter; a guest is loaded the way a boot loader loads a kernel, by
/// physical address (p_paddr), with no dynamic linking and no relocation.
/// </summary>
internal static class ElfImage
{
    private const int Elf32HeaderSize = 52;
    private const int Elf32PhdrSize = 32;

    public static GuestImage Parse(byte[] file, ulong ramSize, string path)
    {
        if (file.Length < 4 || file[0] != 0x7f || file[1] != (byte)'E' || file[2] != (byte)'L' || file[3] != (byte)'F')
            throw Bad($"'{path}' is not an ELF file (for a flat binary, give --flat ADDR)");
        // ELFSharp reads whatever header it finds; a cut-off header would
        // come back as an exception from deep inside it, so say it plainly.
        if (file.Length < Elf32HeaderSize)
            throw Bad($"'{path}' is truncated: {file.Length} bytes, shorter than an ELF header");

        CheckProgramHeaderTable(file, path);

        IELF elf;
        try
        {
            if (!ELFReader.TryLoad(new MemoryStream(file, writable: false), shouldOwnStream: true, out elf))
                throw Bad($"'{path}' is not a readable ELF file");
        }
        catch (Exception e) when (e is not ImageException)
        {
            // ELFSharp's own text names its internals, not the file's fault
            // (a section table out of bounds, say): our line says what it is.
            throw Bad($"'{path}' is a malformed ELF file: its headers cannot be read");
        }

        using (elf)
        {
            if (elf.Class != Class.Bit32)
                throw Bad($"'{path}' is a 64-bit ELF (ELFCLASS64); Sharpvisor runs 32-bit i386 images");
            if (elf.Endianess != ELFSharp.Endianess.LittleEndian)
                throw Bad($"'{path}' is a big-endian ELF; i386 images are little-endian");
            if (elf.Machine != ELFSharp.ELF.Machine.Intel386)
                throw Bad($"'{path}' is an ELF for machine {elf.Machine}, not i386 (EM_386)");
            if (elf.Type != FileType.Executable)
                throw Bad($"'{path}' is an ELF of type {TypeName(elf.Type)}; Sharpvisor loads only static executables (ET_EXEC)");

            var elf32 = (ELF<uint>)elf;
            IReadOnlyList<Segment<uint>> headers;
            try
            {
                headers = elf32.Segments;
            }
            catch (Exception)
            {
                throw Bad($"'{path}' is truncated or malformed: cannot read its program headers");
            }
            return Check(path, file, ramSize, elf32.EntryPoint, headers);
        }
    }

    private static GuestImage Check(string path, byte[] file, ulong ramSize, uint entry, IReadOnlyList<Segment<uint>> headers)
    {
        var segments = new List<ImageSegment>();
        for (int i = 0; i < headers.Count; i++)
        {
            Segment<uint> h = headers[i];
            if (h.Type == SegmentType.Interpreter)
                throw Bad($"'{path}' asks for a dynamic loader (PT_INTERP); link the guest with -static");
            if (h.Type != SegmentType.Load || h.Size == 0)
                continue;
            // ELFSharp widens p_offset and p_filesz to long for both classes; in an
            // ELF32 file they were read from 32-bit fields, so they fit.
            var s = new ImageSegment(h.PhysicalAddress, (uint)h.Offset, (uint)h.FileSize, h.Size);
            if (s.FileSize > s.MemorySize)
                throw Bad($"'{path}' segment {i}: file size 0x{s.FileSize:x} exceeds its memory size 0x{s.MemorySize:x}");
            if ((ulong)s.FileOffset + s.FileSize > (ulong)file.Length)
                throw Bad($"'{path}' is truncated: segment {i} needs file bytes up to 0x{(ulong)s.FileOffset + s.FileSize:x}, the file has 0x{file.Length:x}");
            if (s.End > ramSize)
                throw Bad($"'{path}' segment {i} at 0x{s.Address:x}-0x{s.End:x} lies outside guest RAM (0x{ramSize:x} bytes; see --mem)");
            segments.Add(s);
        }
        if (segments.Count == 0)
            throw Bad($"'{path}' has no loadable segment (PT_LOAD)");

        // Overlapping segments would make the image's meaning depend on load
        // order; a linker never produces them, so they mean a broken file.
        segments.Sort((a, b) => a.Address.CompareTo(b.Address));
        for (int i = 1; i < segments.Count; i++)
            if (segments[i].Address < segments[i - 1].End)
                throw Bad($"'{path}' has overlapping segments: 0x{segments[i - 1].Address:x}-0x{segments[i - 1].End:x} and 0x{segments[i].Address:x}-0x{segments[i].End:x}");

        if (!segments.Exists(s => entry >= s.Address && entry < s.End))
            throw Bad($"'{path}' entry point 0x{entry:x} lies outside every loaded segment");
        return new GuestImage(entry, segments, file);
    }

    /// <summary>
    /// The fields that say where the program headers are, read from the
    /// bytes before ELFSharp sees them: the class and byte order (so a
    /// 64-bit or big-endian file is named as such), the entry size, and that
    /// the whole table lies inside the file.
    /// </summary>
    private static void CheckProgramHeaderTable(byte[] file, string path)
    {
        if (file[4] == 2)
            throw Bad($"'{path}' is a 64-bit ELF (ELFCLASS64); Sharpvisor runs 32-bit i386 images");
        if (file[4] != 1)
            throw Bad($"'{path}' is an ELF of unknown class {file[4]}; Sharpvisor runs 32-bit i386 images (ELFCLASS32)");
        if (file[5] == 2)
            throw Bad($"'{path}' is a big-endian ELF; i386 images are little-endian");
        if (file[5] != 1)
            throw Bad($"'{path}' is an ELF of unknown byte order {file[5]}; i386 images are little-endian (ELFDATA2LSB)");
        uint phoff = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(28));
        ushort phentsize = BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(42));
        ushort phnum = BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(44));
        if (phentsize != Elf32PhdrSize)
            throw Bad($"'{path}' has e_phentsize {phentsize}; an ELF32 program header is {Elf32PhdrSize} bytes");
        ulong end = phoff + (ulong)phnum * Elf32PhdrSize;
        if (end > (ulong)file.Length)
            throw Bad($"'{path}' is truncated: its {phnum} program headers at 0x{phoff:x} need file bytes up to 0x{end:x}, the file has 0x{file.Length:x}");
    }

    private static string TypeName(FileType type) => type switch
    {
        FileType.SharedObject => "ET_DYN (a shared object or PIE)",
        FileType.Relocatable => "ET_REL (an object file, not linked)",
        FileType.Core => "ET_CORE (a core dump)",
        _ => type.ToString(),
    };

    private static ImageException Bad(string message) => new(ExitStatus.BadImage, message);
}
