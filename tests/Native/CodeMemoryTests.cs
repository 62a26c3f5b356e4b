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
        code.Writable[b] = 0xC3;
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
        byte[] ret42 = [0xB8, 42, 0, 0, 0, 0xC3]; // mov eax, 42; ret
        ret42.CopyTo(new Span<byte>(code.Writable + at, ret42.Length));
        var f = (delegate* unmanaged<int>)(code.Executable + at);
        Assert.Equal(42, f());
    }
}
