using System.Runtime.InteropServices;
using System.Text;

namespace Sharpvisor.Native;

/// <summary>
/// A NULL-terminated array of NUL-terminated UTF-8 strings in native memory,
/// as execve wants argv and envp: one allocation, the pointers first and the
/// bytes after them.
/// </summary>
internal sealed unsafe class CStringArray : IDisposable
{
    private byte** _pointers;

    /// <exception cref="ArgumentException">A string holds a NUL, which the program would see as the end of it.</exception>
    internal CStringArray(IReadOnlyList<string> items, string paramName)
    {
        // One look at the caller's list: the block is sized from this copy and
        // filled from it, so a list that changes meanwhile (another thread's,
        // or one that computes its items) cannot make the fill outgrow the size.
        string[] strings = [.. items];
        nuint table = (nuint)(strings.Length + 1) * (nuint)sizeof(byte*);
        nuint total = table;
        foreach (string s in strings)
        {
            if (s.Contains('\0')) throw new ArgumentException($"holds a NUL character: \"{s.Replace("\0", "\\0")}\"", paramName);
            total += (nuint)Encoding.UTF8.GetByteCount(s) + 1;
        }
        // SAFETY: Alloc throws rather than return null. The block is the table
        // (Length + 1 pointers) then each string's UTF-8 bytes and a NUL, as
        // counted above from the same immutable strings: pointer i < Length + 1
        // lies in the table, GetBytes is bounded by the span of what is left,
        // and n + 1 <= what is left because that string's count included its NUL.
        _pointers = (byte**)NativeMemory.Alloc(total);
        byte* next = (byte*)_pointers + table;
        for (int i = 0; i < strings.Length; i++)
        {
            _pointers[i] = next;
            int n = Encoding.UTF8.GetBytes(strings[i], new Span<byte>(next, (int)(total - (nuint)(next - (byte*)_pointers))));
            next[n] = 0;
            next += n + 1;
        }
        _pointers[strings.Length] = null;
    }

    internal byte** Pointer => _pointers;

    public void Dispose()
    {
        // SAFETY: from Alloc, and nulled so a second Dispose frees nothing (free(NULL)).
        NativeMemory.Free(_pointers);
        _pointers = null;
    }
}
