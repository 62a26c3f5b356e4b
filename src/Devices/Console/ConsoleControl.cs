using System.Buffers.Binary;

namespace Sharpvisor.Devices.Console;

/// <summary>The events of the console's control messages (spec 5.3.6.2), the direction in each comment.</summary>
public enum ConsoleEvent : ushort
{
    /// <summary>Driver to device: ready for control messages (value 1), or failed (0).</summary>
    DeviceReady = 0,
    /// <summary>Device to driver: a new port <c>id</c>.</summary>
    DeviceAdd = 1,
    /// <summary>Device to driver: port <c>id</c> is gone.</summary>
    DeviceRemove = 2,
    /// <summary>Driver to device: port <c>id</c> is set up (value 1), or failed (0).</summary>
    PortReady = 3,
    /// <summary>Device to driver: port <c>id</c> is a console; the driver answers PORT_OPEN 1.</summary>
    ConsolePort = 4,
    /// <summary>Device to driver: the console's size changed (not sent: no VIRTIO_CONSOLE_F_SIZE).</summary>
    Resize = 5,
    /// <summary>Both ways: that side of port <c>id</c> is open (value 1) or closed (0).</summary>
    PortOpen = 6,
    /// <summary>Device to driver: the port's name follows (not sent).</summary>
    PortName = 7,
}

/// <summary>One control message, <c>struct virtio_console_control</c>: le32 id, le16 event, le16 value.</summary>
public readonly record struct ConsoleControl(uint Port, ConsoleEvent Event, ushort Value)
{
    public const int Size = 8;

    public void WriteTo(Span<byte> bytes)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, Port);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes[4..], (ushort)Event);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes[6..], Value);
    }

    public static ConsoleControl ReadFrom(ReadOnlySpan<byte> bytes) => new(
        BinaryPrimitives.ReadUInt32LittleEndian(bytes),
        (ConsoleEvent)BinaryPrimitives.ReadUInt16LittleEndian(bytes[4..]),
        BinaryPrimitives.ReadUInt16LittleEndian(bytes[6..]));

    public override string ToString() => $"{Event} port {Port} value {Value}";
}
