using Sharpvisor.Native;

namespace Sharpvisor.Tests.Devices;

/// <summary>A disk image in the temporary directory, filled with seeded random bytes; deleted on Dispose.</summary>
internal sealed class TempDisk : IDisposable
{
    public TempDisk(int bytes, int seed = 1)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"sharpvisor-disk-{Environment.ProcessId}-{Guid.NewGuid():N}.img");
        Initial = new byte[bytes];
        new Random(seed).NextBytes(Initial);
        File.WriteAllBytes(Path, Initial);
    }

    public string Path { get; }

    public byte[] Initial { get; }

    /// <summary>
    /// The file's bytes as the kernel has them, read with plain open(2) and
    /// read(2): .NET's File APIs take a shared flock of their own, which the
    /// device's exclusive lock rightly refuses.
    /// </summary>
    public byte[] ReadBack() => ReadFile(Path);

    public static unsafe byte[] ReadFile(string path)
    {
        int fd = Interop.Open(path, Interop.O_RDONLY | Interop.O_CLOEXEC, 0);
        Assert.True(fd >= 0, $"open {path}: {Interop.LastErrno}");
        using var handle = new SafeFdHandle(fd, ownsHandle: true);
        var bytes = new List<byte>();
        byte[] buffer = new byte[65536];
        while (true)
        {
            nint n;
            fixed (byte* b = buffer) n = Interop.Read(handle, b, (nuint)buffer.Length);
            Assert.True(n >= 0, $"read {path}: {Interop.LastErrno}");
            if (n == 0) return [.. bytes];
            bytes.AddRange(buffer.AsSpan(0, (int)n).ToArray());
        }
    }

    public void Dispose()
    {
        try { File.Delete(Path); } catch (IOException) { }
    }
}
