using System.Buffers.Binary;
using System.Text;
using Sharpvisor.Devices.Virtio;
using Sharpvisor.Devices.Virtio.Queues;
using Sharpvisor.Native;

namespace Sharpvisor.Devices.Block;

/// <summary>
/// virtio-blk (device ID 2, spec 5.2) over a disk image file: one request
/// queue; IN, OUT, FLUSH and GET_ID; data moved by preadv/pwritev straight
/// between the file and guest RAM.
/// </summary>
/// <remarks>
/// Shapes (after the transport's checks, which already put readable buffers
/// first): every request needs a 16-byte readable header and at least one
/// writable byte, its status. IN and GET_ID must have no readable bytes past
/// the header (the device writes their data); OUT must have exactly the one
/// writable status byte (the device reads its data). Anything else is a
/// malformed chain: the device needs a reset. A well-formed request the
/// device cannot do (past the end, a write to a read-only disk, a length not
/// a multiple of 512, a host I/O error) completes with IOERR; an unknown type
/// with UNSUPP. The device always writes the whole writable part (data
/// zeroed when it fails), so the used length is the writable length.
/// </remarks>
public sealed class BlockDevice : VirtioDevice
{
    private readonly DiskFile _file;
    private readonly byte[] _config = new byte[BlockProtocol.ConfigSize];
    private readonly byte[] _id = new byte[BlockProtocol.IdBytes];

    private BlockDevice(DiskFile file, string path)
    {
        _file = file;
        Path = path;
        CapacitySectors = (ulong)file.Length / BlockProtocol.SectorSize;
        BinaryPrimitives.WriteUInt64LittleEndian(_config.AsSpan(BlockProtocol.ConfigCapacity), CapacitySectors);
        BinaryPrimitives.WriteUInt32LittleEndian(_config.AsSpan(BlockProtocol.ConfigSegMax), SegMax);
        BinaryPrimitives.WriteUInt32LittleEndian(_config.AsSpan(BlockProtocol.ConfigBlkSize), BlockProtocol.SectorSize);
        DeviceIdString(file.Device, file.Inode).CopyTo(_id);
    }

    /// <summary>Segments per request the driver may use: the queue size less the header and the status (spec 5.2.4's seg_max).</summary>
    public const uint SegMax = SplitRing.MaxSize - 2;

    public string Path { get; }

    public bool ReadOnly => _file.ReadOnly;

    public ulong CapacitySectors { get; }

    /// <summary>What GET_ID answers: "sharpvisor" and ten hex digits naming the file (device and inode), stable across runs.</summary>
    public ReadOnlySpan<byte> Id => _id;

    public override uint DeviceId => 2;

    public override string Kind => "blk";

    public override int QueueCount => 1;

    public override IReadOnlyList<FeatureBit> OwnFeatures => ReadOnly ? BlockFeatures.ReadOnlyDisk : BlockFeatures.Writable;

    protected override ReadOnlySpan<byte> ConfigSpace => _config;

    /// <summary>
    /// Opens <paramref name="path"/> as a disk (locked: exclusively, or shared
    /// when <paramref name="readOnly"/>). Null on failure, with the error (see
    /// <see cref="BlockOpenErrors.ExitStatus"/>) and a one-line message.
    /// </summary>
    public static BlockDevice? Open(string path, bool readOnly, out BlockOpenError error, out string? message)
    {
        if (!DiskFile.TryOpen(path, readOnly, out DiskFile? file, out DiskOpenFailure failure, out Errno errno))
        {
            (error, string why) = failure switch
            {
                DiskOpenFailure.Missing => (BlockOpenError.Missing, "no such file"),
                DiskOpenFailure.NotRegular => (BlockOpenError.Unavailable, "not a regular file"),
                DiskOpenFailure.Locked => (BlockOpenError.Unavailable, "locked by another process"),
                _ => (BlockOpenError.Unavailable, $"cannot open {(readOnly ? "for reading" : "for reading and writing")}: {errno.Describe()}"),
            };
            message = $"disk image '{path}': {why}";
            return null;
        }
        if (file!.Length % BlockProtocol.SectorSize != 0)
        {
            file.Dispose();
            error = BlockOpenError.BadSize;
            message = $"disk image '{path}': its size {file.Length} is not a multiple of {BlockProtocol.SectorSize}";
            return null;
        }
        error = BlockOpenError.None;
        message = null;
        return new BlockDevice(file, path);
    }

