namespace Sharpvisor.Devices.Virtio;

/// <summary>A request's result: the outcome, the bytes written and, for a malformed chain, why.</summary>
public readonly record struct ServeResult(ServeOutcome Outcome, uint Written, string? Fault)
{
    /// <summary>
    /// Served, having written the first <paramref name="written"/> writable
    /// bytes of the chain (the used entry's len; the queue thread tells the VM
    /// about exactly those bytes before publishing).
    /// </summary>
    public static ServeResult Completed(uint written) => new(ServeOutcome.Completed, written, null);

    public static ServeResult Malformed(string fault) => new(ServeOutcome.Malformed, 0, fault);

    public static ServeResult Deferred => new(ServeOutcome.Deferred, 0, null);
}
