using Microsoft.Win32.SafeHandles;
using Sharpvisor.Native;

namespace Sharpvisor.Tests.Devices;

/// <summary>A pipe standing in for stdin: the test writes one end, a console reads the other.</summary>
internal sealed class InputPipe : IDisposable
{
    private SafeFdHandle? _write;

    public InputPipe() => (ReadEnd, _write) = SafeFdHandle.CreatePipe();

    /// <summary>The end a console device reads; the pipe closes it on Dispose.</summary>
    public SafeFdHandle ReadEnd { get; }

    /// <summary>Writes all of <paramref name="bytes"/>, blocking while the pipe is full, as a shell's writer would.</summary>
    public void Write(byte[] bytes)
    {
        using var stream = new FileStream(new SafeFileHandle(_write!.Fd, ownsHandle: false), FileAccess.Write, 1);
        stream.Write(bytes);
    }

    /// <summary>Closes the write end: the reader sees end of file once it has read the rest.</summary>
    public void Close()
    {
        _write?.Dispose();
        _write = null;
    }

    /// <summary>Closes both ends; call only once nothing reads the pipe any more.</summary>
    public void Dispose()
    {
        Close();
        ReadEnd.Dispose();
    }
}
