/* 64-bit arithmetic on a 32-bit CPU: gcc turns mul into mul/imul pairs,
 * shifts into shld/shrd with a test of bit 5, and division and modulo into
 * calls to libgcc's __udivdi3, __umoddi3, __divdi3 and __moddi3. */
#include "sv.h"

static u64 rand64(u32 *seed)
{
    u64 hi = sv_rand(seed);
    return hi << 32 | sv_rand(seed);
}

/* noinline keeps the shift count a runtime value, not a constant gcc folds. */
static __attribute__((noinline)) u64 shl(u64 v, u32 n) { return v << n; }
static __attribute__((noinline)) u64 shr(u64 v, u32 n) { return v >> n; }
static __attribute__((noinline)) s64 sar(s64 v, u32 n) { return v >> n; }
static __attribute__((noinline)) u64 rotl64(u64 v, u32 n) { return (v << (n & 63)) | (v >> (-n & 63)); }

static void line(const char *name, u64 v)
{
    sv_puts(name);
    sv_putc(' ');
    sv_puthex64(v);
    sv_putc(' ');
    sv_putu64(v);
    sv_putc('\n');
}

int main(void)
{
    u32 seed = 0x9e3779b9u, h = 0;

    line("mul", 0xfedcba9876543210ull * 0x0123456789abcdefull);
    line("div", 0xfedcba9876543210ull / 12345);
    line("mod", 0xfedcba9876543210ull % 1000000007ull);
    line("big div", 0xffffffffffffffffull / 0x100000001ull);
    sv_puts("sdiv ");
    sv_puti64(-9000000000000000000ll / 7);
    sv_puts(" smod ");
    sv_puti64(-9000000000000000000ll % 7);
    sv_putc('\n');
    sv_puts("min ");
    sv_puti64((s64)0x8000000000000000ull);
    sv_putc('\n');

    for (u32 n = 0; n < 64; n += 7) {
        sv_puts("shift ");
        sv_putu(n);
        sv_putc(' ');
        sv_puthex64(shl(0x8123456789abcdefull, n));
        sv_putc(' ');
        sv_puthex64(shr(0x8123456789abcdefull, n));
        sv_putc(' ');
        sv_puthex64((u64)sar((s64)0x8123456789abcdefull, n));
        sv_putc('\n');
    }

    for (int i = 0; i < 2000; i++) {
        u64 a = rand64(&seed), b = rand64(&seed) >> (sv_rand(&seed) % 64);
        if (b == 0) b = 1;
        s64 sa = (s64)a, sb = (s64)b | 1;
        u64 q = a / b, r = a % b;
        if (q * b + r != a || r >= b) {
            sv_puts("division identity broken at ");
            sv_putu((u32)i);
            sv_putc('\n');
            return 1;
        }
        s64 sq = sa / sb, sr = sa % sb;
        u32 n = sv_rand(&seed) % 64;
        u64 words[] = {a * b, q, r, (u64)sq, (u64)sr, shl(a, n), shr(a, n), (u64)sar(sa, n), rotl64(a, n),
                       (u64)(a < b) | (u64)(sa < sb) << 1};
        for (usize k = 0; k < sizeof words / sizeof words[0]; k++)
            h = sv_mix(sv_mix(h, (u32)words[k]), (u32)(words[k] >> 32));
    }
    sv_kvx("checksum", h);
    return 0;
}
