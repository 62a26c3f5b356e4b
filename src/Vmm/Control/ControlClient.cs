using System.Text;
using Sharpvisor.Native;

namespace Sharpvisor.Vmm.Control;

/// <summary>
/// <c>sharpvisor control PATH REQUEST... [--fd N]</c>: one request to a
/// running VM's control socket (docs/control-socket.md), for a shell user.
/// Prints the reply line; exits 0 on <c>ok</c> or a list, 1 on <c>error ...</c>,
/// 64 on a bad request or descriptor, 69 if the socket cannot be reached.
/// </summary>
public static class ControlClient
{
    /// <summary>How long to wait for the reply; the server answers at once, so this only bounds a wedged server.</summary>
    private static readonly TimeSpan ReplyTimeout = TimeSpan.FromSeconds(30);

    public static int Execute(string path, IReadOnlyList<string> words, int? fd, TextWriter output, TextWriter stderr)
    {
        string line = string.Join(' ', words);
        if (line.Length == 0 || line.Any(c => c is < ' ' or > '~'))
            return Fail(stderr, ExitStatus.Usage, "control: REQUEST must be printable ASCII, such as 'list' or 'attach notify 0x10' (see sharpvisor --help)");
        if (line.Length + 1 > ControlServer.MaxLineLength)
            return Fail(stderr, ExitStatus.Usage, $"control: a request has at most {ControlServer.MaxLineLength - 1} characters");
        if (fd is int n && !File.Exists($"/proc/self/fd/{n}"))
            return Fail(stderr, ExitStatus.Usage, $"control: --fd {n}: descriptor {n} is not open");

        UnixSocket socket;
        try
        {
            socket = UnixSocket.Connect(path);
        }
        catch (ErrnoException e)
        {
            return Fail(stderr, ExitStatus.Unavailable, $"control {path}: {e.Message}");
        }
        using (socket)
        using (var handle = fd is int given ? new SafeFdHandle(given, ownsHandle: false) : null)
        {
            try
            {
                socket.SendWithDescriptors(Encoding.ASCII.GetBytes(line + "\n"), handle == null ? [] : [handle]);
                var reply = new List<byte>();
                var buffer = new byte[512];
                while (reply.IndexOf((byte)'\n') < 0)
                {
                    if (!socket.WaitReadable(ReplyTimeout))
                        return Fail(stderr, ExitStatus.Unavailable, $"control {path}: no reply within {ReplyTimeout.TotalSeconds:0} s");
                    int got = socket.ReceiveWithDescriptors(buffer, out SafeFdHandle[] fds);
                    foreach (SafeFdHandle f in fds) f.Dispose();
                    if (got == 0)
                        return Fail(stderr, ExitStatus.Unavailable, $"control {path}: the VM closed the connection without a reply");
                    reply.AddRange(buffer.AsSpan(0, got));
                }
                string text = Encoding.ASCII.GetString([.. reply.Take(reply.IndexOf((byte)'\n'))]);
                output.WriteLine(text);
                return text.StartsWith("error", StringComparison.Ordinal) ? 1 : 0;
            }
            catch (ErrnoException e)
            {
                return Fail(stderr, ExitStatus.Unavailable, $"control {path}: {e.Message}");
            }
        }
    }

    private static int Fail(TextWriter stderr, ExitStatus status, string message)
    {
        stderr.WriteLine($"sharpvisor: {message}");
        return (int)status;
    }
}
