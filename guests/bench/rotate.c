/* Benchmark: a SHA-256-like round, three 32-bit rotates of one word and a
 * few adds and logic ops per iteration. Built twice from this source:
 * rotate-ror as written (gcc emits three ror), rotate-shift with each rotate
 * replaced by a shift (-DSHIFTS_ONLY), the same loop otherwise, so the two
 * differ only in the instruction an engine must run fast. */
#include "../sv.h"

#ifdef SHIFTS_ONLY
#define OP(x, n) ((x) >> (n))
#else
#define OP(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#endif

int main(void)
{
    u32 a = 0x6a09e667u, b = 0xbb67ae85u, c = 0x3c6ef372u, d = 0xa54ff53au;
    for (u32 i = 0; i < 50000000u; i++) {
        u32 s = OP(a, 6) ^ OP(a, 11) ^ OP(a, 25);
        u32 t = d + s + ((a & b) ^ (~a & c)) + i;
        d = c;
        c = b;
        b = a;
        a = t;
    }
    sv_kvx("checksum", a ^ b ^ c ^ d);
    return 0;
}
