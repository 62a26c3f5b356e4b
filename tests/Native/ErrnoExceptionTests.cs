using Sharpvisor.Native;

namespace Sharpvisor.Tests.Native;

public class ErrnoExceptionTests
{
    [Fact]
    public void Message_NamesCallErrnoAndStrerror()
    {
        var e = new ErrnoException("eventfd", Errno.EMFILE);
        Assert.Equal("eventfd: EMFILE (Too many open files)", e.Message);
        Assert.Equal(Errno.EMFILE, e.Errno);
        Assert.Equal("eventfd", e.Operation);
    }

    [Fact]
    public void Message_WithDetail_ReplacesStrerror()
    {
        var e = new ErrnoException("EventfdMap.Add", Errno.EEXIST, "value 0x10 is already attached");
        Assert.Equal("EventfdMap.Add: EEXIST (value 0x10 is already attached)", e.Message);
    }

    [Fact]
    public void Name_OfUnlistedErrno_IsNumeric()
    {
        Assert.Equal("errno 200", ((Errno)200).Name());
    }

    [Fact]
    public void FailedSyscall_BecomesErrnoException_WithKernelErrno()
    {
        // An fd number far above anything open: the kernel answers EBADF.
        var bogus = new SafeFdHandle(1_000_000, ownsHandle: false);
        var e = Assert.Throws<ErrnoException>(() => bogus.Duplicate());
        Assert.Equal(Errno.EBADF, e.Errno);
        Assert.StartsWith("fcntl(F_DUPFD_CLOEXEC): EBADF", e.Message);
    }
}
