/* The guest half of `sharpvisor bench virtio` (src/Vmm/Bench): a virtio-blk
 * driver (virtio.h, virtio-blk.h) reading 4 KiB blocks at random from a disk
 * image the host wrote with a known pattern. The host writes the parameters
 * below the image, at VB_PARAMS (the first MiB is the host's), before the VM
 * starts; the guest runs one mode and shuts down with 0, having stored
 * VB_DONE_MAGIC at VB_DONE. The block device is the VM's first --device.
 *
 * Every mode first sets the device up and reads block 0 through
 * virtio-blk.h's blk_request, checked whole (the device works at all), then
 * runs its loop WARMUP + COUNT times: the first WARMUP untimed, so that the
 * engines have compiled all of it (a block after 64 runs), then a mark, and
 * the COUNT timed ones. One loop, so that the timed part runs exactly the
 * code the warm-up made hot (a block met first after the warm-up would be
 * compiled inside the timed part: milliseconds on the vCPU's thread). The
 * per-iteration results go to arrays of WARMUP + COUNT u32, the timed ones
 * from index WARMUP on.
 *
 *  1 QD1:      one read at a time: a random block, kick, sleep in LHCALL_HALT
 *              until the device's interrupt, take the used entry. rdtsc
 *              before the kick, after it, when the HALT that found the entry
 *              returned, and once the entry is taken: the four arrays at
 *              VB_RESULTS (total, kick, wait, after the wake).
 *  2 QD32:     32 reads in flight (VIRTIO_F_EVENT_IDX negotiated): whenever
 *              used entries arrive, take them all, put a new read in each
 *              slot, kick once (EVENT_IDX drops the doorbell while the device
 *              is still at work), and sleep only when nothing is used,
 *              until half of those in flight are (so that the device serves
 *              the other half while the guest takes the first). The
 *              timed part starts at the WARMUP-th completion, with the
 *              queue full; rdtsc at its start and end go to VB_START and
 *              VB_END (as in every mode).
 *  3 store:    wait GAP ns (so the queue's thread is asleep again), rdtsc,
 *              one store to QueueNotify, rdtsc; the difference to
 *              VB_RESULTS[i]. The queue's thread wakes and finds nothing new.
 *  4 notify:   as 3 with LHCALL_NOTIFY of the doorbell's value (0xD0000000
 *              for queue 0 of device 0), which rings the same doorbell.
 *  5 bracket:  as 3 with nothing between the two rdtsc.
 *  6 no queue: as 3, storing the index of a queue the device does not have:
 *              the device-access path alone, with no eventfd written.
 *
 * Checks, so that a broken path cannot pass: every read's status must be OK
 * and its used length 4097; the first and last words of each read's buffer
 * are overwritten before the read and must hold the pattern after it; every
 * CHECK_EVERY-th read is compared whole. The pattern: the u32 at byte
 * offset 4w of the disk is w * 0x9e3779b1 + 0x7f4a7c15 (an odd multiplier,
 * so no two words of a disk below 16 GiB are alike and a read from the wrong
 * place shows).
 *
 * Marks: with MARK nonzero, the guest notifies MARK just before the timed
 * part and just after it, and each time sleeps until interrupt 5, with which
 * the host answers once it has read the threads' CPU clocks and the VM's
 * counters. So those figures cover exactly the timed requests.
 *
 * A guest only: a Linux twin has no virtio device. */
#include "sv.h"
#define VIRTIO_QUEUE_SIZE 32 /* indirect chains: one descriptor per request */
#include "virtio.h"
#include "virtio-blk.h"
#include "timing.h"

#define VB_PARAMS 0x8000u
#define VB_MODE (VB_PARAMS + 0x00)
#define VB_COUNT (VB_PARAMS + 0x04)
#define VB_WARMUP (VB_PARAMS + 0x08)
#define VB_BLOCKS (VB_PARAMS + 0x0c) /* the disk's size in 4 KiB blocks */
#define VB_SEED (VB_PARAMS + 0x10)
#define VB_GAP (VB_PARAMS + 0x14)
#define VB_CHECK_EVERY (VB_PARAMS + 0x18)
#define VB_MARK (VB_PARAMS + 0x1c)
/* What the guest reports. */
#define VB_DONE (VB_PARAMS + 0x40) /* VB_DONE_MAGIC once a mode ran to its end */
#define VB_DONE_MAGIC 0x600du
#define VB_STATUS_ERRORS (VB_PARAMS + 0x44)
#define VB_MISMATCHES (VB_PARAMS + 0x48) /* reads whose data was not the pattern */
#define VB_FULL_CHECKS (VB_PARAMS + 0x4c) /* reads compared whole */
#define VB_COMPLETED (VB_PARAMS + 0x50) /* timed reads completed (modes 3-5: brackets) */
#define VB_MAX_IN_FLIGHT (VB_PARAMS + 0x54)
#define VB_USED_IDX_AT (VB_PARAMS + 0x58) /* where the used ring's idx is, for the host */
#define VB_EVENT_IDX (VB_PARAMS + 0x5c)
#define VB_START (VB_PARAMS + 0x60)
#define VB_END (VB_PARAMS + 0x68)
#define VB_RESULTS 0x1000000u /* 16 MiB: four u32 per QD1 read, up to 3M reads in 64M of RAM */

