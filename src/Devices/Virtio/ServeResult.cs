namespace Sharpvisor.Devices.Virtio;

/// <summary>How a device's <see cref="VirtioDevice.Serve"/> ended.</summary>
public enum ServeOutcome
{
    /// <summary>Served: the chain goes to the used ring with <see cref="ServeResult.Written"/>.</summary>
    Completed,
    /// <summary>The chain breaks the device's rules: DEVICE_NEEDS_RESET.</summary>
    Malformed,
    /// <summary>Not now (a receive queue with nothing to receive): the chain stays in the available ring.</summary>
    Deferred,
}

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
