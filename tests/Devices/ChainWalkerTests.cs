using Sharpvisor.Devices.Virtio.Queues;
using Sharpvisor.Native;

namespace Sharpvisor.Tests.Devices;

/// <summary>
/// The chain walk alone, one case per rule of spec 2.7.5 and 2.7.4.2 that it
/// enforces: each malformed table gives its own fault, and well-formed ones
/// (direct, indirect, direct then indirect, zero-length buffers) come out as
/// the buffers they describe.
/// </summary>
[Collection("Devices")]
public sealed class ChainWalkerTests : IDisposable
{
    private const int Size = 8;
    private const ulong Desc = 0x1000, Table = 0x3000;
    private const ushort N = TestDriver.DescNext, W = TestDriver.DescWrite, I = TestDriver.DescIndirect;
    private readonly GuestMemory _ram = GuestMemory.Allocate(1 << 16);
    private readonly QueueLayout _layout = new(Size, Desc, 0x2000, 0x2400);
    private readonly DescriptorChain _chain;

    public ChainWalkerTests() => _chain = new DescriptorChain(_ram, SplitRing.MaxSize);

    public void Dispose() => _ram.Dispose();

    private void Set(ulong tableAt, int i, ulong addr, uint len, ushort flags, ushort next)
    {
        ulong at = tableAt + (ulong)i * 16;
        Assert.True(_ram.TryWrite64(at, addr) && _ram.TryWrite32(at + 8, len) && _ram.TryWrite16(at + 12, flags) && _ram.TryWrite16(at + 14, next));
    }

    private ChainFault Walk(ushort head = 0, bool indirect = true) =>
        ChainWalker.Walk(_ram, _layout, head, indirect, _chain, out _);

    [Fact]
    public void ADirectChainComesOutInOrder()
    {
        Set(Desc, 0, 0x8000, 16, N, 5);
        Set(Desc, 5, 0x9000, 0, N | W, 2); // zero-length buffers are allowed
        Set(Desc, 2, 0xa000, 100, W, 0);
        Assert.Equal(ChainFault.None, Walk());
        Assert.Equal(new BufferSegment[] { new(0x8000, 16, false), new(0x9000, 0, true), new(0xa000, 100, true) }, _chain.Segments.ToArray());
        Assert.Equal(16u, _chain.ReadableLength);
        Assert.Equal(100u, _chain.WritableLength);
    }

    [Fact]
    public void DirectThenIndirectComesOutInOrder()
    {
        Set(Desc, 0, 0x8000, 16, N, 1);
        Set(Desc, 1, Table, 32, I | W, 0); // WRITE on a table pointer is ignored
        Set(Table, 0, 0x9000, 8, W | N, 1);
        Set(Table, 1, 0xa000, 1, W, 0);
        Assert.Equal(ChainFault.None, Walk());
        Assert.Equal(3, _chain.Count);
        Assert.Equal(1, _chain.ReadableCount);
        Assert.Equal(9u, _chain.WritableLength);
    }

    [Theory]
    [InlineData(0x10000ul, 1u)]             // starts at the end of RAM
    [InlineData(0xfff0ul, 0x11u)]           // crosses it
    [InlineData(ulong.MaxValue, 2u)]        // wraps
    public void ABufferOutsideRam(ulong addr, uint len)
    {
        Set(Desc, 0, addr, len, 0, 0);
        Assert.Equal(ChainFault.BufferOutsideRam, Walk());
    }

    [Fact]
    public void AZeroLengthBufferJustPastRamIsOutside()
    {
        Set(Desc, 0, 0x10001, 0, 0, 0);
        Assert.Equal(ChainFault.BufferOutsideRam, Walk());
    }

    [Fact]
    public void AHeadOrNextPastTheQueue()
    {
        Assert.Equal(ChainFault.HeadOutOfRange, Walk(head: Size));
        Set(Desc, 0, 0x8000, 1, N, Size);
        Assert.Equal(ChainFault.NextOutOfRange, Walk());
    }

    [Fact]
    public void ALoop()
    {
        Set(Desc, 0, 0x8000, 1, N, 1);
        Set(Desc, 1, 0x8000, 1, N, 0);
        // Two distinct buffers repeat: the walk stops at the queue size, whichever check sees it first.
        Assert.Contains(Walk(), new[] { ChainFault.Loop, ChainFault.TooLong });
        Set(Desc, 0, 0x8000, 1, N, 0); // a descriptor pointing at itself
        Assert.Contains(Walk(), new[] { ChainFault.Loop, ChainFault.TooLong });
    }

    [Fact]
    public void ALoopInsideAnIndirectTable()
    {
        Set(Desc, 0, Table, 32, I, 0);
        Set(Table, 0, 0x8000, 1, N, 1);
        Set(Table, 1, 0x8000, 1, N, 0);
        Assert.Equal(ChainFault.Loop, Walk());
    }

    [Fact]
    public void MoreBuffersThanTheQueueSize()
    {
        Set(Desc, 0, Table, (Size + 1) * 16, I, 0);
        for (int i = 0; i <= Size; i++) Set(Table, i, 0x8000, 1, (ushort)(i < Size ? N : 0), (ushort)(i + 1));
        Assert.Equal(ChainFault.TooLong, Walk());
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(24u)]
    public void AnIndirectTableLengthNotANonzeroMultipleOf16(uint len)
    {
        Set(Desc, 0, Table, len, I, 0);
        Assert.Equal(ChainFault.IndirectLength, Walk());
    }

    [Fact]
    public void AnIndirectTableOutsideRam()
    {
        Set(Desc, 0, 0xfff0, 32, I, 0);
        Assert.Equal(ChainFault.IndirectOutsideRam, Walk());
    }

    [Fact]
    public void IndirectRules()
    {
        Set(Desc, 0, Table, 16, I, 0);
        Set(Table, 0, Table, 16, I, 0);
        Assert.Equal(ChainFault.NestedIndirect, Walk());
        Set(Table, 0, 0x8000, 1, N, 1); // next past the table's one entry
        Assert.Equal(ChainFault.IndirectNextOutOfRange, Walk());
        Set(Desc, 0, Table, 16, I | N, 1);
        Assert.Equal(ChainFault.IndirectWithNext, Walk());
        Set(Desc, 0, Table, 16, I, 0);
        Assert.Equal(ChainFault.IndirectNotNegotiated, Walk(indirect: false));
    }

    [Fact]
    public void AReadableBufferAfterAWritableOne()
    {
        Set(Desc, 0, 0x8000, 1, W | N, 1);
        Set(Desc, 1, 0x8000, 1, 0, 0);
        Assert.Equal(ChainFault.ReadableAfterWritable, Walk());
    }

    [Fact]
    public void LengthsSummingPast32Bits()
    {
        using var big = GuestMemory.Allocate(1UL << 31);
        var layout = new QueueLayout(Size, Desc, 0x2000, 0x2400);
        var chain = new DescriptorChain(big, SplitRing.MaxSize);
        ulong at = Desc;
        Assert.True(big.TryWrite64(at, 0) && big.TryWrite32(at + 8, 0x8000_0000) && big.TryWrite16(at + 12, N) && big.TryWrite16(at + 14, 1));
        at += 16;
        Assert.True(big.TryWrite64(at, 0) && big.TryWrite32(at + 8, 0x8000_0000) && big.TryWrite16(at + 12, 0) && big.TryWrite16(at + 14, 0));
        Assert.Equal(ChainFault.LengthOverflow, ChainWalker.Walk(big, layout, 0, true, chain, out string? detail));
        Assert.Contains("2^32", detail);
    }
}
