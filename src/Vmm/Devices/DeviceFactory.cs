using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using Sharpvisor.Devices.Block;
using Sharpvisor.Devices.Console;
using Sharpvisor.Devices.Entropy;
using Sharpvisor.Devices.Virtio;
using Sharpvisor.Native;

namespace Sharpvisor.Vmm.Devices;

/// <summary>
/// From a <c>--device</c> spec to a device model, with what may go wrong
/// opening it as an exit status: a missing image (66), one that cannot be
/// opened as asked or is locked by another VM (69), a size that is not whole
/// sectors (64).
/// </summary>
internal static class DeviceFactory
{
    /// <param name="stdin">What a console reads; it must outlive the device.</param>
    public static bool TryOpen(DeviceSpec spec, int index, SafeFdHandle stdin, [NotNullWhen(true)] out VirtioDevice? device,
        out string name, out ExitStatus status, out string error)
    {
        name = $"virtio-{spec.Name}{index.ToString(CultureInfo.InvariantCulture)}";
        status = ExitStatus.Usage;
        error = "";
        device = null;
        switch (spec.Kind)
        {
            case DeviceKind.Entropy:
                device = new EntropyDevice();
                return true;
            case DeviceKind.Console:
                device = new ConsoleDevice(stdin);
                return true;
            case DeviceKind.Block:
                BlockDevice? block = BlockDevice.Open(spec.Path!, spec.ReadOnly, out BlockOpenError why, out string? message);
                if (block != null)
                {
                    device = block;
                    return true;
                }
                status = (ExitStatus)why.ExitStatus();
                error = $"{spec}: {message}";
                return false;
            default:
                error = $"{spec}: no such device kind";
                return false;
        }
    }
}
