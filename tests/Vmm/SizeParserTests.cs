using Sharpvisor.Vmm.Launcher;

namespace Sharpvisor.Tests.Vmm;

public class SizeParserTests
{
    [Theory]
    [InlineData("64M", 64UL << 20)]
    [InlineData("64m", 64UL << 20)]
    [InlineData("4K", 4096UL)]
    [InlineData("1G", 1UL << 30)]
    [InlineData("3G", 3UL << 30)]
    [InlineData("3072M", 3UL << 30)]
    [InlineData("8192", 8192UL)]
    public void TryParseMemory_AcceptsBytesAndBinarySuffixes(string text, ulong expected)
    {
        Assert.True(SizeParser.TryParseMemory(text, out ulong bytes, out string error), error);
        Assert.Equal(expected, bytes);
    }

    [Theory]
    [InlineData("", "not a size")]
    [InlineData("M", "not a size")]
    [InlineData("-1M", "not a size")]
    [InlineData("1.5M", "not a size")]
    [InlineData("64MB", "not a size")]
    [InlineData("0", "nonzero multiple of 4K")]
    [InlineData("1000", "nonzero multiple of 4K")]
    [InlineData("4G", "3G")]
    [InlineData("3073M", "3G")]
    [InlineData("18446744073709551615K", "3G")] // would overflow when shifted
    public void TryParseMemory_RejectsWithAReason(string text, string reason)
    {
        Assert.False(SizeParser.TryParseMemory(text, out _, out string error));
        Assert.Contains(reason, error);
    }

    [Theory]
    [InlineData("0x100000", 0x100000u)]
    [InlineData("0X10", 0x10u)]
    [InlineData("4096", 4096u)]
    [InlineData("0xffffffff", 0xffffffffu)]
    public void TryParseAddress_AcceptsHexAndDecimal(string text, uint expected)
    {
        Assert.True(SizeParser.TryParseAddress(text, out uint address, out _));
        Assert.Equal(expected, address);
    }

    [Theory]
    [InlineData("0x100000000")]
    [InlineData("zz")]
    [InlineData("0x")]
    [InlineData("-5")]
    public void TryParseAddress_RejectsNonAddresses(string text) =>
        Assert.False(SizeParser.TryParseAddress(text, out _, out _));
}
