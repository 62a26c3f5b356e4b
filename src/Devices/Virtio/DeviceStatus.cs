namespace Sharpvisor.Devices.Virtio;

/// <summary>The device status field's bits (spec 2.1).</summary>
[Flags]
public enum DeviceStatus : uint
{
    None = 0,
    /// <summary>The guest has found the device.</summary>
    Acknowledge = 1,
    /// <summary>The guest knows how to drive it.</summary>
    Driver = 2,
    /// <summary>The driver is set up: the device may serve its queues.</summary>
    DriverOk = 4,
    /// <summary>Feature negotiation is complete (the device clears it if it refuses the driver's features).</summary>
    FeaturesOk = 8,
    /// <summary>The device met an error it cannot recover from without a reset.</summary>
    DeviceNeedsReset = 64,
    /// <summary>The driver gave up on the device.</summary>
    Failed = 128,
}
