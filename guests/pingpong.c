/* Ping-pong with the host: notify PING, then sleep in LHCALL_HALT until the
 * host answers with interrupt PONG_IRQ, ROUNDS times. Run with
 * --notify 0x10=fd:A --irq 5=fd:B and a responder that reads A and writes B.
 * Each round waits for its answer before the next ping, so the responder
 * sees exactly one notification per read and the counts on both sides are
 * exact. A guest only: Linux has no LHCALL_HALT. */
#include "sv.h"

#define ROUNDS 1000
#define PING 0x10
#define PONG_IRQ 5

int main(void)
{
    u32 pongs = 0, other = 0, undelivered = 0;
    for (u32 i = 0; i < ROUNDS; i++) {
        if (!sv_notify(PING)) {
            undelivered++; /* nothing attached: no answer will come */
            continue;
        }
        u32 irq = sv_halt(0);
        if (irq == PONG_IRQ)
            pongs++;
        else
            other++;
    }
    sv_kv("rounds", ROUNDS);
    sv_kv("pongs", pongs);
    sv_kv("other", other);
    sv_kv("undelivered", undelivered);
    /* Every answer was taken: a short timed halt now finds nothing pending. */
    sv_kv("after", sv_halt(1000));
    return other || undelivered ? 1 : 0;
}
