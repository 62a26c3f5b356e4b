/* A virtio block device test (spec 5.2), one line per check, exit status 0
 * only if every check passed (1 if one failed; virtio.h's own errors stop
 * the guest with 2 or 3).
 *
 * Run:  sharpvisor run vblk.elf --device blk,path=DISK
 * (the block device must be the first --device, or build with
 * -DVBLK_WINDOW=i for the i-th.)
 *
 * The disk image the test prepares: 64 KiB, 128 sectors of 512 bytes, where
 *
 *     byte k of sector s  =  (s * 7 + k) & 0xff          (the image pattern)
 *
 * (7 is odd, so no two sectors are alike and a read from the wrong sector
 * shows.) The guest checks all of it, then writes sectors 16 to 23 (one
 * request) and sector 100 (another) with the complement of the pattern,
 *
 *     byte k of sector s  =  ~(s * 7 + k) & 0xff     (the written pattern)
 *
 * flushes, and reads all 128 sectors back: the written ones must hold the
 * written pattern, all others the image pattern. A host test can check the
 * file the same way afterwards; it stays 64 KiB long (the write past the end
 * must fail, not extend it). The image is changed, so each run needs a fresh
 * one.
 *
 * With readonly=on (the device offers VIRTIO_BLK_F_RO) the writes must fail
 * with IOERR instead, no flush is sent, and the read-back expects the image
 * pattern everywhere.
 *
 * The other checks: the capacity, GET_ID (a NUL-padded ASCII string of at
 * most 20 bytes), reads and a write past the end (IOERR), an unknown request
 * type (UNSUPP), and a read after those errors (the device still works).
 * Output, with the mode line depending on the build (see build.sh):
 *
 *     vblk: window 0, interrupts, event_idx 1, indirect 1, queue size 16, seg_max S, blk_size B
 *     ok capacity 128 sectors
 *     ok read sectors 0-127: image pattern
 *     ok write sectors 16-23
 *     ok write sector 100
 *     ok flush
 *     ok read back sectors 0-127: written pattern on 16-23 and 100, image pattern elsewhere
 *     ok get_id "ID"
 *     ok read at sector 128, past the end: IOERR
 *     ok read of sectors 127-128, across the end: IOERR
 *     ok write at sector 128, past the end: IOERR
 *     ok request type 99: UNSUPP
 *     ok read sector 127 after the errors
 *     vblk: 12 checks passed
 *
 * (read-only: "ok write sectors 16-23, read-only: IOERR", the same for 100,
 * no flush line, "ok read back sectors 0-127: image pattern", 11 checks.)
 *
 * A guest only (a Linux twin has no virtio device). */
#include "sv.h"
#include "virtio.h"
#include "virtio-blk.h"

#ifndef VBLK_WINDOW
#define VBLK_WINDOW 0
#endif

#define DISK_SECTORS 128
#define CHUNK 8 /* sectors per read request */

static u8 data[CHUNK * SECTOR] __attribute__((aligned(SECTOR)));
static u32 checks, failures;

static u8 image_byte(u32 s, u32 k) { return (u8)(s * 7 + k); }
static u8 written_byte(u32 s, u32 k) { return (u8)~(s * 7 + k); }

static void check(int ok, const char *what)
{
    checks++;
    if (!ok)
        failures++;
    sv_puts(ok ? "ok " : "FAIL ");
    sv_puts(what);
    sv_putc('\n');
}

/* Read sectors [first, first + count) into data[]; 1 if that worked. */
static int blk_read(u32 first, u32 count)
{
    u32 used = 0;
    u8 st = blk_request(VIRTIO_BLK_T_IN, first, data, count * SECTOR, &used);
    if (st != VIRTIO_BLK_S_OK || used != count * SECTOR + 1) {
        sv_puts("  read of sector ");
        sv_putu(first);
        sv_puts(": status ");
        sv_putu(st);
        sv_puts(", used length ");
        sv_putu(used);
        sv_puts(", want 0 and ");
        sv_putu(count * SECTOR + 1);
        sv_putc('\n');
        return 0;
    }
    return 1;
}

static int is_written(u32 s, int readonly)
{
    return !readonly && ((s >= 16 && s <= 23) || s == 100);
}

/* Read the whole disk and compare each byte with the pattern it should hold;
 * say where the first difference is. */
static int verify_disk(int after_writes, int readonly)
{
    for (u32 first = 0; first < DISK_SECTORS; first += CHUNK) {
        if (!blk_read(first, CHUNK))
            return 0;
        for (u32 i = 0; i < CHUNK * SECTOR; i++) {
            u32 s = first + i / SECTOR, k = i % SECTOR;
            u8 want = after_writes && is_written(s, readonly) ? written_byte(s, k) : image_byte(s, k);
            if (data[i] != want) {
                sv_puts("  sector ");
                sv_putu(s);
                sv_puts(" byte ");
                sv_putu(k);
                sv_puts(": ");
                sv_putu(data[i]);
                sv_puts(", want ");
                sv_putu(want);
                sv_putc('\n');
                return 0;
            }
        }
    }
    return 1;
}

/* Write sectors [first, first + count) with the written pattern. */
static u8 blk_write(u32 first, u32 count)
{
    for (u32 i = 0; i < count * SECTOR; i++)
        data[i] = written_byte(first + i / SECTOR, i % SECTOR);
    u32 used = 0;
    return blk_request(VIRTIO_BLK_T_OUT, first, data, count * SECTOR, &used);
}

