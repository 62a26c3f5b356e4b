using Sharpvisor.Native;

namespace Sharpvisor.Tests.Native;

public unsafe class GuestMemoryTests
{
    private const ulong Size = 1 << 20;

    [Fact]
    public void Allocate_IsPageAlignedAndZeroed()
    {
        using var mem = GuestMemory.Allocate(Size);
        Assert.Equal(0UL, (ulong)mem.Base % GuestMemory.PageSize);
        Assert.Equal(Size, mem.Size);
        Assert.True(mem.TryGetSpan(0, (int)Size, out Span<byte> all));
        Assert.Equal(-1, all.IndexOfAnyExcept((byte)0));
    }

    [Theory]
    [InlineData(0UL)]
    [InlineData(1UL)]
    [InlineData(4095UL)] // straddles a page boundary
    [InlineData(Size - 8)]
    public void ReadsAndWrites_RoundTripAtAnyAlignment_LittleEndian(ulong addr)
    {
        using var mem = GuestMemory.Allocate(Size);
        Assert.True(mem.TryWrite64(addr, 0x0807060504030201));
        Assert.True(mem.TryRead8(addr, out byte b));
        Assert.True(mem.TryRead16(addr, out ushort h));
        Assert.True(mem.TryRead32(addr, out uint w));
        Assert.True(mem.TryRead64(addr, out ulong q));
        Assert.Equal(0x01, b);
        Assert.Equal(0x0201, h);
        Assert.Equal(0x04030201U, w);
        Assert.Equal(0x0807060504030201UL, q);
        Assert.True(mem.TryWrite8(addr, 0xaa));
        Assert.True(mem.TryWrite16(addr + 1, 0xccbb));
        Assert.True(mem.TryWrite32(addr + 3, 0x11223344));
        Assert.True(mem.TryRead64(addr, out q));
        Assert.Equal(0x0811223344ccbbaaUL, q);
    }

    [Theory]
    [InlineData(Size, 1)]
    [InlineData(Size - 3, 4)]
    [InlineData(Size - 7, 8)]
    [InlineData(Size - 1, 2)]
    [InlineData(ulong.MaxValue, 1)]
    [InlineData(ulong.MaxValue - 2, 4)] // addr + 4 wraps to 1: must not pass
    public void AccessPastTheEnd_Fails_WithoutTouchingMemory(ulong addr, int size)
    {
        using var mem = GuestMemory.Allocate(Size);
        bool ok = size switch
        {
            1 => mem.TryRead8(addr, out _) || mem.TryWrite8(addr, 1),
            2 => mem.TryRead16(addr, out _) || mem.TryWrite16(addr, 1),
            4 => mem.TryRead32(addr, out _) || mem.TryWrite32(addr, 1),
            _ => mem.TryRead64(addr, out _) || mem.TryWrite64(addr, 1),
        };
        Assert.False(ok);
        Assert.False(mem.Contains(addr, (ulong)size));
        Assert.False(mem.TryGetSpan(addr, size, out _));
    }

    [Fact]
    public void Span_ViewsTheSameBytes()
    {
        using var mem = GuestMemory.Allocate(Size);
        Assert.True(mem.TryGetSpan(100, 4, out Span<byte> s));
        s[0] = 0x78; s[1] = 0x56; s[2] = 0x34; s[3] = 0x12;
        Assert.True(mem.TryRead32(100, out uint v));
        Assert.Equal(0x12345678U, v);
    }

    [Fact]
    public void Allocate_RejectsSizeNotPageMultiple()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => GuestMemory.Allocate(4097));
        Assert.Throws<ArgumentOutOfRangeException>(() => GuestMemory.Allocate(0));
    }

    [Fact]
    public void Dispose_Twice_IsSafe_AndLaterAccessesFail()
    {
        var mem = GuestMemory.Allocate(Size);
        mem.Dispose();
        mem.Dispose();
        Assert.Equal(0UL, mem.Size);
        Assert.False(mem.TryRead32(0, out _));
        Assert.False(mem.TryWrite8(0, 1));
    }

    [Fact]
    public void Allocate_LargeRam_DoesNotCommitIt()
    {
        // 1 GiB of guest RAM must not cost 1 GiB of resident memory up front.
        long before = Environment.WorkingSet;
        using var mem = GuestMemory.Allocate(1UL << 30);
        Assert.True(mem.TryWrite32((1UL << 30) - 4, 7));
        long grown = Environment.WorkingSet - before;
        Assert.True(grown < 256L << 20, $"working set grew by {grown >> 20} MiB");
    }
}
