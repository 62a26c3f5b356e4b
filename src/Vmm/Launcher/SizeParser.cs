namespace Sharpvisor.Vmm.Launcher;

/// <summary>Parses <c>--mem</c> sizes (and other sizes, such as bench virtio's <c>--disk-size</c>) and <c>--flat</c> addresses; errors are one line for the usage message.</summary>
public static class SizeParser
{
    /// <summary>
    /// A RAM size: a number of bytes (by <see cref="Numbers.Rule"/>), or such a number with K, M or G (powers of
    /// 1024, either case). It must be a nonzero multiple of 4 KiB (guest RAM
    /// is made of pages) and at most 3 GiB.
    /// </summary>
    public static bool TryParseMemory(string text, out ulong bytes, out string error) =>
        TryParseSize("--mem", text, Sharpvisor.Native.GuestMemory.PageSize, "4K", MachineConfig.MaxMemorySize, "the 3G a 32-bit guest can have", out bytes, out error);

    /// <summary>
    /// A size as <see cref="TryParseMemory"/> reads one, for
    /// <paramref name="option"/>: a nonzero multiple of <paramref name="unit"/>
    /// (spelt <paramref name="unitName"/> in the error) and at most
    /// <paramref name="max"/> (<paramref name="maxName"/>).
    /// </summary>
    public static bool TryParseSize(string option, string text, ulong unit, string unitName, ulong max, string maxName, out ulong bytes, out string error)
    {
        bytes = 0;
        string digits = text;
        int shift = 0;
        if (digits.Length > 0)
        {
            shift = char.ToUpperInvariant(digits[^1]) switch { 'K' => 10, 'M' => 20, 'G' => 30, _ => 0 };
            if (shift != 0) digits = digits[..^1];
        }
        if (!Numbers.TryParse(digits, out ulong value))
        {
            error = $"{option} '{text}' is not a size (a number of bytes, or with K, M or G: 64M)";
            return false;
        }
        // Anything above the maximum is refused below, so compare before
        // shifting rather than let the shift overflow into a small, valid-looking size.
        if (value > max >> shift)
        {
            error = $"{option} '{text}' is more than {maxName}";
            return false;
        }
        value <<= shift;
        if (value == 0 || value % unit != 0)
        {
            error = $"{option} '{text}' must be a nonzero multiple of {unitName}";
            return false;
        }
        bytes = value;
        error = "";
        return true;
    }

    /// <summary>A 32-bit guest-physical address, by <see cref="Numbers.Rule"/>.</summary>
    public static bool TryParseAddress(string text, out uint address, out string error)
    {
        bool ok = Numbers.TryParse(text, out address);
        error = ok ? "" : $"--flat '{text}' is not a 32-bit address (0x100000 or 1048576)";
        return ok;
    }
}
