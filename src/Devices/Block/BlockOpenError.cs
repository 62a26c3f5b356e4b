namespace Sharpvisor.Devices.Block;

/// <summary>Why a disk image could not become a block device.</summary>
public enum BlockOpenError
{
    None,
    /// <summary>The file does not exist.</summary>
    Missing,
    /// <summary>It cannot be opened as asked, is not a regular file, or another VM holds its lock.</summary>
    Unavailable,
    /// <summary>Its size is not a multiple of 512 bytes: a usage error.</summary>
    BadSize,
}

/// <summary>The exit status each error maps to (the ABI's table; sysexits.h numbers).</summary>
public static class BlockOpenErrors
{
    public static int ExitStatus(this BlockOpenError error) => error switch
    {
        BlockOpenError.None => 0,
        BlockOpenError.Missing => 66,     // EX_NOINPUT
        BlockOpenError.Unavailable => 69, // EX_UNAVAILABLE
        BlockOpenError.BadSize => 64,     // EX_USAGE
        _ => 70,
    };
}
