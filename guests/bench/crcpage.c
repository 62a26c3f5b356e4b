/* Benchmark: CRC-32 of a small message rebuilt before every pass, so the
 * loop stores into its buffers all the time. Built twice from this source:
 * crc-near puts the buffers right after the code, in the page where the code
 * ends (link-near.ld, as small static programs and linker scripts that do
 * not page-align data do); crc-far a page further on (link.ld). An engine
 * that tracks code by the page, not by the byte, sees every store as
 * self-modifying code in crc-near. */
#include "../sv.h"

static u32 table[256];
static u8 message[512];
static u32 results[64];

int main(void)
{
    for (u32 i = 0; i < 256; i++) {
        u32 c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    u32 seed = 11, h = 0;
    for (u32 pass = 0; pass < 40000; pass++) {
        for (usize i = 0; i < sizeof message; i++) message[i] = (u8)sv_rand(&seed);
        u32 c = 0xffffffffu;
        for (usize i = 0; i < sizeof message; i++) c = table[(c ^ message[i]) & 0xff] ^ (c >> 8);
        results[pass & 63] = ~c;
        h = sv_mix(h, results[(pass * 7) & 63]);
    }
    sv_kvx("checksum", h);
    return 0;
}