#define BLOCK 4096u
#define WORDS (BLOCK / 4)
#define DEPTH 32
#define MARK_IRQ 5
#define NO_QUEUE 0xffffu /* a queue index no device has */

static u32 data[DEPTH][WORDS] __attribute__((aligned(BLOCK)));
static struct virtio_blk_req_header headers[DEPTH];
static u8 statuses[DEPTH];
static u32 slot_block[DEPTH];

static u32 blocks, check_every, seed, reads;
static u32 status_errors, mismatches, full_checks;

static inline u32 pattern(u32 word) { return word * 0x9e3779b1u + 0x7f4a7c15u; }

static u32 random_block(void) { return sv_rand(&seed) % blocks; }

/* What a read of `block` into `buf` must have produced; counts what it did not. */
static void check_read(u32 block, const u32 *buf, u8 st, u32 len)
{
    reads++;
    if (st != VIRTIO_BLK_S_OK || len != BLOCK + 1) {
        status_errors++;
        return;
    }
    u32 first = block * WORDS;
    int bad = buf[0] != pattern(first) || buf[WORDS - 1] != pattern(first + WORDS - 1);
    if (check_every && (reads - 1) % check_every == 0) {
        full_checks++;
        for (u32 i = 1; i < WORDS - 1 && !bad; i++)
            bad = buf[i] != pattern(first + i);
    }
    mismatches += bad;
}

/* Offer a read of a random block into slot k: header, the 4 KiB buffer, the
 * status byte (one indirect descriptor in the ring). The buffer's ends are
 * overwritten first, so a read that wrote nothing fails its check. */
static void submit(u32 k)
{
    u32 block = random_block();
    slot_block[k] = block;
    headers[k] = (struct virtio_blk_req_header){VIRTIO_BLK_T_IN, 0, (u64)block * (BLOCK / SECTOR)};
    statuses[k] = STATUS_UNWRITTEN;
    data[k][0] = ~pattern(block * WORDS);
    data[k][WORDS - 1] = ~pattern(block * WORDS + WORDS - 1);
    struct vbuf b[3] = {{&headers[k], sizeof headers[k]}, {data[k], BLOCK}, {&statuses[k], 1}};
    if (vq_submit(&requestq, b, 1, 2, &headers[k]) < 0)
        virtio_die(&dev, "requestq full");
}

static void complete(u32 k, u32 len) { check_read(slot_block[k], data[k], statuses[k], len); }

/* Sleep until the request queue has a used entry, as virtio.h's virtio_wait,
 * returning the clock when the HALT that found it returned (or now, if one
 * was there before any sleep). The interrupt is asked for once `batch`
 * entries are used (vq_arm_after; an entry already used ends the wait at
 * once). */
static u64 wait_used(u16 batch)
{
    for (;;) {
        vq_arm_after(&requestq, batch);
        virtio_mb(); /* the used_event store before the used.idx load */
        if (vq_has_used(&requestq))
            return rdtsc();
        u32 irq = sv_halt(0);
        u64 woke = rdtsc();
        virtio_take_interrupt(irq);
        if (vq_has_used(&requestq))
            return woke;
    }
}

/* Tell the host where the timed part starts or ends, and wait for its answer. */
static void mark(u32 value)
{
    if (!value)
        return;
    if (!sv_notify(value))
        virtio_die(&dev, "nothing attached to the mark value");
    for (;;) {
        u32 irq = sv_halt(0);
        if (irq == MARK_IRQ)
            return;
        virtio_take_interrupt(irq);
    }
}

/* The start of the timed part: the mark, then the clock. */
static u32 mark_value, timed_from;

static void start_timing(void)
{
    mark(mark_value);
    timed_from = reads;
    *(volatile u64 *)VB_START = rdtsc();
}

/* Mode 1: `total` reads, one at a time, the timed part from read `warmup`
 * on; the four times of read i go to timed[i], timed[total + i], ... */
static void qd1(u32 total, u32 warmup, u32 *timed)
{
    for (u32 i = 0; i < total; i++) {
        if (i == warmup)
            start_timing();
        submit(0);
        u64 t0 = rdtsc();
        vq_kick(&requestq);
        u64 t1 = rdtsc();
        u64 t2 = wait_used(1);
        u32 len = 0;
        if (vq_pop_used(&requestq, &len) != &headers[0])
            virtio_die(&dev, "used ring returned another request");
        u64 t3 = rdtsc();
        complete(0, len);
        timed[i] = (u32)(t3 - t0);
        timed[total + i] = (u32)(t1 - t0);
        timed[2 * total + i] = (u32)(t2 - t1);
        timed[3 * total + i] = (u32)(t3 - t2);
    }
}

