using System.Globalization;

namespace Sharpvisor.Vmm.Launcher;

/// <summary>
/// The one rule every number on the command line follows (each option's N,
/// ADDR, SIZE, VALUE, fd:N), stated in <see cref="Rule"/> for --help: decimal
/// without leading zeros, or hex after <c>0x</c> or <c>0X</c>; no sign, no
/// spaces, no other base. A leading zero is refused rather than read as
/// decimal, so that a C habit's <c>010</c> is an error and never quietly 10.
/// </summary>
public static class Numbers
{
    /// <summary>The rule in words, as --help prints it.</summary>
    public const string Rule =
        "Numbers: decimal without leading zeros, or hex after 0x or 0X (16 or 0x10); no sign, no spaces, no octal. SECONDS may have a fraction (0.5).";

    /// <summary>A 64-bit number by <see cref="Rule"/>.</summary>
    public static bool TryParse(string text, out ulong value)
    {
        value = 0;
        if (text.Length > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X'))
            return IsAscii(text.AsSpan(2), hex: true)
                && ulong.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
        return text.Length > 0 && IsAscii(text, hex: false) && (text[0] != '0' || text.Length == 1)
            && ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }

    /// <summary>A 32-bit number by <see cref="Rule"/>.</summary>
    public static bool TryParse(string text, out uint value)
    {
        bool ok = TryParse(text, out ulong wide) && wide <= uint.MaxValue;
        value = ok ? (uint)wide : 0;
        return ok;
    }

    /// <summary>A number by <see cref="Rule"/> in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public static bool TryParse(string text, long min, long max, out long value)
    {
        bool ok = TryParse(text, out ulong wide) && wide <= long.MaxValue && (long)wide >= min && (long)wide <= max;
        value = ok ? (long)wide : 0;
        return ok;
    }

    /// <summary>Seconds: decimal digits with an optional fraction and exponent (0.5, 1e3); no sign, no spaces, no hex.</summary>
    public static bool TryParseSeconds(string text, out double seconds)
    {
        seconds = 0;
        return text.Length > 0 && (char.IsAsciiDigit(text[0]) || text[0] == '.')
            && double.TryParse(text, NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent, CultureInfo.InvariantCulture, out seconds)
            && double.IsFinite(seconds);
    }

    private static bool IsAscii(ReadOnlySpan<char> digits, bool hex)
    {
        foreach (char c in digits)
            if (!(hex ? char.IsAsciiHexDigit(c) : char.IsAsciiDigit(c)))
                return false;
        return true;
    }
}
