/* A notify loop: LHCALL_NOTIFY of three values, ROUNDS times each, counting
 * from EAX which notifications reached an eventfd (1) and which missed (0).
 * The host attaches whichever values it likes (--notify VALUE=fd:N), so the
 * counts show what it attached; with --stats the host prints its own counts,
 * which must agree. A guest only: Linux has no LHCALL_NOTIFY. */
#include "sv.h"

#define ROUNDS 1000

static const u32 values[] = {0x10, 0x20, 0x30};
#define NVALUES (sizeof values / sizeof values[0])

int main(void)
{
    u32 delivered[NVALUES] = {0}, missed[NVALUES] = {0};
    for (u32 i = 0; i < ROUNDS; i++)
        for (u32 k = 0; k < NVALUES; k++) {
            if (sv_notify(values[k]))
                delivered[k]++;
            else
                missed[k]++;
        }
    for (u32 k = 0; k < NVALUES; k++) {
        sv_puts("value ");
        sv_puthex(values[k]);
        sv_puts(" delivered ");
        sv_putu(delivered[k]);
        sv_puts(" missed ");
        sv_putu(missed[k]);
        sv_putc('\n');
    }
    return 0;
}
