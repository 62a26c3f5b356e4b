/*
 * virtio.h: a small virtio driver for Sharpvisor's C guests, written from the
 * OASIS virtio 1.2 specification ("the spec"; section numbers below are its).
 * It speaks the MMIO transport (4.2, register layout version 2) and split
 * virtqueues (2.7), the way docs/guest-abi.md ("Devices: virtio over MMIO")
 * describes Sharpvisor's devices. Include sv.h first; like sv.h this is a
 * header, so a guest stays one translation unit plus start.S.
 *
 * The shape of a driver using it:
 *
 *     virtio_init(&dev, window, VIRTIO_ID_BLOCK, wanted_device_features);
 *     vq_setup(&dev, &queue, 0);       // every queue the driver uses
 *     virtio_driver_ok(&dev);          // the device is live from here
 *     head = vq_submit(&queue, bufs, n_readable, n_writable, token);
 *     vq_kick(&queue);
 *     token = vq_wait_used(&queue, &len);
 *
 * Build-time choices (all default off):
 *   -DVIRTIO_POLL          wait by spinning on the used ring instead of
 *                          sleeping in LHCALL_HALT until the device's
 *                          interrupt (a device's `poll` field can also be
 *                          changed at run time, after virtio_init)
 *   -DVIRTIO_NO_EVENT_IDX  do not accept VIRTIO_F_EVENT_IDX: notifications
 *                          are suppressed with the ring flags instead (2.7.7,
 *                          2.7.10)
 *   -DVIRTIO_NO_INDIRECT   do not accept VIRTIO_F_INDIRECT_DESC: chains are
 *                          built in the descriptor table itself
 *   -DVIRTIO_QUEUE_SIZE=N  the largest queue size used (a power of two,
 *                          default 16; the device's QueueNumMax may lower it)
 *
 * Byte order: every virtio structure is little-endian (le16, le32, le64 in
 * the spec) and so is x86, so plain C integers are the right layout here.
 *
 * Memory ordering, the one subtle part. The device runs on another host
 * thread and reads the rings concurrently. x86 keeps stores in program
 * order and loads in program order, but a load may be performed before an
 * earlier store is visible (the store buffer). So:
 *  - filling descriptors and the ring, then storing avail->idx, needs only
 *    a compiler barrier (a release store): the device cannot see the new idx
 *    before the entries it publishes;
 *  - reading used->idx, then the used entries it covers, needs only a
 *    compiler barrier (an acquire load);
 *  - storing avail->idx (or used_event) and then reading the device's
 *    suppression fields (used->flags, avail_event) or used->idx again is a
 *    store followed by a load: that needs a full fence (virtio_mb), or the
 *    driver and the device can each miss the other's update and both wait.
 * mfence is SSE2, which the guest ABI does not have; a lock-prefixed
 * read-modify-write is a full fence on x86 and is in the ABI.
 *
 * Registers. The ABI (like spec 4.2.2) wants aligned 32-bit accesses below
 * offset 0x100 and plain mov/movzx loads and stores only: a read-modify-write
 * instruction on a register is a guest fault. The accessors below are
 * written in asm so that the compiler can never fuse a load and a store
 * into one such instruction.
 */
#ifndef VIRTIO_H
#define VIRTIO_H

#ifndef SV_H
#error "include sv.h before virtio.h"
#endif

/* ---- The MMIO transport (spec 4.2.2, guest-abi.md) ---------------------- */

#define VIRTIO_MMIO_BASE 0xD0000000u /* device i's window: BASE + 0x1000 * i */
#define VIRTIO_MMIO_STRIDE 0x1000u
#define VIRTIO_MAX_DEVICES 16
#define VIRTIO_IRQ_BASE 16 /* device i raises interrupt line 16 + i */

#define VIRTIO_MMIO_MAGIC_VALUE 0x000
#define VIRTIO_MMIO_VERSION 0x004
#define VIRTIO_MMIO_DEVICE_ID 0x008
#define VIRTIO_MMIO_VENDOR_ID 0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES 0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES 0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL 0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX 0x034
#define VIRTIO_MMIO_QUEUE_NUM 0x038
#define VIRTIO_MMIO_QUEUE_READY 0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS 0x060
#define VIRTIO_MMIO_INTERRUPT_ACK 0x064
#define VIRTIO_MMIO_STATUS 0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW 0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH 0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW 0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH 0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW 0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH 0x0a4
#define VIRTIO_MMIO_CONFIG_GENERATION 0x0fc
#define VIRTIO_MMIO_CONFIG 0x100

