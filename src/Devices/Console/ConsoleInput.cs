using Sharpvisor.Devices.Virtio.Queues;
using Sharpvisor.Native;

namespace Sharpvisor.Devices.Console;

/// <summary>
/// The console's input: a thread of its own reads the descriptor (stdin) as
/// bytes arrive, into a bounded buffer, and the receive queue's thread hands
/// them to the guest. When the buffer is full the reader stops reading, so a
/// guest that takes no input holds the writer up (a full pipe) rather than
/// our memory.
/// </summary>
/// <remarks>
/// The descriptor is read as it is: a TTY in the mode it is in (the kernel's
/// line discipline, if any, is the only editing), a pipe or a file byte for
/// byte. End of file, or a read error (reported once), ends the input.
/// </remarks>
internal sealed class ConsoleInput : IDisposable
{
    /// <summary>Bytes read ahead of the guest at most.</summary>
    public const int Capacity = 64 * 1024;

    private const int ReadSize = 4096;

    private readonly SafeFdHandle _fd;
    private readonly byte[] _ring = new byte[Capacity];
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _room = new(0);
    private readonly EventFd _stop = EventFd.Create(EventFdFlags.NonBlocking);
    private Thread? _thread;
    private volatile bool _stopping;

    // Under _lock.
    private int _head;
    private int _count;
    private bool _waitingForRoom;
    private long _taken;

    private volatile bool _ended;

    public ConsoleInput(SafeFdHandle fd) => _fd = fd;

    /// <summary>Signalled when bytes arrive and when the input ends: the receive queue's thread waits on it.</summary>
    public EventFd Arrived { get; } = EventFd.Create(EventFdFlags.NonBlocking);

    /// <summary>Nothing more will be read: end of file, a read error or a stop.</summary>
    public bool Ended => _ended;

    /// <summary>Bytes handed to the guest so far.</summary>
    public long Taken
    {
        get { lock (_lock) return _taken; }
    }

    /// <summary>Bytes read and not yet handed to the guest.</summary>
    public int Buffered
    {
        get { lock (_lock) return _count; }
    }

    /// <summary>Starts the reader thread, named <paramref name="name"/>; <paramref name="report"/> gets a read error's line.</summary>
    public void Start(string name, Action<string> report)
    {
        if (_thread != null) return;
        _thread = new Thread(() => Read(name, report)) { Name = name, IsBackground = true };
        _thread.Start();
    }

    private void Read(string name, Action<string> report)
    {
        var buffer = new byte[ReadSize];
        EventFdPollSet set;
        try
        {
            set = new EventFdPollSet([_fd, _stop.Handle]);
        }
        catch (Exception e)
        {
            report($"{name}: cannot wait for input: {e.Message}; the console gets no input");
            End();
            return;
        }
        using (set)
        {
            while (!_stopping)
            {
                int room;
                lock (_lock)
                {
                    room = Capacity - _count;
                    _waitingForRoom = room == 0;
                }
                if (room == 0)
                {
                    _room.Wait();
                    continue;
                }
                ulong ready;
                try
                {
                    ready = set.Wait(-1);
                }
                catch (ErrnoException e)
                {
                    report($"{name}: waiting for input failed: {e.Message}; the console gets no more input");
                    break;
                }
                if ((ready & 2) != 0) break;
                if ((ready & 1) == 0) continue;
                int n = _fd.Read(buffer.AsSpan(0, Math.Min(room, ReadSize)), out Errno error);
                if (n < 0)
                {
                    if (error == Errno.EAGAIN) continue; // a non-blocking descriptor that poll raced with
                    report($"{name}: reading input failed: {error.Describe()}; the console gets no more input");
                    break;
                }
                if (n == 0) break; // end of file
                Append(buffer.AsSpan(0, n));
                Arrived.TrySignal();
            }
        }
        End();
    }

    private void End()
    {
        _ended = true;
        Arrived.TrySignal();
    }

    private void Append(ReadOnlySpan<byte> bytes)
    {
        lock (_lock)
        {
            int tail = (_head + _count) % Capacity;
            int first = Math.Min(bytes.Length, Capacity - tail);
            bytes[..first].CopyTo(_ring.AsSpan(tail));
            bytes[first..].CopyTo(_ring);
            _count += bytes.Length;
        }
    }

    /// <summary>
    /// Moves as many buffered bytes as fit into the chain's writable buffers
    /// (receive queue thread); returns how many, 0 if none are buffered.
    /// </summary>
    public uint TakeInto(DescriptorChain chain)
    {
        bool wake;
        int n;
        lock (_lock)
        {
            n = (int)Math.Min((uint)_count, chain.WritableLength);
            int first = Math.Min(n, Capacity - _head);
            chain.WriteToWritable(0, _ring.AsSpan(_head, first));
            if (n > first) chain.WriteToWritable((uint)first, _ring.AsSpan(0, n - first));
            _head = (_head + n) % Capacity;
            _count -= n;
            _taken += n;
            wake = _waitingForRoom && n > 0;
            if (wake) _waitingForRoom = false;
        }
        if (wake) _room.Release();
        return (uint)n;
    }

    /// <summary>Stops the reader and waits for it.</summary>
    public void Dispose()
    {
        _stopping = true;
        if (_thread != null)
        {
            _stop.Signal();
            _room.Release();
            _thread.Join();
            _thread = null;
        }
        _stop.Dispose();
        Arrived.Dispose();
        _room.Dispose();
    }
}
