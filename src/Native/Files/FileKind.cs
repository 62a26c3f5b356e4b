namespace Sharpvisor.Native;

/// <summary>What a path leads to, from stat(2)'s file type.</summary>
public enum FileKind
{
    /// <summary>Nothing can be found there (or stat failed for another reason, such as a search permission).</summary>
    Missing,
    Regular,
    Directory,
    Fifo,
    CharacterDevice,
    BlockDevice,
    Socket,
    Other,
}

/// <summary>
/// Looks at a path without opening it: opening a FIFO for reading waits for
/// a writer, and a device can be endless, so a caller that wants a plain
/// file asks first.
/// </summary>
public static class FileKinds
{
    /// <summary>The kind of what <paramref name="path"/> leads to, symlinks followed.</summary>
    public static unsafe FileKind Of(string path)
    {
        if (path.Length == 0 || path.Contains('\0')) return FileKind.Missing;
        Interop.Stat st;
        if (Interop.StatPath(path, &st) != 0) return FileKind.Missing;
        return (st.Mode & Interop.S_IFMT) switch
        {
            Interop.S_IFREG => FileKind.Regular,
            Interop.S_IFDIR => FileKind.Directory,
            Interop.S_IFIFO => FileKind.Fifo,
            Interop.S_IFCHR => FileKind.CharacterDevice,
            Interop.S_IFBLK => FileKind.BlockDevice,
            Interop.S_IFSOCK => FileKind.Socket,
            _ => FileKind.Other,
        };
    }

    /// <summary>The kind in words, for messages: "a FIFO", "a character device".</summary>
    public static string Describe(FileKind kind) => kind switch
    {
        FileKind.Regular => "a regular file",
        FileKind.Directory => "a directory",
        FileKind.Fifo => "a FIFO",
        FileKind.CharacterDevice => "a character device",
        FileKind.BlockDevice => "a block device",
        FileKind.Socket => "a socket",
        FileKind.Missing => "missing",
        _ => "of an unknown kind",
    };
}
