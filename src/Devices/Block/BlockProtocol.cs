namespace Sharpvisor.Devices.Block;

/// <summary>The block request format's facts (spec 5.2.4, 5.2.6).</summary>
public static class BlockProtocol
{
    /// <summary>Bytes per sector: capacity and a request's sector count in these, whatever blk_size says.</summary>
    public const int SectorSize = 512;

    /// <summary>struct virtio_blk_req's header: le32 type, le32 reserved, le64 sector.</summary>
    public const int HeaderSize = 16;
    public const int HeaderTypeOffset = 0;
    public const int HeaderSectorOffset = 8;

    /// <summary>The GET_ID string's length (VIRTIO_BLK_ID_BYTES).</summary>
    public const int IdBytes = 20;

    // Request types.
    public const uint TypeIn = 0;
    public const uint TypeOut = 1;
    public const uint TypeFlush = 4;
    public const uint TypeGetId = 8;

    // The status byte, the request's last writable byte.
    public const byte StatusOk = 0;
    public const byte StatusIoErr = 1;
    public const byte StatusUnsupp = 2;

    // struct virtio_blk_config offsets (spec 5.2.4).
    public const int ConfigCapacity = 0;   // le64, in 512-byte sectors
    public const int ConfigSizeMax = 8;    // le32, with VIRTIO_BLK_F_SIZE_MAX (not offered)
    public const int ConfigSegMax = 12;    // le32, with VIRTIO_BLK_F_SEG_MAX
    public const int ConfigGeometry = 16;  // le16 cylinders, u8 heads, u8 sectors (not offered)
    public const int ConfigBlkSize = 20;   // le32, with VIRTIO_BLK_F_BLK_SIZE
    public const int ConfigTopology = 24;  // 8 bytes (not offered)
    public const int ConfigWriteback = 32; // u8 (not offered)
    /// <summary>The space up to and including max_secure_erase fields' end; every field past the ones we offer reads 0.</summary>
    public const int ConfigSize = 72;
}