#define VIRTIO_MMIO_MAGIC 0x74726976u /* "virt" in little-endian ASCII */

/* InterruptStatus / InterruptACK bits (4.2.2). */
#define VIRTIO_MMIO_INT_VRING 1u  /* the device used buffers */
#define VIRTIO_MMIO_INT_CONFIG 2u /* configuration change (or NEEDS_RESET) */

/* Device IDs (5). */
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_ENTROPY 4

/* Device status bits (2.1). The driver only ever adds bits (2.1.2). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1u /* the guest noticed the device */
#define VIRTIO_STATUS_DRIVER 2u      /* ... and knows how to drive it */
#define VIRTIO_STATUS_DRIVER_OK 4u   /* the driver is ready: device is live */
#define VIRTIO_STATUS_FEATURES_OK 8u /* feature negotiation is complete */
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 64u /* the device gave up */
#define VIRTIO_STATUS_FAILED 128u            /* the driver gave up */

/* Feature bits common to every device (6). Device-specific ones are below 24. */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

/* Plain 32-bit load and store: one mov each, never merged with anything. */
static inline u32 mmio_read32(u32 addr)
{
    u32 v;
    __asm__ volatile("movl (%1), %0" : "=r"(v) : "r"(addr) : "memory");
    return v;
}

static inline void mmio_write32(u32 addr, u32 v)
{
    /* "memory": every ring store the program made before this doorbell or
     * status write is emitted before it (a compiler barrier; x86 keeps the
     * stores themselves in order). */
    __asm__ volatile("movl %0, (%1)" : : "r"(v), "r"(addr) : "memory");
}

/* Configuration space (from 0x100) also takes 8- and 16-bit accesses, and the
 * spec wants each field read at its own width (4.2.2.2). */
static inline u8 mmio_read8(u32 addr)
{
    u32 v;
    __asm__ volatile("movzbl (%1), %0" : "=r"(v) : "r"(addr) : "memory");
    return (u8)v;
}

static inline u16 mmio_read16(u32 addr)
{
    u32 v;
    __asm__ volatile("movzwl (%1), %0" : "=r"(v) : "r"(addr) : "memory");
    return (u16)v;
}

/* A full fence: see "Memory ordering" above. */
static inline void virtio_mb(void)
{
    __asm__ volatile("lock orl $0, (%%esp)" : : : "memory", "cc");
}

/* ---- Split virtqueues (spec 2.7) ----------------------------------------- */

#ifndef VIRTIO_QUEUE_SIZE
#define VIRTIO_QUEUE_SIZE 16
#endif
#if VIRTIO_QUEUE_SIZE < 1 || VIRTIO_QUEUE_SIZE > 256 || (VIRTIO_QUEUE_SIZE & (VIRTIO_QUEUE_SIZE - 1))
#error "VIRTIO_QUEUE_SIZE must be a power of two from 1 to 256"
#endif
/* The most buffers in one chain this driver builds (the indirect tables are
 * sized by it). */
#define VIRTIO_MAX_CHAIN 8

#define VIRTQ_DESC_F_NEXT 1     /* the chain goes on at `next` */
#define VIRTQ_DESC_F_WRITE 2    /* the device writes this buffer (else reads it) */
#define VIRTQ_DESC_F_INDIRECT 4 /* the buffer is a table of descriptors */

#define VIRTQ_AVAIL_F_NO_INTERRUPT 1 /* driver to device: no interrupts, please */
#define VIRTQ_USED_F_NO_NOTIFY 1     /* device to driver: no doorbells, please */

/* One buffer of a chain (2.7.5). addr is guest-physical, which in Sharpvisor
 * is the same number as the pointer (guest-abi.md, "The machine"). */
struct virtq_desc {
    u64 addr;
    u32 len;
    u16 flags;
    u16 next;
};

