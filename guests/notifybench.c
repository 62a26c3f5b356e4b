/* The guest half of `sharpvisor bench notify` (src/Vmm/Bench). The host
 * writes the parameters below the image, at NB_PARAMS (the first MiB is the
 * host's), before the VM starts; the guest runs one mode and shuts down.
 *
 *  1 one-way:   COUNT times: wait GAP ns, store rdtsc at NB_SEND, notify
 *               VALUE, spin until the host stores the round number (i + 1)
 *               at NB_ACK. The host's reader subtracts NB_SEND from its own
 *               reading of the same clock (ExecutionEngine.ReadTsc).
 *  2 round trip: COUNT times: wait GAP ns, rdtsc, notify VALUE, LHCALL_HALT
 *               until the host answers with an interrupt, rdtsc; the
 *               difference goes to NB_RESULTS[i].
 *  3 cost:      COUNT times: rdtsc, notify VALUE, rdtsc (timing.h's timed_notify);
 *               the difference goes to NB_RESULTS[i]. Nobody reads the
 *               eventfd; the host checks that its count is COUNT.
 *  4 bracket:   as 3 without the notify: what the two rdtsc cost.
 *  5 rate:      COUNT notifies of VALUE back to back, in chunks of NB_CHUNK:
 *               the rdtsc before the first and after each chunk go to the
 *               u64 array at NB_RESULTS (so the host can tell the rate of each
 *               chunk), the first and last also to NB_START and NB_END, the
 *               number delivered to NB_DELIVERED (the host compares it with
 *               the eventfd's count).
 *
 * A guest only: Linux has no LHCALL_HALT. */
#include "sv.h"
#include "timing.h"

#define NB_PARAMS 0x8000u
#define NB_SEND (NB_PARAMS + 0x10)
#define NB_ACK (NB_PARAMS + 0x18)
#define NB_START (NB_PARAMS + 0x20)
#define NB_END (NB_PARAMS + 0x28)
#define NB_DELIVERED (NB_PARAMS + 0x30)
#define NB_DONE (NB_PARAMS + 0x34) /* NB_DONE_MAGIC once a mode ran to its end */
#define NB_DONE_MAGIC 0x600du
#define NB_CHUNK (NB_PARAMS + 0x38) /* mode 5: notifies per timed chunk */
#define NB_RESULTS 0x1000000u /* 16 MiB: up to 4M results in 64M of RAM */

int main(void)
{
    volatile u32 *params = (volatile u32 *)NB_PARAMS;
    volatile u64 *send = (volatile u64 *)NB_SEND;
    volatile u32 *ack = (volatile u32 *)NB_ACK;
    u32 *results = (u32 *)NB_RESULTS;
    u32 mode = params[0], count = params[1], value = params[2], gap = params[3];

    if (mode == 5) {
        u32 chunk = *(volatile u32 *)NB_CHUNK, delivered = 0;
        u64 *stamps = (u64 *)NB_RESULTS;
        if (chunk == 0 || count % chunk != 0)
            return 2;
        stamps[0] = rdtsc();
        *(volatile u64 *)NB_START = stamps[0];
        for (u32 c = 0; c < count / chunk; c++) {
            for (u32 i = 0; i < chunk; i++)
                delivered += sv_notify(value);
            stamps[c + 1] = rdtsc();
        }
        *(volatile u64 *)NB_END = stamps[count / chunk];
        *(volatile u32 *)NB_DELIVERED = delivered;
        *(volatile u32 *)NB_DONE = NB_DONE_MAGIC;
        return delivered == count ? 0 : 3;
    }

    for (u32 i = 0; i < count; i++) {
        u64 t0, t1;
        switch (mode) {
        case 1:
            wait_until(rdtsc() + gap);
            *send = rdtsc();
            if (!sv_notify(value))
                return 3;
            while (*ack != i + 1)
                __asm__ volatile("pause");
            break;
        case 2:
            wait_until(rdtsc() + gap);
            t0 = rdtsc();
            if (!sv_notify(value))
                return 3;
            sv_halt(0);
            t1 = rdtsc();
            results[i] = (u32)(t1 - t0);
            break;
        case 3:
            results[i] = timed_notify(value);
            break;
        case 4:
            results[i] = timed_nothing();
            break;
        default:
            return 2;
        }
    }
    *(volatile u32 *)NB_DONE = NB_DONE_MAGIC;
    return 0;
}
