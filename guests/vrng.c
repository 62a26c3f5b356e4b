/* A virtio entropy device test (spec 5.4): read 64 random bytes twice, once
 * into one buffer and once into a chain of two 32-byte buffers; each sample
 * must be wholly written (used length 64), not all zero, and the two must
 * differ. Exit status 0 only if every check passed (1 if one failed;
 * virtio.h's own errors stop the guest with 2 or 3).
 *
 * Run:  sharpvisor run vrng.elf --device rng
 *
 *     vrng: vcpu 0 window 0, interrupts, event_idx 1, indirect 1
 *     ok vcpu 0 sample 1: 64 bytes, not all zero
 *     ok vcpu 0 sample 2: 64 bytes, not all zero
 *     ok vcpu 0 samples differ
 *     vrng: 3 checks passed
 *
 * Built with -DSMP_VCPUS=N (vrng-smp is N = 2), vCPU k drives its own
 * device, window k, at the same time as the others: run it with
 * `--vcpus N --device rng` given N times. vCPU 0 waits for the others to
 * finish, checks that no two vCPUs drew the same bytes, and prints
 * everything (the lines above for each vCPU, then "ok samples of all vcpus
 * differ" and "vrng: 3N+1 checks passed").
 *
 * A guest only (a Linux twin has no virtio device). */
#include "sv.h"
#include "virtio.h"

#ifndef SMP_VCPUS
#define SMP_VCPUS 1
#endif
#define SAMPLE 64

/* Each vCPU's device, queue and results; vCPU k writes only slot k, then
 * sets done[k] last, and vCPU 0 reads them after seeing done[k]: x86 keeps
 * the stores in order and the release/acquire pair keeps the compiler from
 * reordering them. */
static struct virtio_dev dev[SMP_VCPUS];
static struct virtq requestq[SMP_VCPUS];
static u8 sample[SMP_VCPUS][2][SAMPLE];
static u32 used_len[SMP_VCPUS][2];
static int init_error[SMP_VCPUS];
static u32 done[SMP_VCPUS];
static u32 checks, failures;

static void check(int ok, u32 vcpu, const char *what)
{
    checks++;
    if (!ok)
        failures++;
    sv_puts(ok ? "ok vcpu " : "FAIL vcpu ");
    sv_putu(vcpu);
    sv_putc(' ');
    sv_puts(what);
    sv_putc('\n');
}

static int all_zero(const u8 *p)
{
    for (u32 i = 0; i < SAMPLE; i++)
        if (p[i])
            return 0;
    return 1;
}

/* Fill sample[me][which] with the device's bytes, as `pieces` buffers. */
static void draw(u32 me, u32 which, u32 pieces)
{
    struct vbuf b[2];
    for (u32 i = 0; i < pieces; i++)
        b[i] = (struct vbuf){sample[me][which] + i * (SAMPLE / pieces), SAMPLE / pieces};
    /* Every buffer is device-writable: the device only fills them (5.4.6). */
    if (vq_submit(&requestq[me], b, 0, pieces, b) < 0)
        virtio_die(&dev[me], "requestq full with nothing in flight");
    vq_kick(&requestq[me]);
    if (vq_wait_used(&requestq[me], &used_len[me][which]) != b)
        virtio_die(&dev[me], "used ring returned another request");
}

static void run(u32 me)
{
    init_error[me] = virtio_init(&dev[me], me, VIRTIO_ID_ENTROPY, 0);
    if (init_error[me] == 0 && vq_setup(&dev[me], &requestq[me], 0) != 0)
        init_error[me] = VIRTIO_E_NO_DEVICE;
    if (init_error[me] == 0) {
        virtio_driver_ok(&dev[me]);
        draw(me, 0, 1);
        draw(me, 1, 2);
    }
    __atomic_store_n(&done[me], 1, __ATOMIC_RELEASE);
}

int main(void)
{
    u32 me = virtio_vcpu_index();
    if (me >= SMP_VCPUS)
        virtio_park(); /* more vCPUs than devices: stay out of the way */
    run(me);
    if (me != 0)
        virtio_park(); /* vCPU 0 reports and stops the VM */

    for (u32 k = 1; k < SMP_VCPUS; k++)
        while (!__atomic_load_n(&done[k], __ATOMIC_ACQUIRE))
            __asm__ volatile("pause");

    for (u32 k = 0; k < SMP_VCPUS; k++) {
        sv_puts("vrng: vcpu ");
        sv_putu(k);
        sv_puts(" window ");
        sv_putu(k);
        if (init_error[k]) {
            sv_puts(init_error[k] == VIRTIO_E_NO_DEVICE ? ": no virtio entropy device in the window\n"
                                                        : ": feature negotiation failed\n");
            return 2;
        }
        sv_puts(dev[k].poll ? ", polling" : ", interrupts");
        sv_puts(", event_idx ");
        sv_putu(dev[k].event_idx);
        sv_puts(", indirect ");
        sv_putu(dev[k].indirect);
        sv_putc('\n');
        check(used_len[k][0] == SAMPLE && !all_zero(sample[k][0]), k, "sample 1: 64 bytes, not all zero");
        check(used_len[k][1] == SAMPLE && !all_zero(sample[k][1]), k, "sample 2: 64 bytes, not all zero");
        check(memcmp(sample[k][0], sample[k][1], SAMPLE) != 0, k, "samples differ");
    }
    if (SMP_VCPUS > 1) {
        int differ = 1;
        for (u32 a = 0; a < SMP_VCPUS; a++)
            for (u32 b = a + 1; b < SMP_VCPUS; b++)
                for (u32 i = 0; i < 2; i++)
                    for (u32 j = 0; j < 2; j++)
                        differ &= memcmp(sample[a][i], sample[b][j], SAMPLE) != 0;
        checks++;
        failures += !differ;
        sv_puts(differ ? "ok samples of all vcpus differ\n" : "FAIL samples of all vcpus differ\n");
    }

    sv_puts("vrng: ");
    if (failures) {
        sv_putu(failures);
        sv_puts(" of ");
        sv_putu(checks);
        sv_puts(" checks failed\n");
        return 1;
    }
    sv_putu(checks);
    sv_puts(" checks passed\n");
    return 0;
}