/* The driver area, the available ring (2.7.6): the driver offers chains by
 * their head index. ring[size] (one past the queue's real size, which may be
 * smaller than VIRTIO_QUEUE_SIZE) is used_event (2.7.10), present because
 * the slot always exists; the device reads it only with EVENT_IDX. */
struct virtq_avail {
    u16 flags;
    u16 idx; /* free-running: where the next head goes, mod size */
    u16 ring[VIRTIO_QUEUE_SIZE + 1];
};

/* The device area, the used ring (2.7.8): the device returns chains with the
 * number of bytes it wrote into them. After ring[size] comes avail_event
 * (2.7.10), the device's say on when it wants a doorbell. */
struct virtq_used_elem {
    u32 id;  /* head of the chain (u32 for padding, the spec says) */
    u32 len; /* bytes the device wrote into the chain's writable buffers */
};

struct virtq_used {
    u16 flags;
    u16 idx;
    /* The first two bytes of ring[size] are avail_event (see vq_avail_event). */
    struct virtq_used_elem ring[VIRTIO_QUEUE_SIZE + 1];
};

/* A buffer to put in a chain: where, how long, and whether the device writes
 * it. A chain lists the device-readable buffers first (2.7.4.2). */
struct vbuf {
    void *addr;
    u32 len;
};

struct virtio_dev;

struct virtq {
    /* The three parts the device reads and writes, each aligned as 2.7 asks
     * (16, 2 and 4 bytes). They need not be contiguous in MMIO version 2:
     * each has its own address register. */
    struct virtq_desc desc[VIRTIO_QUEUE_SIZE] __attribute__((aligned(16)));
    struct virtq_avail avail __attribute__((aligned(2)));
    struct virtq_used used __attribute__((aligned(4)));
    /* One indirect table per descriptor: a chain whose head is descriptor h
     * uses indirect[h], which is therefore free exactly when h is. */
    struct virtq_desc indirect[VIRTIO_QUEUE_SIZE][VIRTIO_MAX_CHAIN] __attribute__((aligned(16)));

    /* The driver's own bookkeeping; the device never sees it. */
    struct virtio_dev *dev;
    void *token[VIRTIO_QUEUE_SIZE]; /* what the caller gave vq_submit, by head */
    u16 index;      /* the queue's number in its device */
    u16 size;       /* QueueNum: a power of two <= VIRTIO_QUEUE_SIZE */
    u16 free_head;  /* free descriptors are chained through desc[].next */
    u16 num_free;
    u16 avail_idx;  /* our copy of avail.idx (only we write it) */
    u16 kicked_idx; /* avail.idx when we last decided whether to kick */
    u16 last_used;  /* how far we have consumed the used ring */
    u8 in_flight[VIRTIO_QUEUE_SIZE]; /* heads the device owns now */
};

/* A device: its register window and what was negotiated. */
struct virtio_dev {
    u32 base;        /* window address */
    u32 window;      /* i: the --device's position, 0-based */
    u32 device_id;
    u32 status;      /* the status bits we have set so far */
    u64 features;    /* negotiated: the bits both sides have */
    u8 poll;         /* 1: spin on used rings; 0: sleep until the interrupt */
    u8 event_idx;    /* VIRTIO_F_EVENT_IDX negotiated */
    u8 indirect;     /* VIRTIO_F_INDIRECT_DESC negotiated */
    u32 interrupts;  /* lines taken for this device (statistics) */
    struct virtq *queues[8];
};

/* Interrupt lines are the VM's, not a vCPU's or a device's driver's: any
 * waiter may take any line (LHCALL_HALT returns the lowest pending one), so
 * each line is handled by whoever takes it, through this table. */
static struct virtio_dev *virtio_by_window[VIRTIO_MAX_DEVICES] SV_UNUSED;

/* How long LHCALL_HALT may sleep. With one vCPU, no limit: the interrupt it
 * waits for always comes to it. With several vCPUs each waiting on its own
 * device, another vCPU can take (and so clear) the interrupt this one waits
 * for; it acknowledges it for us, but cannot wake us, so we sleep at most
 * this long before looking at the used ring again. */