    public override ServeResult Serve(int queue, DescriptorChain chain, ulong negotiated)
    {
        uint readable = chain.ReadableLength;
        uint writable = chain.WritableLength;
        if (readable < BlockProtocol.HeaderSize || writable < 1)
            return ServeResult.Malformed($"{readable} readable and {writable} writable bytes: a request needs a {BlockProtocol.HeaderSize}-byte header and a status byte");

        // The header is copied out once; the guest may rewrite it meanwhile.
        Span<byte> header = stackalloc byte[BlockProtocol.HeaderSize];
        chain.CopyFromReadable(0, header);
        uint type = BinaryPrimitives.ReadUInt32LittleEndian(header[BlockProtocol.HeaderTypeOffset..]);
        ulong sector = BinaryPrimitives.ReadUInt64LittleEndian(header[BlockProtocol.HeaderSectorOffset..]);
        uint data = writable - 1; // bytes before the status byte
        byte status;
        switch (type)
        {
            case BlockProtocol.TypeIn:
                if (readable != BlockProtocol.HeaderSize)
                    return ServeResult.Malformed($"a read request has {readable - BlockProtocol.HeaderSize} device-readable data bytes where the device must write");
                status = Read(chain, sector, data);
                break;
            case BlockProtocol.TypeOut:
                if (writable != 1)
                    return ServeResult.Malformed($"a write request has {writable - 1} device-writable data bytes where the device must read");
                status = Write(chain, sector, readable - BlockProtocol.HeaderSize, negotiated);
                break;
            case BlockProtocol.TypeFlush:
                chain.ZeroWritable(0, data);
                status = Sync() ? BlockProtocol.StatusOk : BlockProtocol.StatusIoErr;
                break;
            case BlockProtocol.TypeGetId:
                if (readable != BlockProtocol.HeaderSize)
                    return ServeResult.Malformed($"a GET_ID request has {readable - BlockProtocol.HeaderSize} device-readable data bytes where the device must write");
                uint n = Math.Min(data, (uint)BlockProtocol.IdBytes);
                chain.WriteToWritable(0, _id.AsSpan(0, (int)n));
                chain.ZeroWritable(n, data - n);
                status = BlockProtocol.StatusOk;
                break;
            default:
                chain.ZeroWritable(0, data);
                status = BlockProtocol.StatusUnsupp;
                break;
        }
        chain.WriteToWritable(data, [status]);
        return ServeResult.Completed(writable);
    }

    private bool InRange(ulong sector, uint bytes) =>
        bytes % BlockProtocol.SectorSize == 0
        && sector <= CapacitySectors
        && bytes / BlockProtocol.SectorSize <= CapacitySectors - sector;

    private byte Read(DescriptorChain chain, ulong sector, uint bytes)
    {
        if (!InRange(sector, bytes))
        {
            chain.ZeroWritable(0, bytes);
            return BlockProtocol.StatusIoErr;
        }
        if (bytes == 0) return BlockProtocol.StatusOk;
        if (!_file.TryReadAt(chain.Vectors(writable: true, 0, bytes), (long)(sector * BlockProtocol.SectorSize), out Errno e))
        {
            Host?.Report($"{Name}: reading {bytes} bytes at sector {sector} of '{Path}' failed: {e.Describe()}");
            chain.ZeroWritable(0, bytes);
            return BlockProtocol.StatusIoErr;
        }
        return BlockProtocol.StatusOk;
    }

    private byte Write(DescriptorChain chain, ulong sector, uint bytes, ulong negotiated)
    {
        // The device must not write anything to a read-only disk (spec 5.2.6.1).
        if (ReadOnly || !InRange(sector, bytes)) return BlockProtocol.StatusIoErr;
        if (bytes != 0 && !_file.TryWriteAt(chain.Vectors(writable: false, BlockProtocol.HeaderSize, bytes), (long)(sector * BlockProtocol.SectorSize), out Errno e))
        {
            Host?.Report($"{Name}: writing {bytes} bytes at sector {sector} of '{Path}' failed: {e.Describe()}");
            return BlockProtocol.StatusIoErr;
        }
        // Without FLUSH negotiated the driver cannot ask for durability, so
        // every write is made durable before it completes (spec 5.2.6.2).
        if ((negotiated & BlockFeatures.Flush.Mask) == 0 && !Sync()) return BlockProtocol.StatusIoErr;
        return BlockProtocol.StatusOk;
    }

    private bool Sync()
    {
        if (_file.TryDataSync(out Errno e)) return true;
        Host?.Report($"{Name}: fdatasync of '{Path}' failed: {e.Describe()}");
        return false;
    }

    /// <summary>"sharpvisor" and ten hex digits of an FNV-1a hash of the file's device and inode numbers.</summary>
    internal static byte[] DeviceIdString(ulong device, ulong inode)
    {
        ulong hash = 0xcbf29ce484222325;
        Span<byte> bytes = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, device);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes[8..], inode);
        foreach (byte b in bytes) hash = (hash ^ b) * 0x100000001b3;
        string id = $"sharpvisor{hash & 0xff_ffff_ffff:x10}";
        return Encoding.ASCII.GetBytes(id);
    }

    public override void Dispose()
    {
        _file.Dispose();
        base.Dispose();
    }
}
