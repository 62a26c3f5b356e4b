using Sharpvisor.Native;

namespace Sharpvisor.Tests.Native;

public class CodeMemoryTests
{
    [Fact]
    public unsafe void BothViews_ShowTheSameBytes_AndReservationsStopAtTheEnd()
    {
        using var code = CodeMemory.TryCreate(8192, out string? why) ?? throw new InvalidOperationException(why);
        Assert.NotEqual((nint)code.Writable, (nint)code.Executable);
        long a = code.TryReserve(100);
        long b = code.TryReserve(10);
        Assert.Equal(0, a);
        Assert.Equal(112, b); // aligned to 16
        code.Write(b, [0xC3]);
        Assert.Equal(0xC3, code.Executable[b]);
        Assert.Equal(-1, code.TryReserve(8192));
        Assert.True(code.TryReserve(8192 - 128) >= 0);
        Assert.Equal(-1, code.TryReserve(1));
    }

    [Fact]
    public unsafe void TheExecutableView_RunsWhatTheWritableViewGot()
    {
        if (System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture != System.Runtime.InteropServices.Architecture.X64)
            Assert.Skip("the bytes are x86-64 code");
        using var code = CodeMemory.TryCreate(4096, out string? why) ?? throw new InvalidOperationException(why);
        long at = code.TryReserve(6);
        code.Write(at, [0xB8, 42, 0, 0, 0, 0xC3]); // mov eax, 42; ret
        var f = (delegate* unmanaged<int>)code.ExecutableAt(at);
        Assert.Equal(42, f());
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(-16)]
    [InlineData(int.MinValue)]
    public void TryReserve_WhenLengthIsNegative_FailsAndReservesNothing(int length)
    {
        using var code = CodeMemory.TryCreate(4096, out string? why) ?? throw new InvalidOperationException(why);
        Assert.Equal(0, code.TryReserve(16));
        // A negative length once wrapped the bounds check and moved the
        // high-water mark past the end of the mapping.
        Assert.Equal(-1, code.TryReserve(length));
        Assert.Equal((nuint)16, code.Used);
        Assert.Equal(16, code.TryReserve(16));
    }

    [Fact]
    public unsafe void Writer_WritesReservedBytes_SeenThroughTheExecutableView()
    {
        using var code = CodeMemory.TryCreate(4096, out string? why) ?? throw new InvalidOperationException(why);
        long at = code.TryReserve(32);
        code.Write(at, [1, 2, 3]);
        code.Write(at + 3, 0x7766554433221100UL); // unaligned
        code.WriteVolatile32(at + 28, -2);
        byte* x = code.ExecutableAt(at);
        Assert.Equal(new byte[] { 1, 2, 3, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77 }, new ReadOnlySpan<byte>(x, 11).ToArray());
        Assert.Equal(-2, *(int*)(x + 28));
        Assert.Equal(at + 28, code.OffsetOf(x + 28));
    }

    [Theory]
    [InlineData(-1L, 1)]       // before the region
    [InlineData(30L, 4)]       // straddles the end of what is reserved
    [InlineData(32L, 1)]       // just past it
    [InlineData(long.MaxValue, 1)]
    [InlineData(0L, 33)]
    public void Writer_OutsideReservedBytes_Throws_AndWritesNothing(long offset, int length)
    {
        using var code = CodeMemory.TryCreate(4096, out string? why) ?? throw new InvalidOperationException(why);
        Assert.Equal(0, code.TryReserve(32));
        byte[] ones = new byte[length];
        Array.Fill(ones, (byte)1);
        Assert.Throws<ArgumentOutOfRangeException>(() => code.Write(offset, ones));
        if (offset is < 0 or > 28) // a 4-byte word there leaves the reservation too
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => code.Write(offset, 0x01010101));
            Assert.Throws<ArgumentOutOfRangeException>(() => code.WriteVolatile32(offset, 1));
        }
        Assert.True(IsZero(code, 0, 4096));
    }

    [Fact]
    public void WriteVolatile32_WhenMisaligned_Throws()
    {
        using var code = CodeMemory.TryCreate(4096, out string? why) ?? throw new InvalidOperationException(why);
        long at = code.TryReserve(16);
        Assert.Throws<ArgumentOutOfRangeException>(() => code.WriteVolatile32(at + 2, 1));
        Assert.True(IsZero(code, 0, 16));
    }

    [Fact]
    public unsafe void OffsetOf_WhenTheAddressIsNotThisRegions_Throws()
    {
        using var code = CodeMemory.TryCreate(4096, out string? why) ?? throw new InvalidOperationException(why);
        long at = code.TryReserve(16);
        byte* x = code.ExecutableAt(at);
        Assert.Throws<ArgumentOutOfRangeException>(() => code.OffsetOf(x - 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => code.OffsetOf(x + 16)); // not reserved
        Assert.Throws<ArgumentOutOfRangeException>(() => code.OffsetOf(code.Writable)); // the other view
        Assert.Throws<ArgumentOutOfRangeException>(() => code.ExecutableAt(16));
    }

    [Fact]
    public void Writer_AfterDispose_RefusesInsteadOfFaulting()
    {
        var code = CodeMemory.TryCreate(4096, out string? why) ?? throw new InvalidOperationException(why);
        long at = code.TryReserve(16);
        code.Dispose();
        Assert.Throws<ArgumentOutOfRangeException>(() => code.Write(at, [1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => code.WriteVolatile32(at, 1));
        Assert.Equal(-1, code.TryReserve(16));
    }

    private static unsafe bool IsZero(CodeMemory code, int from, int length) =>
        new ReadOnlySpan<byte>(code.Executable + from, length).IndexOfAnyExcept((byte)0) < 0;
}