#ifndef VIRTIO_HALT_US
#if defined(SMP_VCPUS) && SMP_VCPUS > 1
#define VIRTIO_HALT_US 1000
#else
#define VIRTIO_HALT_US 0
#endif
#endif

#ifdef VIRTIO_POLL
#define VIRTIO_DEFAULT_POLL 1
#else
#define VIRTIO_DEFAULT_POLL 0
#endif

static inline u32 virtio_read(struct virtio_dev *d, u32 off) { return mmio_read32(d->base + off); }
static inline void virtio_write(struct virtio_dev *d, u32 off, u32 v) { mmio_write32(d->base + off, v); }

static inline int virtio_has(const struct virtio_dev *d, u32 bit) { return (int)((d->features >> bit) & 1); }

/* A driver error it cannot recover from: say which device and why, stop. */
static SV_UNUSED __attribute__((noreturn)) void virtio_die(struct virtio_dev *d, const char *why)
{
    sv_puts("virtio");
    sv_putu(d->window);
    sv_puts(": ");
    sv_puts(why);
    sv_putc('\n');
    sv_shutdown(3);
}

static inline void virtio_set_status(struct virtio_dev *d, u32 bits)
{
    d->status |= bits; /* never clear a bit (2.1.2): write the sum so far */
    virtio_write(d, VIRTIO_MMIO_STATUS, d->status);
}

/* The device has set DEVICE_NEEDS_RESET (2.1.1): it found something wrong
 * in our rings and will not complete what is in flight. */
