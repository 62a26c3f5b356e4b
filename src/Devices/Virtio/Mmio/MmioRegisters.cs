namespace Sharpvisor.Devices.Virtio.Mmio;

/// <summary>The MMIO transport's registers below the configuration space (spec 4.2.2, register layout version 2).</summary>
public enum MmioRegister : uint
{
    MagicValue = 0x000,
    Version = 0x004,
    DeviceId = 0x008,
    VendorId = 0x00c,
    DeviceFeatures = 0x010,
    DeviceFeaturesSel = 0x014,
    DriverFeatures = 0x020,
    DriverFeaturesSel = 0x024,
    QueueSel = 0x030,
    QueueNumMax = 0x034,
    QueueNum = 0x038,
    QueueReady = 0x044,
    QueueNotify = 0x050,
    InterruptStatus = 0x060,
    InterruptAck = 0x064,
    Status = 0x070,
    QueueDescLow = 0x080,
    QueueDescHigh = 0x084,
    QueueDriverLow = 0x090,
    QueueDriverHigh = 0x094,
    QueueDeviceLow = 0x0a0,
    QueueDeviceHigh = 0x0a4,
    ShmSel = 0x0ac,
    ShmLenLow = 0x0b0,
    ShmLenHigh = 0x0b4,
    ShmBaseLow = 0x0b8,
    ShmBaseHigh = 0x0bc,
    QueueReset = 0x0c0,
    ConfigGeneration = 0x0fc,
}

[Flags]
public enum RegisterAccess
{
    None = 0,
    Read = 1,
    Write = 2,
    ReadWrite = Read | Write,
}

/// <summary>One register's facts: where it is, its name in the spec, and which way it goes.</summary>
public readonly record struct MmioRegisterInfo(MmioRegister Register, string Name, RegisterAccess Access)
{
    public uint Offset => (uint)Register;
}

/// <summary>
/// The register table, and what an access must look like. The transport
/// decides what a register does; this table decides whether an access reaches
/// it at all (an offset not listed is reserved: reads 0, writes ignored).
/// </summary>
public static class MmioRegisters
{
    /// <summary>Where the device's configuration space starts.</summary>
    public const uint ConfigOffset = 0x100;

    /// <summary>The window each device decodes (the ABI's 4 KiB).</summary>
    public const uint WindowSize = 0x1000;

    public const uint MagicValue = 0x74726976; // "virt", little-endian
    public const uint Version = 2;
    public const uint VendorId = 0x56535653;   // "SVSV"

    public static readonly IReadOnlyList<MmioRegisterInfo> All =
    [
        new(MmioRegister.MagicValue, "MagicValue", RegisterAccess.Read),
        new(MmioRegister.Version, "Version", RegisterAccess.Read),
        new(MmioRegister.DeviceId, "DeviceID", RegisterAccess.Read),
        new(MmioRegister.VendorId, "VendorID", RegisterAccess.Read),
        new(MmioRegister.DeviceFeatures, "DeviceFeatures", RegisterAccess.Read),
        new(MmioRegister.DeviceFeaturesSel, "DeviceFeaturesSel", RegisterAccess.Write),
        new(MmioRegister.DriverFeatures, "DriverFeatures", RegisterAccess.Write),
        new(MmioRegister.DriverFeaturesSel, "DriverFeaturesSel", RegisterAccess.Write),
        new(MmioRegister.QueueSel, "QueueSel", RegisterAccess.Write),
        new(MmioRegister.QueueNumMax, "QueueNumMax", RegisterAccess.Read),
        new(MmioRegister.QueueNum, "QueueNum", RegisterAccess.Write),
        new(MmioRegister.QueueReady, "QueueReady", RegisterAccess.ReadWrite),
        new(MmioRegister.QueueNotify, "QueueNotify", RegisterAccess.Write),
        new(MmioRegister.InterruptStatus, "InterruptStatus", RegisterAccess.Read),
        new(MmioRegister.InterruptAck, "InterruptACK", RegisterAccess.Write),
        new(MmioRegister.Status, "Status", RegisterAccess.ReadWrite),
        new(MmioRegister.QueueDescLow, "QueueDescLow", RegisterAccess.Write),
        new(MmioRegister.QueueDescHigh, "QueueDescHigh", RegisterAccess.Write),
        new(MmioRegister.QueueDriverLow, "QueueDriverLow", RegisterAccess.Write),
        new(MmioRegister.QueueDriverHigh, "QueueDriverHigh", RegisterAccess.Write),
        new(MmioRegister.QueueDeviceLow, "QueueDeviceLow", RegisterAccess.Write),
        new(MmioRegister.QueueDeviceHigh, "QueueDeviceHigh", RegisterAccess.Write),
        new(MmioRegister.ShmSel, "SHMSel", RegisterAccess.Write),
        new(MmioRegister.ShmLenLow, "SHMLenLow", RegisterAccess.Read),
        new(MmioRegister.ShmLenHigh, "SHMLenHigh", RegisterAccess.Read),
        new(MmioRegister.ShmBaseLow, "SHMBaseLow", RegisterAccess.Read),
        new(MmioRegister.ShmBaseHigh, "SHMBaseHigh", RegisterAccess.Read),
        new(MmioRegister.QueueReset, "QueueReset", RegisterAccess.ReadWrite),
        new(MmioRegister.ConfigGeneration, "ConfigGeneration", RegisterAccess.Read),
    ];

    // Indexed by offset / 4 over the 64 words below the configuration space.
    private static readonly RegisterAccess[] s_access = BuildAccess();

    private static RegisterAccess[] BuildAccess()
    {
        var access = new RegisterAccess[ConfigOffset / 4];
        foreach (MmioRegisterInfo r in All) access[r.Offset / 4] = r.Access;
        return access;
    }

    /// <summary>How the register at <paramref name="offset"/> (aligned, below the configuration space) may be accessed; None if reserved.</summary>
    public static RegisterAccess AccessAt(uint offset) => offset < ConfigOffset ? s_access[offset / 4] : RegisterAccess.None;

    /// <summary>
    /// Null if an access of <paramref name="size"/> bytes at
    /// <paramref name="offset"/> is well formed, else why not: registers take
    /// aligned 32-bit accesses, the configuration space aligned 8-, 16- and
    /// 32-bit ones, and nothing lies past the window.
    /// </summary>
    public static string? CheckAccess(uint offset, int size)
    {
        if (size is not (1 or 2 or 4))
            return $"a {size}-byte access is not 1, 2 or 4 bytes";
        if (offset >= WindowSize || offset > WindowSize - (uint)size)
            return $"offset 0x{offset:x} lies outside the 0x{WindowSize:x}-byte window";
        if (offset < ConfigOffset && size != 4)
            return $"a {size}-byte access at 0x{offset:x}: registers below 0x{ConfigOffset:x} take 32-bit accesses";
        if (offset % (uint)size != 0)
            return $"a {size}-byte access at 0x{offset:x} is not {size}-byte aligned";
        return null;
    }
}
