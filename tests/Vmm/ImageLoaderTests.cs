using System.Buffers.Binary;
using Sharpvisor.Native;
using Sharpvisor.Vmm;
using Sharpvisor.Vmm.Loader;

namespace Sharpvisor.Tests.Vmm;

public class ImageLoaderTests
{
    private const ulong Ram = 4 << 20;

    private static ImageException ReadFails(byte[] image, ulong ram = Ram, uint? flat = null)
    {
        using var dir = new TempDir();
        string path = dir.Write("image", image);
        return Assert.Throws<ImageException>(() => ImageLoader.Read(path, ram, flat));
    }

    [Fact]
    public void Read_ValidElf_LoadsSegmentsAtPhysicalAddressesAndZeroesBss()
    {
        using var dir = new TempDir();
        string path = dir.Write("hi.elf", TestElf.HiGuest().Build());
        GuestImage image = ImageLoader.Read(path, Ram, null);
        Assert.Equal(0x100000u, image.Entry);
        Assert.Equal(2, image.Segments.Count);

        using var mem = GuestMemory.Allocate(Ram);
        Assert.True(mem.TryGetSpan(0x100100, 0x1000, out Span<byte> data));
        data.Fill(0xAA); // bss must be cleared even over old contents
        ImageLoader.Load(image, mem);
        Assert.True(mem.TryRead8(0x100000, out byte first));
        Assert.Equal(0xB8, first);
        Assert.Equal("hi\n"u8.ToArray(), data[..3].ToArray());
        Assert.Equal(-1, data[3..].IndexOfAnyExcept((byte)0));
    }

    [Fact]
    public void Read_Elf64_IsBadImage()
    {
        ImageException e = ReadFails(TestElf.Elf64());
        Assert.Equal(ExitStatus.BadImage, e.Status);
        Assert.Contains("64-bit", e.Message);
    }

    [Fact]
    public void Read_WrongMachine_IsBadImageNamingTheMachine()
    {
        ImageException e = ReadFails(new TestElf { Machine = TestElf.EM_X86_64 }.Load(0x100000, [0x90]).Build());
        Assert.Equal(ExitStatus.BadImage, e.Status);
        Assert.Contains("not i386", e.Message);
    }

    [Fact]
    public void Read_SharedObject_IsBadImage()
    {
        ImageException e = ReadFails(new TestElf { Type = TestElf.ET_DYN }.Load(0x100000, [0x90]).Build());
        Assert.Equal(ExitStatus.BadImage, e.Status);
        Assert.Contains("ET_DYN", e.Message);
    }

    [Fact]
    public void Read_SegmentBeyondRam_IsBadImage()
    {
        ImageException e = ReadFails(new TestElf().Load(0x100000, [0x90]).Load(0x3ff000, [1], memorySize: 0x2000).Build());
        Assert.Equal(ExitStatus.BadImage, e.Status);
        Assert.Contains("outside guest RAM", e.Message);
    }

    [Fact]
    public void Read_SegmentThatWouldWrapPast4G_IsBadImage()
    {
        ImageException e = ReadFails(new TestElf().Load(0x100000, [0x90]).Load(0xfffff000, [1], memorySize: 0x2000).Build());
        Assert.Contains("outside guest RAM", e.Message);
    }

    [Fact]
    public void Read_OverlappingSegments_IsBadImage()
    {
        ImageException e = ReadFails(new TestElf().Load(0x100000, new byte[0x100]).Load(0x1000f0, [1, 2]).Build());
        Assert.Equal(ExitStatus.BadImage, e.Status);
        Assert.Contains("overlapping", e.Message);
    }

    [Fact]
    public void Read_FileCutInsideASegment_IsTruncated()
    {
        byte[] whole = new TestElf().Load(0x100000, new byte[0x200]).Build();
        ImageException e = ReadFails(whole[..(whole.Length - 0x100)]);
        Assert.Equal(ExitStatus.BadImage, e.Status);
        Assert.Contains("truncated", e.Message);
    }

    [Theory]
    [InlineData(20)] // inside the ELF header
    [InlineData(60)] // inside the program headers
    public void Read_FileCutInsideTheHeaders_IsBadImage(int length)
    {
        byte[] whole = new TestElf().Load(0x100000, new byte[0x20]).Build();
        ImageException e = ReadFails(whole[..length]);
        Assert.Equal(ExitStatus.BadImage, e.Status);
        Assert.DoesNotContain("\n", e.Message);
    }

