using System.Runtime.InteropServices;

namespace Sharpvisor.Native;

internal static partial class Interop
{
    // <termios.h>, Linux x86-64: the flags RawTerminal clears, the two
    // control characters it sets, and when a change takes effect.
    internal const uint IGNBRK = 0x1, BRKINT = 0x2, PARMRK = 0x8, ISTRIP = 0x20, INLCR = 0x40, IGNCR = 0x80, ICRNL = 0x100, IXON = 0x400;
    internal const uint ECHO = 0x8, ECHONL = 0x40, ICANON = 0x2, IEXTEN = 0x8000;
    internal const int VTIME = 5, VMIN = 6;
    internal const int TCSANOW = 0;

    /// <summary>glibc's struct termios (60 bytes): four flag words, the line discipline, 32 control characters, two speeds.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct Termios
    {
        public uint IFlag, OFlag, CFlag, LFlag;
        public byte Line;
        public fixed byte Cc[32];
        public uint ISpeed, OSpeed;
    }

    /// <summary>tcgetattr(3): fails with ENOTTY on anything but a terminal.</summary>
    [LibraryImport(Libc, EntryPoint = "tcgetattr", SetLastError = true)]
    internal static unsafe partial int TcGetAttr(SafeHandle fd, Termios* termios);

    [LibraryImport(Libc, EntryPoint = "tcsetattr", SetLastError = true)]
    internal static unsafe partial int TcSetAttr(SafeHandle fd, int when, Termios* termios);
}
