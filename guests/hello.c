/* The smallest useful guest: a greeting, a few numbers in each format the
 * header prints, and a checksum. The README's first command runs it. */
#include "sv.h"

int main(void)
{
    sv_puts("Hello from a Sharpvisor guest!\n");
    sv_kv("answer", 42);
    sv_puts("negative ");
    sv_puti(-1234567);
    sv_putc('\n');
    sv_kvx("hex", 0xdeadbeefu);
    sv_puts("u64 ");
    sv_putu64(18446744073709551615ull);
    sv_putc('\n');
    sv_puts("hex64 ");
    sv_puthex64(0x0123456789abcdefull);
    sv_putc('\n');

    u32 sum = 0;
    for (u32 i = 1; i <= 100; i++)
        sum = sv_mix(sum, i);
    sv_kvx("checksum", sum);
    return 0;
}
