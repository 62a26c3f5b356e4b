using System.Buffers.Binary;

namespace Sharpvisor.Tests.Vmm;

/// <summary>
/// Writes small ELF files byte by byte, so the loader tests can make every
/// malformed case (and a valid guest) without a compiler. Layout: ELF header,
/// program headers, then each segment's file bytes, in order.
/// </summary>
internal sealed class TestElf
{
    public const ushort EM_386 = 3, EM_X86_64 = 62;
    public const ushort ET_EXEC = 2, ET_DYN = 3;
    public const uint PT_LOAD = 1, PT_INTERP = 3;

    public ushort Type { get; init; } = ET_EXEC;
    public ushort Machine { get; init; } = EM_386;
    public uint Entry { get; init; } = 0x100000;
    public List<(uint Type, uint Address, byte[] Data, uint MemorySize)> Segments { get; } = [];

    public TestElf Load(uint address, byte[] data, uint memorySize = 0)
    {
        Segments.Add((PT_LOAD, address, data, Math.Max(memorySize, (uint)data.Length)));
        return this;
    }

    public byte[] Build()
    {
        const int header = 52, phent = 32;
        int offset = header + phent * Segments.Count;
        var bytes = new byte[offset + Segments.Sum(s => s.Data.Length)];
        Span<byte> b = bytes;
        "\u007fELF"u8.CopyTo(b);
        b[4] = 1; // ELFCLASS32
        b[5] = 1; // little-endian
        b[6] = 1; // EV_CURRENT
        BinaryPrimitives.WriteUInt16LittleEndian(b[16..], Type);
        BinaryPrimitives.WriteUInt16LittleEndian(b[18..], Machine);
        BinaryPrimitives.WriteUInt32LittleEndian(b[20..], 1);
        BinaryPrimitives.WriteUInt32LittleEndian(b[24..], Entry);
        BinaryPrimitives.WriteUInt32LittleEndian(b[28..], header); // e_phoff
        BinaryPrimitives.WriteUInt16LittleEndian(b[40..], header); // e_ehsize
        BinaryPrimitives.WriteUInt16LittleEndian(b[42..], phent);
        BinaryPrimitives.WriteUInt16LittleEndian(b[44..], (ushort)Segments.Count);
        BinaryPrimitives.WriteUInt16LittleEndian(b[46..], 40); // e_shentsize, no sections
        for (int i = 0; i < Segments.Count; i++)
        {
            var (type, address, data, memsz) = Segments[i];
            Span<byte> ph = b.Slice(header + i * phent, phent);
            BinaryPrimitives.WriteUInt32LittleEndian(ph, type);
            BinaryPrimitives.WriteUInt32LittleEndian(ph[4..], (uint)offset);
            BinaryPrimitives.WriteUInt32LittleEndian(ph[8..], address);  // p_vaddr
            BinaryPrimitives.WriteUInt32LittleEndian(ph[12..], address); // p_paddr
            BinaryPrimitives.WriteUInt32LittleEndian(ph[16..], (uint)data.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(ph[20..], memsz);
            BinaryPrimitives.WriteUInt32LittleEndian(ph[24..], 7); // RWX
            BinaryPrimitives.WriteUInt32LittleEndian(ph[28..], 4);
            data.CopyTo(b[offset..]);
            offset += data.Length;
        }
        return bytes;
    }

    /// <summary>A minimal, otherwise well-formed ELF64 x86-64 executable header.</summary>
    public static byte[] Elf64()
    {
        var bytes = new byte[64];
        Span<byte> b = bytes;
        "\u007fELF"u8.CopyTo(b);
        b[4] = 2; // ELFCLASS64
        b[5] = 1;
        b[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(b[16..], ET_EXEC);
        BinaryPrimitives.WriteUInt16LittleEndian(b[18..], EM_X86_64);
        BinaryPrimitives.WriteUInt32LittleEndian(b[20..], 1);
        BinaryPrimitives.WriteUInt64LittleEndian(b[24..], 0x400000);
        BinaryPrimitives.WriteUInt16LittleEndian(b[52..], 64); // e_ehsize
        BinaryPrimitives.WriteUInt16LittleEndian(b[54..], 56); // e_phentsize
        BinaryPrimitives.WriteUInt16LittleEndian(b[58..], 64); // e_shentsize
        return bytes;
    }

    /// <summary>
    /// A hand-assembled guest: writes "hi\n" with SV_CONSOLE_WRITE, then
    /// LHCALL_SHUTDOWN with status 7. Code at 0x100000, message at 0x100100.
    /// </summary>
    public static TestElf HiGuest()
    {
        byte[] code =
        [
            0xB8, 0x20, 0, 0, 0,          // mov eax, 32 (SV_CONSOLE_WRITE)
            0xBB, 0x00, 0x01, 0x10, 0x00, // mov ebx, 0x100100
            0xB9, 3, 0, 0, 0,             // mov ecx, 3
            0xCD, 0x1F,                   // int 0x1f
            0xB8, 2, 0, 0, 0,             // mov eax, 2 (LHCALL_SHUTDOWN)
            0xBB, 7, 0, 0, 0,             // mov ebx, 7
            0xCD, 0x1F,                   // int 0x1f
        ];
        return new TestElf().Load(0x100000, code).Load(0x100100, "hi\n"u8.ToArray(), memorySize: 0x1000);
    }
}

/// <summary>A temporary directory for image files, removed with the test.</summary>
internal sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("sharpvisor-test-").FullName;

    public string Write(string name, byte[] bytes)
    {
        string file = System.IO.Path.Combine(Path, name);
        File.WriteAllBytes(file, bytes);
        return file;
    }

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