static void get_id(void)
{
    /* 5.2.6: up to 20 bytes of ASCII, NUL-padded, no NUL if all 20 are used. */
    char id[21];
    memset(data, 0, 20);
    u32 used = 0;
    u8 st = blk_request(VIRTIO_BLK_T_GET_ID, 0, data, 20, &used);
    int ok = st == VIRTIO_BLK_S_OK, end = 0;
    for (u32 i = 0; i < 20; i++) {
        u8 c = data[i];
        if (c == 0)
            end = 1;
        else if (end || c < 0x20 || c > 0x7e)
            ok = 0; /* not printable, or text after the padding */
        id[i] = end ? 0 : (char)c;
    }
    id[20] = 0;
    sv_puts(ok ? "ok " : "FAIL ");
    sv_puts("get_id \"");
    sv_puts(ok ? id : "?");
    sv_puts("\"\n");
    checks++;
    failures += !ok;
}

int main(void)
{
    if (virtio_vcpu_index() != 0)
        virtio_park(); /* one driver per device: the others stay out of the way */

    u32 want = (1u << VIRTIO_BLK_F_SEG_MAX) | (1u << VIRTIO_BLK_F_RO) | (1u << VIRTIO_BLK_F_BLK_SIZE) |
               (1u << VIRTIO_BLK_F_FLUSH);
    int err = virtio_init(&dev, VBLK_WINDOW, VIRTIO_ID_BLOCK, want);
    if (err) {
        sv_puts(err == VIRTIO_E_NO_DEVICE ? "vblk: no virtio block device in the window\n"
                                          : "vblk: feature negotiation failed\n");
        return 2;
    }
    /* Configuration is read after FEATURES_OK, before DRIVER_OK (3.1.1 step 7). */
    u64 capacity = virtio_config64(&dev, VIRTIO_BLK_CFG_CAPACITY);
    if (virtio_has(&dev, VIRTIO_BLK_F_SEG_MAX))
        seg_max = virtio_config32(&dev, VIRTIO_BLK_CFG_SEG_MAX);
    u32 blk_size = virtio_has(&dev, VIRTIO_BLK_F_BLK_SIZE) ? virtio_config32(&dev, VIRTIO_BLK_CFG_BLK_SIZE) : 0;
    int readonly = virtio_has(&dev, VIRTIO_BLK_F_RO);
    if (vq_setup(&dev, &requestq, 0) != 0) {
        sv_puts("vblk: no requestq\n");
        return 2;
    }
    virtio_driver_ok(&dev);

    sv_puts("vblk: window ");
    sv_putu(VBLK_WINDOW);
    sv_puts(dev.poll ? ", polling" : ", interrupts");
    sv_puts(", event_idx ");
    sv_putu(dev.event_idx);
    sv_puts(", indirect ");
    sv_putu(dev.indirect);
    sv_puts(", queue size ");
    sv_putu(requestq.size);
    sv_puts(", seg_max ");
    sv_putu(seg_max);
    sv_puts(", blk_size ");
    sv_putu(blk_size);
    if (readonly)
        sv_puts(", read-only");
    sv_putc('\n');

    check(capacity == DISK_SECTORS, "capacity 128 sectors");
    check(verify_disk(0, readonly), "read sectors 0-127: image pattern");

    u8 want_write = readonly ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
    check(blk_write(16, 8) == want_write, readonly ? "write sectors 16-23, read-only: IOERR" : "write sectors 16-23");
    check(blk_write(100, 1) == want_write, readonly ? "write sector 100, read-only: IOERR" : "write sector 100");
    if (!readonly) {
        u32 used = 0;
        check(virtio_has(&dev, VIRTIO_BLK_F_FLUSH) && blk_request(VIRTIO_BLK_T_FLUSH, 0, 0, 0, &used) == VIRTIO_BLK_S_OK,
              "flush");
    }
    check(verify_disk(1, readonly), readonly ? "read back sectors 0-127: image pattern"
                                             : "read back sectors 0-127: written pattern on 16-23 and 100, image pattern elsewhere");
    get_id();

    u32 used = 0;
    check(blk_request(VIRTIO_BLK_T_IN, DISK_SECTORS, data, SECTOR, &used) == VIRTIO_BLK_S_IOERR,
          "read at sector 128, past the end: IOERR");
    check(blk_request(VIRTIO_BLK_T_IN, DISK_SECTORS - 1, data, 2 * SECTOR, &used) == VIRTIO_BLK_S_IOERR,
          "read of sectors 127-128, across the end: IOERR");
    check(blk_request(VIRTIO_BLK_T_OUT, DISK_SECTORS, data, SECTOR, &used) == VIRTIO_BLK_S_IOERR,
          "write at sector 128, past the end: IOERR");
    check(blk_request(99, 0, 0, 0, &used) == VIRTIO_BLK_S_UNSUPP, "request type 99: UNSUPP");
    check(blk_read(DISK_SECTORS - 1, 1) && data[0] == image_byte(DISK_SECTORS - 1, 0) &&
              data[SECTOR - 1] == image_byte(DISK_SECTORS - 1, SECTOR - 1),
          "read sector 127 after the errors");

    sv_puts("vblk: ");
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
