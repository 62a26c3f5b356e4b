namespace Sharpvisor.Tests;

/// <summary>
/// The kernel's list of this process's open descriptors, to show that an
/// operation leaked none. Other tests run in parallel and open descriptors too,
/// so leak tests sit in the non-parallel collection.
/// </summary>
internal static class FdSnapshot
{
    internal static HashSet<int> Open() =>
        Directory.GetFiles("/proc/self/fd").Select(p => int.Parse(Path.GetFileName(p))).ToHashSet();

    internal static bool IsOpen(int fd) => File.Exists($"/proc/self/fd/{fd}");

    /// <summary>The kernel's fdinfo text for one descriptor.</summary>
    internal static string Info(int fd) => File.ReadAllText($"/proc/self/fdinfo/{fd}");

    /// <summary>The eventfd count as the kernel reports it, without reading (and so resetting) it.</summary>
    internal static ulong EventFdCount(int fd)
    {
        string line = File.ReadAllLines($"/proc/self/fdinfo/{fd}").Single(l => l.StartsWith("eventfd-count:"));
        return Convert.ToUInt64(line["eventfd-count:".Length..].Trim(), 16);
    }

    /// <summary>
    /// The kernel's id of the eventfd behind <paramref name="fd"/> (fdinfo's
    /// <c>eventfd-id</c>, the same for every duplicate), or null where the
    /// kernel does not show one.
    /// </summary>
    internal static string? EventFdId(int fd) =>
        File.ReadAllLines($"/proc/self/fdinfo/{fd}").FirstOrDefault(l => l.StartsWith("eventfd-id:"))?["eventfd-id:".Length..].Trim();

    /// <summary>
    /// This process's descriptors open on the eventfd with <paramref name="id"/>:
    /// unlike a before-and-after list of every descriptor, not upset by other
    /// threads (a finalizer, a child's watcher) opening and closing their own.
    /// </summary>
    internal static int DescriptorsOfEventFd(string id) =>
        Open().Count(fd =>
        {
            try { return EventFdId(fd) == id; }
            catch (IOException) { return false; } // closed meanwhile
        });

    /// <summary>The open-file flags (octal in fdinfo) as the kernel reports them.</summary>
    internal static int Flags(int fd)
    {
        string line = File.ReadAllLines($"/proc/self/fdinfo/{fd}").Single(l => l.StartsWith("flags:"));
        return Convert.ToInt32(line["flags:".Length..].Trim(), 8);
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class Serial
{
    public const string Name = "serial";
}
