using System.Collections;
using Sharpvisor.Native;

namespace Sharpvisor.Tests.Native;

public class CStringArrayTests
{
    [Fact]
    public unsafe void Strings_AreNulTerminated_AndTheTableEndsInNull()
    {
        using var array = new CStringArray(["a", "bé", ""], "argv");
        Assert.Equal("a", new string((sbyte*)array.Pointer[0]));
        Assert.Equal("bé", System.Text.Encoding.UTF8.GetString(System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(array.Pointer[1])));
        Assert.Equal(0, array.Pointer[2][0]);
        Assert.True(array.Pointer[3] == null);
    }

    [Fact]
    public unsafe void AListThatChangesWhileItIsCopied_IsCopiedAsItWasOnce()
    {
        // The size of the block comes from one look at the list and the bytes
        // from another: a list that grows between the two must not make the
        // copy write past the block (here it grows from one string to two).
        var list = new GrowingList();
        using var array = new CStringArray(list, "argv");
        Assert.Equal("a", new string((sbyte*)array.Pointer[0]));
        Assert.True(array.Pointer[1] == null);
    }

    /// <summary>One "a" the first time its count is read, two after.</summary>
    private sealed class GrowingList : IReadOnlyList<string>
    {
        private int _reads;
        public int Count => _reads++ == 0 ? 1 : 2;
        public string this[int index] => "a";
        public IEnumerator<string> GetEnumerator()
        {
            for (int i = 0, n = Count; i < n; i++) yield return "a";
        }
        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
