/* The string instructions: rep movs/stos in both directions, repne scas and
 * repe cmps, in each operand size, written as inline asm so the exact forms
 * are certain, plus gcc's own inline expansions of __builtin_memcpy and
 * __builtin_memset (this file is built with -minline-all-stringops). */
#include "sv.h"

static usize asm_strlen(const char *s)
{
    /* repne scasb from ECX = -1 counts down once per byte including the NUL. */
    u32 count = 0xffffffffu;
    const char *p = s;
    __asm__ volatile("repne scasb" : "+D"(p), "+c"(count) : "a"(0) : "memory", "cc");
    return ~count - 1;
}

static int asm_memcmp(const void *a, const void *b, usize n)
{
    if (n == 0) return 0;
    const u8 *p = a, *q = b;
    /* repe cmpsb stops after the first difference, one past it. */
    __asm__ volatile("repe cmpsb" : "+S"(p), "+D"(q), "+c"(n) : : "memory", "cc");
    return p[-1] == q[-1] ? 0 : (p[-1] < q[-1] ? -1 : 1);
}

static int asm_strcmp(const char *a, const char *b)
{
    return asm_memcmp(a, b, asm_strlen(a) + 1);
}

static void copy_dwords(u32 *dst, const u32 *src, usize n)
{
    __asm__ volatile("rep movsl" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}

static void fill_words(u16 *dst, u16 v, usize n)
{
    __asm__ volatile("rep stosw" : "+D"(dst), "+c"(n) : "a"(v) : "memory");
}

/* Backwards dword copy with DF=1 (pointers at the last element), then DF=0. */
static void copy_dwords_back(u32 *dst, const u32 *src, usize n)
{
    if (!n) return;
    u32 *d = dst + n - 1;
    const u32 *s = src + n - 1;
    __asm__ volatile("std\n\trep movsl\n\tcld" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
}

/* Find the last occurrence of c with std; repne scasb scanning downwards. */
static int last_index(const char *s, usize n, char c)
{
    if (!n) return -1;
    const char *p = s + n - 1;
    u32 count = n;
    __asm__ volatile("std\n\trepne scasb\n\tcld" : "+D"(p), "+c"(count) : "a"(c) : "memory", "cc");
    return p[1] == c ? (int)(p + 1 - s) : -1;
}

/* lodsb/stosb one at a time: uppercases a string. */
static void upcase(char *dst, const char *src)
{
    for (;;) {
        char ch;
        __asm__ volatile("lodsb" : "=a"(ch), "+S"(src) : : "memory");
        if (ch >= 'a' && ch <= 'z') ch = (char)(ch - 32);
        __asm__ volatile("stosb" : "+D"(dst) : "a"(ch) : "memory");
        if (!ch) break;
    }
}

struct blob {
    u32 words[13];
    char text[23];
};

static u8 buf[4096];
static u32 dw[512], dw2[512];
static u16 w[300];

static u32 hash_bytes(const void *p, usize n, u32 h)
{
    const u8 *b = p;
    for (usize i = 0; i < n; i++) h = sv_mix(h, b[i]);
    return h;
}

int main(void)
{
    u32 h = 0;
    static const char *const words[] = {"", "a", "hypervisor", "Sharpvisor", "sharpvisor", "lguest", "lguestx"};
    for (usize i = 0; i < sizeof words / sizeof words[0]; i++) {
        sv_puts("strlen '");
        sv_puts(words[i]);
        sv_puts("' ");
        sv_putu(asm_strlen(words[i]));
        sv_putc('\n');
        h = sv_mix(h, asm_strlen(words[i]));
    }
    for (usize i = 0; i + 1 < sizeof words / sizeof words[0]; i++) {
        int c = asm_strcmp(words[i], words[i + 1]);
        sv_puts("strcmp ");
        sv_puti(c);
        sv_putc('\n');
        h = sv_mix(h, (u32)c);
    }

    /* Overlapping moves both ways through memmove (backwards: std; rep movsb). */
    for (usize i = 0; i < sizeof buf; i++) buf[i] = (u8)(i * 7 + 3);
    memmove(buf + 100, buf, 1000);
    h = hash_bytes(buf, 1200, h);
    memmove(buf, buf + 37, 2000);
    h = hash_bytes(buf, 2100, h);
    sv_kvx("memmove", h);

    for (usize i = 0; i < 512; i++) dw[i] = i * 0x01010101u;
    copy_dwords(dw2, dw, 512);
    sv_kv("movsl equal", (u32)(asm_memcmp(dw, dw2, sizeof dw) == 0));
    copy_dwords_back(dw + 1, dw, 511); /* shift up by one element: needs DF=1 */
    sv_kvx("movsl backwards", hash_bytes(dw, sizeof dw, 0));
    sv_kv("dw[1] was dw[0]", (u32)(dw[1] == 0));
    h = sv_mix(h, dw[511]);

    fill_words(w, 0xbeef, 300);
    sv_kvx("stosw", hash_bytes(w, sizeof w, 0));
    h = sv_mix(h, w[299]);

    static const char text[] = "the quick brown fox jumps over the lazy dog";
    sv_kv("last o", (u32)last_index(text, sizeof text - 1, 'o'));
    sv_kv("last t", (u32)last_index(text, sizeof text - 1, 't'));
    sv_puti(last_index(text, sizeof text - 1, 'Q'));
    sv_putc('\n');
    char up[sizeof text];
    upcase(up, text);
    sv_puts(up);
    sv_putc('\n');
    h = hash_bytes(up, sizeof up, h);

    /* gcc's own expansions: a struct copy and constant-size builtins. */
    struct blob a, b;
    __builtin_memset(&a, 0x5a, sizeof a);
    for (int i = 0; i < 13; i++) a.words[i] = (u32)i * 0x11111111u;
    __builtin_memcpy(a.text, "inline string ops!", 19);
    b = a;
    sv_kv("struct copy equal", (u32)(asm_memcmp(&a, &b, sizeof a) == 0));
    b.text[5] = 'S';
    sv_puti(asm_memcmp(&a, &b, sizeof a));
    sv_putc('\n');
    sv_puts(b.text);
    sv_putc('\n');
    h = hash_bytes(&b, sizeof b, h);

    /* Lengths 0..40 at every alignment: the edge cases of rep-based copies. */
    for (usize len = 0; len <= 40; len++)
        for (usize off = 0; off < 4; off++) {
            memset(buf, 0, 64);
            memcpy(buf + off, text, len);
            h = hash_bytes(buf, 48, h);
        }
    sv_kvx("checksum", h);
    return 0;
}
