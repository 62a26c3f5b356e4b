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
        nuint table = (nuint)(items.Count + 1) * (nuint)sizeof(byte*);
        nuint total = table;
        foreach (string s in items)
        {
            if (s.Contains('\0')) throw new ArgumentException($"holds a NUL character: \"{s.Replace("\0", "\\0")}\"", paramName);
            total += (nuint)Encoding.UTF8.GetByteCount(s) + 1;
        }
        _pointers = (byte**)NativeMemory.Alloc(total);
        byte* next = (byte*)_pointers + table;
        for (int i = 0; i < items.Count; i++)
        {
            _pointers[i] = next;
            int n = Encoding.UTF8.GetBytes(items[i], new Span<byte>(next, (int)(total - (nuint)(next - (byte*)_pointers))));
            next[n] = 0;
            next += n + 1;
        }
        _pointers[items.Count] = null;
    }

    internal byte** Pointer => _pointers;

    public void Dispose()
    {
        NativeMemory.Free(_pointers);
        _pointers = null;
    }
}
