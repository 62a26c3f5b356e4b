/* virtio-blk (spec 5.2) on top of virtio.h: the feature bits, the
 * configuration layout, the request format, and one request sent and waited
 * for. For the block guests (vblk.c, vcode.c); include sv.h and virtio.h
 * first. One device and one request queue per program: the statics below. */
#ifndef VIRTIO_BLK_H
#define VIRTIO_BLK_H

#define SECTOR 512

/* The device's feature bits (5.2.3) and configuration layout (5.2.4). */
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_CFG_CAPACITY 0 /* le64, in 512-byte sectors */
#define VIRTIO_BLK_CFG_SEG_MAX 12 /* le32: data buffers per request */
#define VIRTIO_BLK_CFG_BLK_SIZE 20

/* Request types and status values (5.2.6). */
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2
#define STATUS_UNWRITTEN 0xff /* what we put in the status byte: not a status */

/* A request is three parts in one chain: this header (device-readable), the
 * data (readable for a write, writable for a read or GET_ID), and one status
 * byte the device writes last. */
struct virtio_blk_req_header {
    u32 type;
    u32 reserved;
    u64 sector;
};

static struct virtio_dev dev;
static struct virtq requestq;
static struct virtio_blk_req_header header;
static u8 status;
static u32 seg_max = 2;

/*
 * One request, waited for. `len` bytes of data at `buf` (0 for FLUSH),
 * split into two buffers when it is at least two sectors and the device
 * takes two, so that chains of four descriptors are exercised. Returns the
 * status byte; *used gets the byte count the device reported.
 */
static u8 blk_request(u32 type, u64 sector, void *buf, u32 len, u32 *used)
{
    header.type = type;
    header.reserved = 0;
    header.sector = sector;
    status = STATUS_UNWRITTEN;

    struct vbuf b[4];
    u32 n = 0;
    b[n++] = (struct vbuf){&header, sizeof header};
    u32 segs = len == 0 ? 0 : (len >= 2 * SECTOR && seg_max >= 2 ? 2 : 1);
    for (u32 i = 0; i < segs; i++)
        b[n++] = (struct vbuf){(u8 *)buf + i * (len / segs), len / segs};
    b[n++] = (struct vbuf){&status, 1};
    u32 readable = type == VIRTIO_BLK_T_OUT ? 1 + segs : 1;

    if (vq_submit(&requestq, b, readable, n - readable, &header) < 0)
        virtio_die(&dev, "requestq full with nothing in flight");
    vq_kick(&requestq);
    if (vq_wait_used(&requestq, used) != &header)
        virtio_die(&dev, "used ring returned another request");
    return status;
}

#endif
