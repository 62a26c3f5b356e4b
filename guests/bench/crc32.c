/* Benchmark: table-driven CRC-32 over a 64 KiB buffer, many passes; a load,
 * an xor and a dependent table lookup per byte. */
#include "../sv.h"

static u32 table[256];
static u8 data[65536];

int main(void)
{
    for (u32 i = 0; i < 256; i++) {
        u32 c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    u32 seed = 7;
    for (usize i = 0; i < sizeof data; i++) data[i] = (u8)sv_rand(&seed);

    u32 h = 0;
    for (int pass = 0; pass < 4000; pass++) {
        u32 c = 0xffffffffu ^ (u32)pass;
        for (usize i = 0; i < sizeof data; i++) c = table[(c ^ data[i]) & 0xff] ^ (c >> 8);
        h = sv_mix(h, ~c);
    }
    sv_kvx("checksum", h);
    return 0;
}
