/* Hashing: CRC-32 by table and bit by bit (must agree), FNV-1a in 32 and 64
 * bits, and a murmur-style finaliser built from multiplies, xor-shifts and
 * rotates (gcc emits rol/ror for the rotate idiom). */
#include "sv.h"

static u32 crc_table[256];

static void crc_init(void)
{
    for (u32 i = 0; i < 256; i++) {
        u32 c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static u32 crc_by_table(const u8 *p, usize n)
{
    u32 c = 0xffffffffu;
    while (n--) c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

static u32 crc_by_bit(const u8 *p, usize n)
{
    u32 c = 0xffffffffu;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return ~c;
}

static u32 fnv1a32(const u8 *p, usize n)
{
    u32 h = 0x811c9dc5u;
    while (n--) h = (h ^ *p++) * 0x01000193u;
    return h;
}

static u64 fnv1a64(const u8 *p, usize n)
{
    u64 h = 0xcbf29ce484222325ull;
    while (n--) h = (h ^ *p++) * 0x100000001b3ull;
    return h;
}

static inline u32 rotl32(u32 x, int r) { return x << r | x >> (32 - r); }
static inline u32 rotr32(u32 x, int r) { return x >> r | x << (32 - r); }

/* Block mixing in the style of murmur3: per-word multiply-rotate-multiply,
 * then a finaliser that avalanches every bit. */
static u32 murmurish(const u32 *words, usize n, u32 seed)
{
    u32 h = seed;
    for (usize i = 0; i < n; i++) {
        u32 k = words[i] * 0xcc9e2d51u;
        k = rotl32(k, 15) * 0x1b873593u;
        h = rotl32(h ^ k, 13) * 5 + 0xe6546b64u;
    }
    h ^= (u32)n * 4;
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h = rotr32(h, 7) * 0xc2b2ae35u;
    return h ^ (h >> 16);
}

static u8 data[8192];

int main(void)
{
    crc_init();
    static const char check[] = "123456789";
    sv_kvx("crc32 check", crc_by_table((const u8 *)check, 9)); /* 0xcbf43926 */
    sv_kvx("fnv1a32 check", fnv1a32((const u8 *)check, 9));
    sv_puts("fnv1a64 check ");
    sv_puthex64(fnv1a64((const u8 *)check, 9));
    sv_putc('\n');

    u32 seed = 42, h = 0;
    for (usize i = 0; i < sizeof data; i++) data[i] = (u8)sv_rand(&seed);
    for (usize len = 1; len <= sizeof data; len *= 4) {
        u32 t = crc_by_table(data, len), b = crc_by_bit(data, len);
        sv_puts("crc32 ");
        sv_putu(len);
        sv_putc(' ');
        sv_puthex(t);
        sv_puts(t == b ? " agree\n" : " DISAGREE\n");
        h = sv_mix(h, t);
    }
    u64 f = fnv1a64(data, sizeof data);
    sv_kvx("fnv1a32", fnv1a32(data, sizeof data));
    sv_puts("fnv1a64 ");
    sv_puthex64(f);
    sv_putc('\n');
    u32 m = murmurish((const u32 *)data, sizeof data / 4, 0x9747b28cu);
    sv_kvx("murmurish", m);
    h = sv_mix(sv_mix(sv_mix(h, (u32)f), (u32)(f >> 32)), m);
    sv_kvx("checksum", h);
    return 0;
}