    /// <summary>A valid two-segment guest with one header field overwritten (offsets as in the ELF32 header and first program header).</summary>
    private static byte[] HiGuestWith(int offset, int size, uint value)
    {
        byte[] image = TestElf.HiGuest().Build();
        if (size == 2) BinaryPrimitives.WriteUInt16LittleEndian(image.AsSpan(offset), (ushort)value);
        else BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(offset), value);
        return image;
    }

    [Theory]
    [InlineData(0)]
    [InlineData(16)]
    [InlineData(56)]
    [InlineData(0xffff)]
    public void Read_PhentsizeOtherThanElf32Phdr_IsBadImage(int phentsize)
    {
        ImageException e = ReadFails(HiGuestWith(42, 2, (uint)phentsize));
        Assert.Equal(ExitStatus.BadImage, e.Status);
        Assert.Contains("e_phentsize", e.Message);
    }

    /// <summary>
    /// Header fields that point outside the file or make no sense: each is
    /// refused with our own one line, never with the text of an exception
    /// from the ELF reader or the runtime.
    /// </summary>
    [Theory]
    [InlineData("e_phoff past the end", 28, 4, 0xfffffff0u)]
    [InlineData("e_phoff at the last byte", 28, 4, 141u)]
    [InlineData("e_phnum huge", 44, 2, 0xffffu)]
    [InlineData("e_shoff past the end", 32, 4, 0xfffffff0u)]
    [InlineData("e_shoff inside, e_shnum huge", 48, 2, 0xffffu)]
    [InlineData("p_offset past the end", 52 + 4, 4, 0xffffff00u)]
    [InlineData("p_filesz huge", 52 + 16, 4, 0xfffffff0u)]
    [InlineData("p_memsz huge", 52 + 20, 4, 0xfffffff0u)]
    [InlineData("p_offset negative as int", 52 + 4, 4, 0x80000000u)]
    [InlineData("p_filesz negative as int", 52 + 16, 4, 0x80000000u)]
    public void Read_MalformedHeaderField_IsBadImage_WithOurOwnOneLine(string name, int offset, int size, uint value)
    {
        byte[] image = HiGuestWith(offset, size, value);
        if (name.StartsWith("e_shoff inside", StringComparison.Ordinal))
            BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(32), 52); // sections "at" the program headers
        ImageException e = ReadFails(image);
        Assert.Equal(ExitStatus.BadImage, e.Status);
        Assert.DoesNotContain("\n", e.Message);
        Assert.StartsWith("'", e.Message);
        foreach (string foreign in new[] { "Parameter", "must be", "non-negative", "Stream", "Exception", "index", "Index", "Unable", "Arithmetic", "overflow" })
            Assert.DoesNotContain(foreign, e.Message);
    }

    [Fact]
    public void Read_EntryOutsideEverySegment_IsBadImage()
    {
        ImageException e = ReadFails(new TestElf { Entry = 0x200000 }.Load(0x100000, [0x90]).Build());
        Assert.Contains("entry point", e.Message);
    }

    [Fact]
    public void Read_NotElf_SuggestsFlat()
    {
        ImageException e = ReadFails("just text"u8.ToArray());
        Assert.Equal(ExitStatus.BadImage, e.Status);
        Assert.Contains("--flat", e.Message);
    }

    [Fact]
    public void Read_MissingFile_IsNoInput()
    {
        var e = Assert.Throws<ImageException>(() => ImageLoader.Read("/nonexistent/guest.elf", Ram, null));
        Assert.Equal(ExitStatus.NoInput, e.Status);
    }

    [Fact]
    public void Read_Flat_LoadsWholeFileAtAddressWhichIsTheEntry()
    {
        using var dir = new TempDir();
        string path = dir.Write("flat.bin", [1, 2, 3, 4, 5]);
        GuestImage image = ImageLoader.Read(path, Ram, 0x2000);
        Assert.Equal(0x2000u, image.Entry);
        using var mem = GuestMemory.Allocate(Ram);
        ImageLoader.Load(image, mem);
        Assert.True(mem.TryRead32(0x2001, out uint v));
        Assert.Equal(0x05040302u, v);
    }

    [Fact]
    public void Read_FlatPastEndOfRam_IsBadImage()
    {
        ImageException e = ReadFails([1, 2, 3, 4], flat: (uint)Ram - 2);
        Assert.Contains("past the end of guest RAM", e.Message);
    }
}
