/* Code read from a disk runs (docs/guest-abi.md, "Code in buffers"): a
 * device's writes to guest RAM drop the translated code of the pages they
 * touch, so a guest that reads new code over a function it has run many
 * times runs the new code, on every engine.
 *
 * Run:  sharpvisor run vcode.elf --device blk,path=DISK
 * where sector 0 of DISK begins with the bytes b8 de c0 0d 60 c3
 * (mov eax, 0x600dc0de; ret). The guest fills a page with a function that
 * returns 1 (b8 01 00 00 00 c3), calls it 1000 times (past every engine's
 * threshold, so it runs as threaded code, an IL region and machine code),
 * reads sector 0 into the same page, and calls it again:
 *
 *     vcode: before 1000
 *     vcode: after 0x600dc0de
 *
 * Exit status 0 when the second call returned the disk's value, 1 when it
 * ran the old code (a stale translation), 2 or 3 for virtio.h's errors.
 * A guest only (a Linux twin has no virtio device). */
#include "sv.h"
#include "virtio.h"
#include "virtio-blk.h"

#define DISK_VALUE 0x600dc0deu

/* The function's page: a page of its own, so that the disk's write touches
 * only it (guest RAM is all executable; the ABI has no paging). */
static u8 page[4096] __attribute__((aligned(4096)));

typedef u32 (*fn_t)(void);

int main(void)
{
    if (virtio_vcpu_index() != 0)
        virtio_park();
    int err = virtio_init(&dev, 0, VIRTIO_ID_BLOCK, 1u << VIRTIO_BLK_F_SEG_MAX);
    if (err) {
        sv_puts("vcode: no virtio block device in window 0\n");
        return 2;
    }
    if (virtio_has(&dev, VIRTIO_BLK_F_SEG_MAX))
        seg_max = virtio_config32(&dev, VIRTIO_BLK_CFG_SEG_MAX);
    if (vq_setup(&dev, &requestq, 0) != 0) {
        sv_puts("vcode: no requestq\n");
        return 2;
    }
    virtio_driver_ok(&dev);

    static const u8 returns_one[] = {0xb8, 0x01, 0x00, 0x00, 0x00, 0xc3};
    memcpy(page, returns_one, sizeof returns_one);
    /* The call goes through a volatile pointer, so the compiler neither
     * inlines the bytes it cannot see nor keeps one result for all calls. */
    fn_t volatile call = (fn_t)(void *)page;
    u32 sum = 0;
    for (int i = 0; i < 1000; i++)
        sum += call();
    sv_puts("vcode: before ");
    sv_putu(sum);
    sv_putc('\n');

    /* The whole page from the disk: sector 0 and the seven after it. */
    u32 used = 0;
    u8 st = blk_request(VIRTIO_BLK_T_IN, 0, page, sizeof page, &used);
    if (st != VIRTIO_BLK_S_OK) {
        sv_puts("vcode: the read failed\n");
        return 3;
    }
    u32 after = call();
    sv_puts("vcode: after ");
    sv_puthex(after);
    sv_putc('\n');
    return after == DISK_VALUE && sum == 1000 ? 0 : 1;
}
