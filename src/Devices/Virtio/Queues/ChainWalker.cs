using Sharpvisor.Native;

namespace Sharpvisor.Devices.Virtio.Queues;

/// <summary>
/// Takes one descriptor chain out of a descriptor table and checks it whole
/// (spec 2.7.5, 2.7.4.2) before a device sees any of it. Every descriptor
/// field is read once from guest RAM into a local and checked there, so a
/// guest rewriting the table meanwhile can change only what it asks for, never
/// what was checked. The walk is bounded: by the queue size in the descriptor
/// table, by the entry count in an indirect table, and by the queue size in
/// buffers overall.
/// </summary>
public static class ChainWalker
{
    /// <summary>
    /// Test only (the fuzzer's negative control): skips the check that no
    /// device-readable buffer follows a device-writable one. A check whose
    /// absence cannot reach outside RAM, so the fuzzer must notice the hole by
    /// its oracle rather than by a crash.
    /// </summary>
    internal static bool SkipOrderCheckForTests;

    // Journey: virtqueue-chain
    /// <summary>
    /// Walks the chain starting at descriptor <paramref name="head"/> into
    /// <paramref name="chain"/>. Returns <see cref="ChainFault.None"/>, or the
    /// fault with a clause describing it (for the device's report line).
    /// </summary>
    public static ChainFault Walk(GuestMemory ram, QueueLayout layout, ushort head, bool indirectNegotiated, DescriptorChain chain, out string? detail)
    {
        chain.Begin(head);
        detail = null;
        int size = layout.Size;
        int maxBuffers = Math.Min(size, chain.Capacity);
        if (head >= size)
        {
            detail = $"head index {head} is not below the queue size {size}";
            return ChainFault.HeadOutOfRange;
        }
        uint index = head;
        int steps = 0;
        while (true)
        {
            if (++steps > size)
            {
                detail = $"the chain from head {head} loops (more than {size} descriptors)";
                return ChainFault.Loop;
            }
            ulong at = layout.DescriptorTable + (ulong)index * SplitRing.DescriptorSize;
            if (!ReadDescriptor(ram, at, out ulong addr, out uint len, out ushort flags, out ushort next))
            {
                detail = $"descriptor {index} at 0x{at:x} lies outside RAM";
                return ChainFault.RingOutsideRam;
            }
            if ((flags & SplitRing.DescIndirect) != 0)
            {
                if (!indirectNegotiated)
                {
                    detail = $"descriptor {index} is indirect but VIRTIO_F_INDIRECT_DESC was not negotiated";
                    return ChainFault.IndirectNotNegotiated;
                }
                if ((flags & SplitRing.DescNext) != 0)
                {
                    detail = $"descriptor {index} has both INDIRECT and NEXT";
                    return ChainFault.IndirectWithNext;
                }
                // The WRITE flag of the descriptor naming a table is ignored (spec 2.7.5.3.2).
                return WalkIndirect(ram, index, addr, len, maxBuffers, chain, out detail);
            }
            ChainFault f = AddBuffer(ram, false, index, index, addr, len, flags, maxBuffers, chain, out detail);
            if (f != ChainFault.None) return f;
            if ((flags & SplitRing.DescNext) == 0) return ChainFault.None;
            if (next >= size)
            {
                detail = $"descriptor {index}'s next index {next} is not below the queue size {size}";
                return ChainFault.NextOutOfRange;
            }
            index = next;
        }
    }

    private static ChainFault WalkIndirect(GuestMemory ram, uint owner, ulong table, uint length, int maxBuffers, DescriptorChain chain, out string? detail)
    {
        detail = null;
        if (length == 0 || length % SplitRing.DescriptorSize != 0)
        {
            detail = $"descriptor {owner}'s indirect table length {length} is not a nonzero multiple of {SplitRing.DescriptorSize}";
            return ChainFault.IndirectLength;
        }
        if (!ram.Contains(table, length))
        {
            detail = $"descriptor {owner}'s indirect table at 0x{table:x} ({length} bytes) lies outside RAM (0x{ram.Size:x} bytes)";
            return ChainFault.IndirectOutsideRam;
        }
        uint count = length / SplitRing.DescriptorSize;
        uint index = 0;
        uint steps = 0;
        while (true)
        {
            if (++steps > count)
            {
                detail = $"the indirect chain of descriptor {owner} loops (more than {count} entries)";
                return ChainFault.Loop;
            }
            ulong at = table + (ulong)index * SplitRing.DescriptorSize;
            if (!ReadDescriptor(ram, at, out ulong addr, out uint len, out ushort flags, out ushort next))
            {
                detail = $"indirect entry {index} at 0x{at:x} lies outside RAM";
                return ChainFault.IndirectOutsideRam;
            }
            if ((flags & SplitRing.DescIndirect) != 0)
            {
                detail = $"indirect entry {index} of descriptor {owner} is itself indirect";
                return ChainFault.NestedIndirect;
            }
            ChainFault f = AddBuffer(ram, true, owner, index, addr, len, flags, maxBuffers, chain, out detail);
            if (f != ChainFault.None) return f;
            if ((flags & SplitRing.DescNext) == 0) return ChainFault.None;
            if (next >= count)
            {
                detail = $"indirect entry {index} of descriptor {owner} has next {next}, past the table's {count} entries";
                return ChainFault.IndirectNextOutOfRange;
            }
            index = next;
        }
    }

    private static ChainFault AddBuffer(GuestMemory ram, bool inIndirect, uint owner, uint index, ulong addr, uint len, ushort flags, int maxBuffers, DescriptorChain chain, out string? detail)
    {
        detail = null;
        bool writable = (flags & SplitRing.DescWrite) != 0;
        if (chain.Count >= maxBuffers)
        {
            detail = $"{Describe(inIndirect, owner, index)}: the chain from head {chain.Head} has more than {maxBuffers} buffers";
            return ChainFault.TooLong;
        }
        if (!ram.Contains(addr, len))
        {
            detail = $"{Describe(inIndirect, owner, index)} at 0x{addr:x} ({len} bytes) lies outside RAM (0x{ram.Size:x} bytes)";
            return ChainFault.BufferOutsideRam;
        }
        if (!writable && chain.Count > chain.ReadableCount && !SkipOrderCheckForTests)
        {
            detail = $"{Describe(inIndirect, owner, index)} is device-readable but follows a device-writable buffer";
            return ChainFault.ReadableAfterWritable;
        }
        if ((ulong)chain.ReadableLength + chain.WritableLength + len > uint.MaxValue)
        {
            detail = $"{Describe(inIndirect, owner, index)}: the chain's lengths sum past 2^32 - 1 bytes";
            return ChainFault.LengthOverflow;
        }
        chain.Add(new BufferSegment(addr, len, writable));
        return ChainFault.None;
    }

    // Formatted only on a fault: the walk allocates nothing otherwise.
    private static string Describe(bool inIndirect, uint owner, uint index) =>
        inIndirect ? $"indirect entry {index} of descriptor {owner}" : $"descriptor {index}";

    /// <summary>Reads one descriptor's four fields, each once.</summary>
    private static bool ReadDescriptor(GuestMemory ram, ulong at, out ulong addr, out uint len, out ushort flags, out ushort next)
    {
        len = 0;
        flags = 0;
        next = 0;
        return ram.TryRead64(at + SplitRing.DescriptorAddressOffset, out addr)
            & ram.TryRead32(at + SplitRing.DescriptorLengthOffset, out len)
            & ram.TryRead16(at + SplitRing.DescriptorFlagsOffset, out flags)
            & ram.TryRead16(at + SplitRing.DescriptorNextOffset, out next);
    }
}