/* Mode 2: `total` reads with up to DEPTH in flight, the timed part from the
 * `warmup`-th completion on (the queue full then); returns the most in
 * flight. */
static u32 qd32(u32 total, u32 warmup)
{
    u32 submitted = 0, done = 0, in_flight = 0, most = 0;
    while (submitted < total && in_flight < DEPTH) {
        submit(submitted % DEPTH);
        submitted++;
        in_flight++;
    }
    vq_kick(&requestq);
    most = in_flight;
    if (warmup == 0)
        start_timing();
    while (done < total) {
        u32 len = 0, taken = 0;
        void *token;
        while ((token = vq_pop_used(&requestq, &len)) != 0) {
            u32 k = (u32)((struct virtio_blk_req_header *)token - headers);
            complete(k, len);
            done++;
            in_flight--;
            taken++;
            if (done == warmup)
                start_timing();
            if (submitted < total) {
                submit(k);
                submitted++;
                in_flight++;
            }
        }
        if (in_flight > most)
            most = in_flight;
        if (taken)
            vq_kick(&requestq); /* once for the whole batch */
        else
            wait_used(in_flight > 1 ? (u16)(in_flight / 2) : 1);
    }
    return most;
}

/* Modes 3 to 6: the vCPU's cost of ringing the doorbell, `total` times, the
 * timed part from `warmup` on. */
static void doorbell_cost(u32 mode, u32 total, u32 warmup, u32 gap, u32 *results)
{
    u32 notify_at = dev.base + VIRTIO_MMIO_QUEUE_NOTIFY;
    u32 doorbell = dev.base + requestq.index; /* its value: the window's address plus the queue */
    for (u32 i = 0; i < total; i++) {
        if (i == warmup)
            start_timing();
        wait_until(rdtsc() + gap);
        results[i] = mode == 3 ? timed_store(notify_at, requestq.index)
                   : mode == 4 ? timed_notify(doorbell)
                   : mode == 6 ? timed_store(notify_at, NO_QUEUE)
                               : timed_nothing();
    }
}

int main(void)
{
    if (virtio_vcpu_index() != 0)
        virtio_park();
    volatile u32 *p = (volatile u32 *)VB_PARAMS;
    u32 mode = p[0], count = p[1], warmup = p[2], gap = *(volatile u32 *)VB_GAP;
    blocks = *(volatile u32 *)VB_BLOCKS;
    seed = *(volatile u32 *)VB_SEED | 1; /* xorshift never leaves 0 */
    check_every = *(volatile u32 *)VB_CHECK_EVERY;
    mark_value = *(volatile u32 *)VB_MARK;
    if (mode < 1 || mode > 6 || blocks == 0 || count == 0)
        return 2;

    if (virtio_init(&dev, 0, VIRTIO_ID_BLOCK, 1u << VIRTIO_BLK_F_SEG_MAX) != 0) {
        sv_puts("vblkbench: no virtio block device in window 0\n");
        return 2;
    }
    if (virtio_has(&dev, VIRTIO_BLK_F_SEG_MAX))
        seg_max = virtio_config32(&dev, VIRTIO_BLK_CFG_SEG_MAX);
    if (virtio_config64(&dev, VIRTIO_BLK_CFG_CAPACITY) < (u64)blocks * (BLOCK / SECTOR)) {
        sv_puts("vblkbench: the disk is smaller than the host said\n");
        return 2;
    }
    if (vq_setup(&dev, &requestq, 0) != 0) {
        sv_puts("vblkbench: no requestq\n");
        return 2;
    }
    virtio_driver_ok(&dev);
    *(volatile u32 *)VB_USED_IDX_AT = (u32)&requestq.used.idx;
    *(volatile u32 *)VB_EVENT_IDX = dev.event_idx;

    /* Block 0 through the shared request helper, compared whole. */
    u32 used = 0, saved = check_every;
    check_every = 1;
    u8 st = blk_request(VIRTIO_BLK_T_IN, 0, data[0], BLOCK, &used);
    check_read(0, data[0], st, used);
    check_every = saved;

    u32 *results = (u32 *)VB_RESULTS, total = warmup + count, most = 0;
    if (mode == 1)
        qd1(total, warmup, results);
    else if (mode == 2)
        most = qd32(total, warmup);
    else
        doorbell_cost(mode, total, warmup, gap, results);
    *(volatile u64 *)VB_END = rdtsc();
    u32 completed = mode <= 2 ? reads - timed_from : count; /* timed reads, or timed brackets */
    mark(mark_value);
    *(volatile u32 *)VB_COMPLETED = completed;
    *(volatile u32 *)VB_MAX_IN_FLIGHT = most;
    *(volatile u32 *)VB_STATUS_ERRORS = status_errors;
    *(volatile u32 *)VB_MISMATCHES = mismatches;
    *(volatile u32 *)VB_FULL_CHECKS = full_checks;
    *(volatile u32 *)VB_DONE = VB_DONE_MAGIC;
    return 0;
}
