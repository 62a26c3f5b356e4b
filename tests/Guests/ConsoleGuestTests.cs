using System.Text;
using Sharpvisor.Tests.Devices;
using Sharpvisor.Vmm.Launcher;

namespace Sharpvisor.Tests.Guests;

/// <summary>
/// vecho.c, a virtio-console driver written from spec 5.3, echoing stdin (a
/// pipe the test writes) to stdout on every engine, by interrupts and by
/// polling, with and without EVENT_IDX and indirect descriptors. The oracle
/// is the input itself: stdout must be it, byte for byte, and the guest must
/// end (status 0) only once the device has said stdin reached its end.
/// </summary>
public class ConsoleGuestTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(120);

    public static TheoryData<string, string> EchoCases()
    {
        var data = new TheoryData<string, string>();
        foreach (string engine in new[] { "threaded", "il", "x64" })
            foreach (string build in new[] { "vecho", "vecho-poll", "vecho-plain" })
                data.Add(engine, build);
        return data;
    }

    [Theory]
    [MemberData(nameof(EchoCases))]
    public void Vecho_EchoesEveryByteOfStdin_AndEndsAtItsEnd(string engine, string guest)
    {
        GuestBinaries.RequireBuilt();
        GuestBinaries.RequireEngine(engine);
        // More than the device reads ahead (64 KiB), so its reader waits for
        // room, and every byte value, so nothing is taken for text.
        var input = new byte[100_000];
        new Random(3).NextBytes(input);
        using var run = new ConsoleRun("run", GuestBinaries.Guest(guest), "--engine", engine, "--device", "console", "--timeout", "120");
        run.Write(input);
        run.CloseInput();
        (int status, string stderr) = run.Finish();
        Assert.True(status == 0, $"exit {status}\n{stderr}");
        Assert.Equal(input, run.Output.Bytes());
    }

    [Fact]
    public void Vecho_WithEmptyStdin_PrintsNothingAndExits0()
    {
        GuestBinaries.RequireBuilt();
        using var run = new ConsoleRun("run", GuestBinaries.Guest("vecho"), "--device", "console", "--timeout", "120");
        run.CloseInput();
        (int status, string stderr) = run.Finish();
        Assert.True(status == 0, $"exit {status}\n{stderr}");
        Assert.Empty(run.Output.Bytes());
    }

    [Fact]
    public void AGuestWaitingForInput_WhileStdinIsOpen_IsNotADeadlock()
    {
        // The guest has echoed the first part and waits in LHCALL_HALT with
        // nothing in flight: only the open stdin is a source of interrupts.
        GuestBinaries.RequireBuilt();
        using var run = new ConsoleRun("run", GuestBinaries.Guest("vecho"), "--device", "console", "--timeout", "120");
        run.Write("first\n"u8.ToArray());
        Assert.True(run.Output.WaitFor(6, Bound), $"no echo within {Bound.TotalSeconds} s: '{Encoding.UTF8.GetString(run.Output.Bytes())}'");
        run.Write("second\n"u8.ToArray());
        run.CloseInput();
        (int status, string stderr) = run.Finish();
        Assert.True(status == 0, $"exit {status}\n{stderr}");
        Assert.Equal("first\nsecond\n", Encoding.UTF8.GetString(run.Output.Bytes()));
    }

    [Fact]
    public void AGuestWaitingOnAConsoleWhoseStdinHasEnded_IsADeadlock()
    {
        // hlt; jmp back, with stdin at its end and nothing asked of the device.
        string image = Path.Combine(Path.GetTempPath(), $"sv-idle-{Guid.NewGuid():n}.bin");
        File.WriteAllBytes(image, [0xF4, 0xEB, 0xFD]);
        try
        {
            using var run = new ConsoleRun("run", image, "--flat", "0x100000", "--device", "console", "--timeout", "120");
            run.CloseInput();
            (int status, string stderr) = run.Finish();
            Assert.True(status == 81, $"exit {status}\n{stderr}");
        }
        finally
        {
            File.Delete(image);
        }
    }

    /// <summary><c>sharpvisor</c> in process on its own thread, stdin a pipe the test writes, stdout watched.</summary>
    private sealed class ConsoleRun : IDisposable
    {
        private readonly InputPipe _stdin = new();
        private readonly StringWriter _stderr = new() { NewLine = "\n" };
        private readonly Task<int> _run;

        public ConsoleRun(params string[] args)
        {
            _run = Task.Factory.StartNew(() => Cli.Execute(args, Output, _stderr, stdin: _stdin.ReadEnd), TaskCreationOptions.LongRunning);
        }

        public WatchedStream Output { get; } = new();

        public void Write(byte[] bytes) => _stdin.Write(bytes);

        public void CloseInput() => _stdin.Close();

        public (int Status, string Stderr) Finish()
        {
            Assert.True(_run.Wait(Bound), $"the VM did not stop within {Bound.TotalSeconds} s");
            return (_run.Result, _stderr.ToString());
        }

        public void Dispose()
        {
            CloseInput();
            if (_run.Wait(Bound)) _stdin.Dispose(); // never close a descriptor a running VM may still read
        }
    }

    /// <summary>A stream that keeps what is written and lets a test wait for a length of it.</summary>
    internal sealed class WatchedStream : Stream
    {
        private readonly MemoryStream _bytes = new();

        public byte[] Bytes()
        {
            lock (_bytes) return _bytes.ToArray();
        }

        /// <summary>Waits until at least <paramref name="length"/> bytes were written, up to <paramref name="bound"/>.</summary>
        public bool WaitFor(int length, TimeSpan bound)
        {
            DateTime end = DateTime.UtcNow + bound;
            lock (_bytes)
            {
                while (_bytes.Length < length)
                {
                    TimeSpan left = end - DateTime.UtcNow;
                    if (left <= TimeSpan.Zero || !Monitor.Wait(_bytes, left)) return _bytes.Length >= length;
                }
                return true;
            }
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            lock (_bytes)
            {
                _bytes.Write(buffer);
                Monitor.PulseAll(_bytes);
            }
        }

        public override void Flush() { }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => Bytes().Length;
        public override long Position { get => Length; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
