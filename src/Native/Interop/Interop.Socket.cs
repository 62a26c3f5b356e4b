using System.Runtime.InteropServices;

namespace Sharpvisor.Native;

internal static partial class Interop
{
    // <sys/socket.h>, <sys/un.h>, x86-64 Linux
    internal const int AF_UNIX = 1;
    internal const int SOCK_STREAM = 1;
    internal const int SOCK_CLOEXEC = 0x80000;   // == O_CLOEXEC
    internal const int SOL_SOCKET = 1;
    internal const int SO_PEERCRED = 17;
    internal const int SCM_RIGHTS = 1;
    internal const int MSG_CTRUNC = 0x8;
    internal const int MSG_TRUNC = 0x20;
    internal const int MSG_NOSIGNAL = 0x4000;
    internal const int MSG_CMSG_CLOEXEC = 0x40000000;

    /// <summary>The most descriptors one SCM_RIGHTS message may carry (the kernel's SCM_MAX_FD).</summary>
    internal const int SCM_MAX_FD = 253;

    /// <summary>sun_path's size: a path of at most 107 bytes, then its NUL.</summary>
    internal const int SunPathSize = 108;

    /// <summary>struct sockaddr_un: sa_family_t (16 bits), then sun_path; 110 bytes.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct SockaddrUn
    {
        public ushort Family;
        public fixed byte Path[SunPathSize];
    }

    /// <summary>struct iovec.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct Iovec
    {
        public void* Base;
        public nuint Length;
    }

    /// <summary>
    /// struct msghdr, 56 bytes on x86-64: the 32-bit msg_namelen and msg_flags
    /// are each followed by 4 bytes of padding, which natural alignment gives.
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct Msghdr
    {
        public void* Name;
        public uint NameLength;
        public Iovec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    /// <summary>
    /// struct cmsghdr, 16 bytes on x86-64: cmsg_len is a size_t, and the data
    /// follows at CMSG_ALIGN(sizeof(cmsghdr)), which is 16 too.
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct Cmsghdr
    {
        public nuint Length;
        public int Level;
        public int Type;
    }

    /// <summary>struct ucred, as SO_PEERCRED fills it.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct Ucred
    {
        public int Pid;
        public uint Uid;
        public uint Gid;
    }

    /// <summary>CMSG_ALIGN: control messages are aligned to sizeof(size_t), 8 bytes.</summary>
    internal static int CmsgAlign(int length) => (length + sizeof(ulong) - 1) & ~(sizeof(ulong) - 1);

    /// <summary>CMSG_LEN: what cmsg_len holds for <paramref name="dataLength"/> bytes of data (header, no tail padding).</summary>
    internal static unsafe int CmsgLen(int dataLength) => CmsgAlign(sizeof(Cmsghdr)) + dataLength;

    /// <summary>CMSG_SPACE: the room one control message with <paramref name="dataLength"/> bytes of data takes in the buffer.</summary>
    internal static unsafe int CmsgSpace(int dataLength) => CmsgAlign(sizeof(Cmsghdr)) + CmsgAlign(dataLength);

    [LibraryImport(Libc, EntryPoint = "socket", SetLastError = true)]
    internal static partial int Socket(int domain, int type, int protocol);

    [LibraryImport(Libc, EntryPoint = "connect", SetLastError = true)]
    internal static unsafe partial int Connect(SafeHandle fd, SockaddrUn* address, uint addressLength);

    [LibraryImport(Libc, EntryPoint = "bind", SetLastError = true)]
    internal static unsafe partial int Bind(SafeHandle fd, SockaddrUn* address, uint addressLength);

    [LibraryImport(Libc, EntryPoint = "listen", SetLastError = true)]
    internal static partial int Listen(SafeHandle fd, int backlog);

    [LibraryImport(Libc, EntryPoint = "accept4", SetLastError = true)]
    internal static unsafe partial int Accept4(SafeHandle fd, SockaddrUn* address, uint* addressLength, int flags);

    [LibraryImport(Libc, EntryPoint = "sendmsg", SetLastError = true)]
    internal static unsafe partial nint SendMsg(SafeHandle fd, Msghdr* message, int flags);

    [LibraryImport(Libc, EntryPoint = "recvmsg", SetLastError = true)]
    internal static unsafe partial nint RecvMsg(SafeHandle fd, Msghdr* message, int flags);

    [LibraryImport(Libc, EntryPoint = "getsockopt", SetLastError = true)]
    internal static unsafe partial int GetSockOpt(SafeHandle fd, int level, int name, void* value, uint* valueLength);
}
