using Sharpvisor.Devices.Virtio;

namespace Sharpvisor.Devices.Console;

/// <summary>The console's feature bits this device offers, its queues and its configuration layout (spec 5.3.2 to 5.3.4).</summary>
public static class ConsoleFeatures
{
    /// <summary>Control queues and port messages: how the device tells the driver that stdin reached its end.</summary>
    public static readonly FeatureBit MultiPort = new(1, "VIRTIO_CONSOLE_F_MULTIPORT");

    public static readonly IReadOnlyList<FeatureBit> Offered = [MultiPort];

    /// <summary>The queues: port 0's pair, then the control pair (MULTIPORT only).</summary>
    public const int ReceiveQueue = 0, TransmitQueue = 1, ControlReceiveQueue = 2, ControlTransmitQueue = 3;

    /// <summary>The configuration: le16 cols and rows (no VIRTIO_CONSOLE_F_SIZE: both 0), le32 max_nr_ports, le32 emerg_wr.</summary>
    public const int ConfigMaxPorts = 4, ConfigSize = 12;

    /// <summary>One port, port 0: stdin and stdout.</summary>
    public const uint Ports = 1;
}
