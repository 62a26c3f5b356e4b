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
