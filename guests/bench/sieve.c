/* Benchmark: Eratosthenes over 8 M odd-only flags, repeated; byte stores
 * and a tight inner loop with a data-dependent stride. */
#include "../sv.h"

#define LIMIT (16u << 20)
static u8 composite[LIMIT / 2];

int main(void)
{
    u32 h = 0, count = 0;
    for (int round = 0; round < 18; round++) {
        memset(composite, 0, sizeof composite);
        count = 1; /* 2 */
        for (u32 i = 3; i < LIMIT; i += 2) {
            if (composite[i / 2]) continue;
            count++;
            if (i < 65536)
                for (u32 j = i * i; j < LIMIT; j += 2 * i) composite[j / 2] = 1;
        }
        h = sv_mix(h, count);
    }
    sv_kv("primes below 16M", count);
    sv_kvx("checksum", h);
    return 0;
}