static SV_UNUSED void virtio_check_alive(struct virtio_dev *d)
{
    if (virtio_read(d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
        virtio_die(d, "device set DEVICE_NEEDS_RESET");
}

/* Configuration space reads. A field wider than 32 bits is read as two
 * 32-bit halves, and the pair is consistent only if ConfigGeneration did not
 * change in between (2.5.1, 4.2.2.2). */
static inline u8 virtio_config8(struct virtio_dev *d, u32 off) { return mmio_read8(d->base + VIRTIO_MMIO_CONFIG + off); }
static inline u16 virtio_config16(struct virtio_dev *d, u32 off) { return mmio_read16(d->base + VIRTIO_MMIO_CONFIG + off); }
static inline u32 virtio_config32(struct virtio_dev *d, u32 off) { return virtio_read(d, VIRTIO_MMIO_CONFIG + off); }

static SV_UNUSED u64 virtio_config64(struct virtio_dev *d, u32 off)
{
    u32 gen, lo, hi;
    do {
        gen = virtio_read(d, VIRTIO_MMIO_CONFIG_GENERATION);
        lo = virtio_config32(d, off);
        hi = virtio_config32(d, off + 4);
    } while (virtio_read(d, VIRTIO_MMIO_CONFIG_GENERATION) != gen);
    return ((u64)hi << 32) | lo;
}

/* Error codes of virtio_init. */
#define VIRTIO_E_NO_DEVICE (-1) /* magic, version or device ID not as expected */
#define VIRTIO_E_FEATURES (-2)  /* VERSION_1 missing or FEATURES_OK refused */

/*
 * Find the device in window `window` and negotiate features (3.1.1 steps 1
 * to 6; the driver then sets up its queues, vq_setup, and calls
 * virtio_driver_ok, steps 7 and 8). `want` is the device-specific feature
 * bits (0-23) the driver can use; of the common ones it takes VERSION_1,
 * which it must (a modern device), and INDIRECT_DESC and EVENT_IDX unless
 * built without them. Returns 0, or a VIRTIO_E_* code with FAILED set.
 *
 * Unlike on many virtio-MMIO platforms, Sharpvisor has no placeholder
 * windows (DeviceID 0) past the last device: reading one is a guest fault.
 * So the caller says which window it expects its device in (the --device
 * order), instead of scanning all sixteen.
 */
static SV_UNUSED int virtio_init(struct virtio_dev *d, u32 window, u32 device_id, u32 want)
{
    memset(d, 0, sizeof *d);
    if (window >= VIRTIO_MAX_DEVICES)
        return VIRTIO_E_NO_DEVICE;
    d->window = window;
    d->base = VIRTIO_MMIO_BASE + VIRTIO_MMIO_STRIDE * window;
    d->poll = VIRTIO_DEFAULT_POLL;

    /* 4.2.3.1: magic and version first; DeviceID 0 would mean "no device
     * here" and forbid touching anything else. */
    if (virtio_read(d, VIRTIO_MMIO_MAGIC_VALUE) != VIRTIO_MMIO_MAGIC || virtio_read(d, VIRTIO_MMIO_VERSION) != 2)
        return VIRTIO_E_NO_DEVICE;
    d->device_id = virtio_read(d, VIRTIO_MMIO_DEVICE_ID);
    if (d->device_id != device_id)
        return VIRTIO_E_NO_DEVICE;

    /* 3.1.1 step 1: reset, and (2.4.2) wait until Status reads back 0. */
    virtio_write(d, VIRTIO_MMIO_STATUS, 0);
    while (virtio_read(d, VIRTIO_MMIO_STATUS) != 0)
        __asm__ volatile("pause");
    /* Steps 2 and 3: we have noticed the device, and can drive it. */
    virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE);
    virtio_set_status(d, VIRTIO_STATUS_DRIVER);

    /* Step 4: read the offered features, 32 at a time, and write back the
     * subset we understand; never a bit we do not know. */
    virtio_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    u32 offered_lo = virtio_read(d, VIRTIO_MMIO_DEVICE_FEATURES);
    virtio_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    u32 offered_hi = virtio_read(d, VIRTIO_MMIO_DEVICE_FEATURES);

    u32 accept_lo = want & 0x00ffffffu;
#ifndef VIRTIO_NO_INDIRECT
    accept_lo |= 1u << VIRTIO_F_INDIRECT_DESC;
#endif
#ifndef VIRTIO_NO_EVENT_IDX
    accept_lo |= 1u << VIRTIO_F_EVENT_IDX;
#endif
    u32 accept_hi = 1u << (VIRTIO_F_VERSION_1 - 32);
    accept_lo &= offered_lo;
    accept_hi &= offered_hi;
    if (!(accept_hi & (1u << (VIRTIO_F_VERSION_1 - 32)))) {
        virtio_set_status(d, VIRTIO_STATUS_FAILED); /* a legacy-only device */
        return VIRTIO_E_FEATURES;
    }
    virtio_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    virtio_write(d, VIRTIO_MMIO_DRIVER_FEATURES, accept_lo);
    virtio_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    virtio_write(d, VIRTIO_MMIO_DRIVER_FEATURES, accept_hi);

    /* Steps 5 and 6: close negotiation, and check the device agreed: it
     * clears FEATURES_OK if it cannot work with our subset. */
    virtio_set_status(d, VIRTIO_STATUS_FEATURES_OK);
    if (!(virtio_read(d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK)) {
        virtio_set_status(d, VIRTIO_STATUS_FAILED);
        return VIRTIO_E_FEATURES;
    }
    d->features = ((u64)accept_hi << 32) | accept_lo;
    d->event_idx = (u8)virtio_has(d, VIRTIO_F_EVENT_IDX);
    d->indirect = (u8)virtio_has(d, VIRTIO_F_INDIRECT_DESC);
    virtio_by_window[window] = d;
    return 0;
}

/* Step 8: the device is live. Only now may the driver ring doorbells. */
static inline void virtio_driver_ok(struct virtio_dev *d) { virtio_set_status(d, VIRTIO_STATUS_DRIVER_OK); }

/* Where used_event and avail_event live: just past each ring's `size`
 * entries, so their place depends on the size chosen at run time. */
static inline u16 *vq_used_event(struct virtq *q) { return &q->avail.ring[q->size]; }
static inline u16 *vq_avail_event(struct virtq *q) { return (u16 *)&q->used.ring[q->size]; }

/* Used-buffer interrupts: wanted (armed) or not. With EVENT_IDX the driver
 * names the used index it wants to hear about (2.7.10): the device
 * interrupts when it writes entry used_event, so used_event = last_used asks
 * for the very next one and last_used - 1 (just behind) for none until the
 * index wraps. Without it, one flag bit says yes or no (2.7.7). */
static inline void vq_arm(struct virtq *q)
{
    if (q->dev->event_idx)
        __atomic_store_n(vq_used_event(q), q->last_used, __ATOMIC_RELEASE);
    else
        __atomic_store_n(&q->avail.flags, 0, __ATOMIC_RELEASE);
}

/* As vq_arm, but with EVENT_IDX the interrupt comes only once `n` (1 or
 * more) further entries are used (used_event = last_used + n - 1): a driver
 * with many requests in flight sleeps through the first completions, and the
 * device goes on serving the rest meanwhile. Without EVENT_IDX the ring flags
 * cannot say "later": as vq_arm. */
static inline void vq_arm_after(struct virtq *q, u16 n)
{
    if (q->dev->event_idx)
        __atomic_store_n(vq_used_event(q), (u16)(q->last_used + n - 1), __ATOMIC_RELEASE);
    else
        vq_arm(q);
}

static inline void vq_disarm(struct virtq *q)
{
    if (q->dev->event_idx)
        __atomic_store_n(vq_used_event(q), (u16)(q->last_used - 1), __ATOMIC_RELEASE);
    else
        __atomic_store_n(&q->avail.flags, VIRTQ_AVAIL_F_NO_INTERRUPT, __ATOMIC_RELEASE);
}

/*
 * Set up queue `index` (4.2.3.2) with the memory in `q`. Call between
 * virtio_init and virtio_driver_ok. Returns 0, or -1 if the device has no
 * such queue.
 */
static SV_UNUSED int vq_setup(struct virtio_dev *d, struct virtq *q, u16 index)
{
    virtio_write(d, VIRTIO_MMIO_QUEUE_SEL, index);
    if (virtio_read(d, VIRTIO_MMIO_QUEUE_READY) != 0)
        return -1; /* already in use: not after a reset */
    u32 max = virtio_read(d, VIRTIO_MMIO_QUEUE_NUM_MAX);
    if (max == 0)
        return -1; /* no such queue */

    /* Zero the rings (the spec asks for it; used.flags must start 0, 2.7.10)
     * and choose the size: ours, or the largest power of two the device
     * takes if that is smaller. */
    memset(q, 0, sizeof *q);
    u32 size = VIRTIO_QUEUE_SIZE;
    while (size > max)
        size >>= 1;
    q->dev = d;
    q->index = index;
    q->size = (u16)size;
    for (u16 i = 0; i < size; i++)
        q->desc[i].next = (u16)(i + 1); /* the free list: 0, 1, ... size-1 */
    q->free_head = 0;
    q->num_free = (u16)size;
    if (d->poll)
        vq_disarm(q); /* a poller needs no interrupts */

    virtio_write(d, VIRTIO_MMIO_QUEUE_NUM, size);
    /* The High halves are 0: RAM lies below 4 GiB. */
    virtio_write(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (u32)q->desc);
    virtio_write(d, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
    virtio_write(d, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (u32)&q->avail);
    virtio_write(d, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
    virtio_write(d, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (u32)&q->used);
    virtio_write(d, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
    virtio_write(d, VIRTIO_MMIO_QUEUE_READY, 1);
    if (index < sizeof d->queues / sizeof d->queues[0])
        d->queues[index] = q;
    return 0;
}

/*
 * Offer one chain (2.7.13): n_out device-readable buffers, then n_in
 * device-writable ones (bufs[0 .. n_out + n_in - 1]). `token` comes back
 * from vq_pop_used when the device is done with the chain, so it must not
 * be NULL (NULL means "nothing used yet"). Returns the head descriptor's
 * index, or -1 if there are not enough free descriptors (wait for a used
 * chain and try again). The device may take the chain as soon as avail.idx
 * is stored here; vq_kick only wakes it up if it sleeps.
 */
static SV_UNUSED int vq_submit(struct virtq *q, const struct vbuf *bufs, u32 n_out, u32 n_in, void *token)
{
    u32 n = n_out + n_in;
    /* No chain may be longer than the queue, indirect or not (2.7.5.3.1). */
    if (n == 0 || n > VIRTIO_MAX_CHAIN || n > q->size || !token)
        return -1;
    /* With INDIRECT_DESC a chain of several buffers takes one descriptor in
     * the ring, pointing at a table that holds the real chain (2.7.5.3). */
    int indirect = q->dev->indirect && n > 1;
    u32 need = indirect ? 1 : n;
    if (need > q->num_free)
        return -1;

    u16 head = q->free_head;
    struct virtq_desc *table = indirect ? q->indirect[head] : q->desc;
    u16 slot = indirect ? 0 : head; /* where buffer i goes in `table` */
    for (u32 i = 0; i < n; i++) {
        struct virtq_desc *dd = &table[slot];
        dd->addr = (u32)bufs[i].addr;
        dd->len = bufs[i].len;
        dd->flags = i >= n_out ? VIRTQ_DESC_F_WRITE : 0;
        if (i + 1 < n) {
            dd->flags |= VIRTQ_DESC_F_NEXT;
            /* In the main table, the next free descriptor (the free list is
             * chained through `next` already); in an indirect table, the
             * next entry. */
            dd->next = indirect ? (u16)(slot + 1) : dd->next;
            slot = dd->next;
        }
    }
    if (indirect) {
        struct virtq_desc *hd = &q->desc[head];
        q->free_head = hd->next;
        hd->addr = (u32)table;
        hd->len = n * sizeof(struct virtq_desc);
        hd->flags = VIRTQ_DESC_F_INDIRECT; /* never with NEXT (2.7.5.3.1) */
    } else {
        /* The last buffer's `next` still links the rest of the free list;
         * it is harmless to the device (no NEXT flag) and is where the
         * free list now starts. */
        q->free_head = q->desc[slot].next;
    }
    q->num_free = (u16)(q->num_free - need);
    q->token[head] = token;
    q->in_flight[head] = 1;

    /* Publish: the ring entry, then the index (2.7.13.2-3). The release
     * store keeps the compiler from moving the descriptor and ring stores
     * after it; x86 keeps them in order for the device. */
    q->avail.ring[q->avail_idx & (q->size - 1)] = head;
    q->avail_idx++;
    __atomic_store_n(&q->avail.idx, q->avail_idx, __ATOMIC_RELEASE);
    return head;
}

/* EVENT_IDX's rule (2.7.10), for either direction: has the other side's
 * event index been crossed by moving our index from old to new? All in
 * 16-bit arithmetic, so it holds across the wrap at 65536. */
static inline int vq_need_event(u16 event, u16 new_idx, u16 old_idx)
{
    return (u16)(new_idx - event - 1) < (u16)(new_idx - old_idx);
}

/* Ring the doorbell for what vq_submit published, unless the device said it
 * does not need it (2.7.13.4, 4.2.3.3). */
static SV_UNUSED void vq_kick(struct virtq *q)
{
    u16 old = q->kicked_idx, now = q->avail_idx;
    q->kicked_idx = now;
    if (old == now)
        return; /* nothing new */
    virtio_mb(); /* our avail.idx store before the loads of the device's fields */
    int kick;
    if (q->dev->event_idx)
        kick = vq_need_event(__atomic_load_n(vq_avail_event(q), __ATOMIC_ACQUIRE), now, old);
    else
        kick = !(__atomic_load_n(&q->used.flags, __ATOMIC_ACQUIRE) & VIRTQ_USED_F_NO_NOTIFY);
    if (kick)
        virtio_write(q->dev, VIRTIO_MMIO_QUEUE_NOTIFY, q->index);
}

static inline int vq_has_used(struct virtq *q)
{
    return __atomic_load_n(&q->used.idx, __ATOMIC_ACQUIRE) != q->last_used;
}

/* Return descriptors h, h.next, ... of a finished chain to the free list. */
static inline void vq_free_chain(struct virtq *q, u16 head)
{
    u16 last = head, n = 1;
    while (q->desc[last].flags & VIRTQ_DESC_F_NEXT) {
        last = q->desc[last].next;
        n++;
    }
    q->desc[last].next = q->free_head;
    q->free_head = head;
    q->num_free = (u16)(q->num_free + n);
}

/*
 * Take the next chain the device has finished (2.7.14), if there is one:
 * returns its token and stores the bytes written in *len; NULL (and *len
 * untouched) if the device has not used anything new. A device that
 * returns a head we did not give it is broken: stop.
 */
static SV_UNUSED void *vq_pop_used(struct virtq *q, u32 *len)
{
    if (!vq_has_used(q)) /* the acquire load: entries below are current */
        return 0;
    struct virtq_used_elem e = q->used.ring[q->last_used & (q->size - 1)];
    q->last_used++;
    if (e.id >= q->size || !q->in_flight[e.id])
        virtio_die(q->dev, "used ring returned a head not in flight");
    q->in_flight[e.id] = 0;
    void *token = q->token[e.id];
    vq_free_chain(q, (u16)e.id);
    if (q->dev->poll && q->dev->event_idx)
        vq_disarm(q); /* keep used_event just behind us: still no interrupts */
    *len = e.len;
    return token;
}

/* Handle interrupt `line`, whichever device's it is: read what happened and
 * acknowledge it (4.2.3.4). The used rings themselves are read by whoever
 * waits on them. */
static SV_UNUSED void virtio_take_interrupt(u32 line)
{
    if (line < VIRTIO_IRQ_BASE || line >= VIRTIO_IRQ_BASE + VIRTIO_MAX_DEVICES)
        return;
    struct virtio_dev *d = virtio_by_window[line - VIRTIO_IRQ_BASE];
    if (!d)
        return;
    __atomic_add_fetch(&d->interrupts, 1, __ATOMIC_RELAXED);
    u32 why = virtio_read(d, VIRTIO_MMIO_INTERRUPT_STATUS);
    why &= VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG; /* ignore undefined bits */
    if (why)
        virtio_write(d, VIRTIO_MMIO_INTERRUPT_ACK, why);
    if (why & VIRTIO_MMIO_INT_CONFIG)
        virtio_check_alive(d); /* a configuration change may be NEEDS_RESET */
}

/*
 * Wait until one of the device's queues in `mask` (bit q for queue q) has a
 * used entry. Polling: spin, looking at Status now and then so that a
 * device that gave up does not leave us spinning forever. Interrupts: ask
 * for one (arm), look once more (the device may have finished before it
 * saw the request), then sleep until an interrupt line is pending, handle
 * it, and look again. Spurious wake-ups are fine (2.7.7.1): we only ever
 * trust the used index.
 */
static SV_UNUSED void virtio_wait(struct virtio_dev *d, u32 mask)
{
    u32 nq = sizeof d->queues / sizeof d->queues[0];
    for (u32 spins = 0;; spins++) {
        if (!d->poll) {
            for (u32 i = 0; i < nq; i++)
                if (((mask >> i) & 1) && d->queues[i])
                    vq_arm(d->queues[i]);
            virtio_mb(); /* the used_event/flags stores before the used.idx loads */
        }
        for (u32 i = 0; i < nq; i++)
            if (((mask >> i) & 1) && d->queues[i] && vq_has_used(d->queues[i]))
                return;
        if (d->poll) {
            __asm__ volatile("pause");
            if ((spins & 0xfff) == 0xfff)
                virtio_check_alive(d);
        } else {
            /* The device makes its line pending only after storing used.idx
             * (guest-abi.md), and a line that became pending since our look
             * makes HALT return at once: no wake-up is lost. */
            virtio_take_interrupt(sv_halt(VIRTIO_HALT_US));
        }
    }
}

/* Wait for the next chain the device finishes on q, and take it. */
static SV_UNUSED void *vq_wait_used(struct virtq *q, u32 *len)
{
    for (;;) {
        void *token = vq_pop_used(q, len);
        if (token)
            return token;
        virtio_wait(q->dev, 1u << q->index);
    }
}

/* This vCPU's index (cpuid leaf 1, EBX bits 24-31: the ABI's APIC ID). */
static SV_UNUSED u32 virtio_vcpu_index(void)
{
    u32 a = 1, b, c = 0, d;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    return b >> 24;
}

/* Where a vCPU that has nothing to do waits for the VM to stop: `hlt` sleeps
 * until an interrupt is pending but does not take it, so it never steals a
 * driver's interrupt the way LHCALL_HALT would. */
static SV_UNUSED __attribute__((noreturn)) void virtio_park(void)
{
    for (;;)
        __asm__ volatile("hlt");
}

#endif
