/* A virtio console echo (spec 5.3, with VIRTIO_CONSOLE_F_MULTIPORT): every
 * byte the host puts in port 0's receiveq (its stdin) goes back out on port
 * 0's transmitq (its stdout), unchanged and in order, until the host says
 * the other end closed (PORT_OPEN with value 0: stdin reached EOF). Then it
 * waits for the last echo to be sent and exits with status 0.
 *
 *     printf 'hello\n' | sharpvisor run vecho.elf --device console
 *
 * prints "hello" and exits 0. The guest prints nothing of its own on
 * success (stdout is the echo); on a failure it prints one line starting
 * "vecho:" (or "virtio0:") and exits non-zero: 1 if port 0 was closed
 * before it was ever added, 2 if there is no console or it lacks MULTIPORT
 * or a queue, 3 if the device broke (DEVICE_NEEDS_RESET) or returned
 * something it was not given.
 *
 * The multiport handshake (5.3.6, 5.3.6.2), as the driver sees it:
 *   1. after DRIVER_OK: driver -> VIRTIO_CONSOLE_DEVICE_READY, value 1
 *   2. device -> VIRTIO_CONSOLE_DEVICE_ADD for port 0 (called PORT_ADD in
 *      older texts)
 *   3. driver -> VIRTIO_CONSOLE_PORT_READY for port 0, value 1; then
 *      VIRTIO_CONSOLE_PORT_OPEN, value 1: our end of the port is open
 *   4. device -> perhaps VIRTIO_CONSOLE_CONSOLE_PORT (we must answer
 *      PORT_OPEN 1), PORT_OPEN 1 (the host end is open), and at EOF
 *      PORT_OPEN 0.
 *
 * The echo is zero-copy: a receive buffer the device has filled is put in
 * the transmitq as it is (the same memory, now device-readable), and goes
 * back to the receiveq when the device has sent it. A buffer is memory; the
 * direction is a property of the descriptor, not of the buffer.
 *
 * A guest only (a Linux twin has no virtio device). */
#include "sv.h"
#include "virtio.h"

#ifndef VECHO_WINDOW
#define VECHO_WINDOW 0
#endif

/* Feature, configuration and queues (5.3.2-5.3.4). */
#define VIRTIO_CONSOLE_F_MULTIPORT 1
#define VIRTIO_CONSOLE_CFG_MAX_NR_PORTS 4 /* le32, after le16 cols and rows */
#define Q_RX 0      /* port 0 receiveq: host to guest data */
#define Q_TX 1      /* port 0 transmitq: guest to host data */
#define Q_CTRL_RX 2 /* control receiveq: device to driver messages */
#define Q_CTRL_TX 3 /* control transmitq: driver to device messages */

/* Control messages (5.3.6.2). */
struct virtio_console_control {
    u32 id;    /* port number */
    u16 event; /* one of the below */
    u16 value;
};
#define VIRTIO_CONSOLE_DEVICE_READY 0
#define VIRTIO_CONSOLE_DEVICE_ADD 1
#define VIRTIO_CONSOLE_DEVICE_REMOVE 2
#define VIRTIO_CONSOLE_PORT_READY 3
#define VIRTIO_CONSOLE_CONSOLE_PORT 4
#define VIRTIO_CONSOLE_RESIZE 5
#define VIRTIO_CONSOLE_PORT_OPEN 6
#define VIRTIO_CONSOLE_PORT_NAME 7

#define NDATA 4     /* data buffers, each in the receiveq or the transmitq */
#define DATA_SIZE 64
#define NCTRL 4     /* control receive buffers */
#define CTRL_SIZE 64 /* a message, plus room for PORT_NAME's name or RESIZE's size */

static struct virtio_dev dev;
static struct virtq rxq, txq, ctrl_rxq, ctrl_txq;
static u8 data[NDATA][DATA_SIZE];
static u8 ctrl_in[NCTRL][CTRL_SIZE] __attribute__((aligned(4)));
static struct virtio_console_control ctrl_out;

static u32 tx_in_flight;  /* data buffers the transmitq holds */
static int port_added;    /* DEVICE_ADD for port 0 seen */
static int host_closed;   /* PORT_OPEN 0 for port 0 seen: stdin's EOF */

static __attribute__((noreturn)) void fail(const char *why, u32 status)
{
    sv_puts("vecho: ");
    sv_puts(why);
    sv_putc('\n');
    sv_shutdown(status);
}

static void post(struct virtq *q, void *buf, u32 len, int device_writes)
{
    struct vbuf b = {buf, len};
    if (vq_submit(q, &b, device_writes ? 0 : 1, device_writes ? 1 : 0, buf) < 0)
        fail("a queue is full", 3); /* cannot happen: NDATA, NCTRL <= queue size */
}

/* Send one control message and wait until the device has taken it, so that
 * ctrl_out can be reused; messages are rare, so waiting costs nothing. */
static void control_send(u32 id, u16 event, u16 value)
{
    ctrl_out = (struct virtio_console_control){id, event, value};
    post(&ctrl_txq, &ctrl_out, sizeof ctrl_out, 0);
    vq_kick(&ctrl_txq);
    u32 len = 0;
    vq_wait_used(&ctrl_txq, &len);
}

static void handle_control(const struct virtio_console_control *m, u32 len)
{
    if (len < sizeof *m)
        return; /* too short to be a message: ignore it */
    switch (m->event) {
    case VIRTIO_CONSOLE_DEVICE_ADD:
        if (m->id != 0) {
            control_send(m->id, VIRTIO_CONSOLE_PORT_READY, 0); /* we drive port 0 only */
            break;
        }
        port_added = 1;
        control_send(0, VIRTIO_CONSOLE_PORT_READY, 1);
        control_send(0, VIRTIO_CONSOLE_PORT_OPEN, 1); /* this program is the port's user */
        break;
    case VIRTIO_CONSOLE_CONSOLE_PORT:
        control_send(m->id, VIRTIO_CONSOLE_PORT_OPEN, 1); /* a MUST of 5.3.6.2.2 */
        break;
    case VIRTIO_CONSOLE_PORT_OPEN:
        if (m->id == 0 && m->value == 0)
            host_closed = 1;
        break;
    case VIRTIO_CONSOLE_DEVICE_REMOVE:
        if (m->id == 0)
            host_closed = 1; /* no port, nothing more to echo */
        break;
    default: /* RESIZE, PORT_NAME: nothing to do for an echo */
        break;
    }
}

int main(void)
{
    if (virtio_vcpu_index() != 0)
        virtio_park();

    int err = virtio_init(&dev, VECHO_WINDOW, VIRTIO_ID_CONSOLE, 1u << VIRTIO_CONSOLE_F_MULTIPORT);
    if (err)
        fail(err == VIRTIO_E_NO_DEVICE ? "no virtio console in the window" : "feature negotiation failed", 2);
    if (!virtio_has(&dev, VIRTIO_CONSOLE_F_MULTIPORT))
        fail("the console does not offer MULTIPORT", 2);
    if (virtio_config32(&dev, VIRTIO_CONSOLE_CFG_MAX_NR_PORTS) < 1)
        fail("max_nr_ports is 0", 2);
    /* With MULTIPORT, queues 2 and 3 exist too (5.3.2). */
    if (vq_setup(&dev, &rxq, Q_RX) || vq_setup(&dev, &txq, Q_TX) || vq_setup(&dev, &ctrl_rxq, Q_CTRL_RX) ||
        vq_setup(&dev, &ctrl_txq, Q_CTRL_TX))
        fail("the console lacks one of its four queues", 2);
    virtio_driver_ok(&dev);

    /* Receive buffers first, so that nothing the device has to say finds
     * no room (5.3.5 step 4); then tell it we are ready for messages. */
    for (u32 i = 0; i < NCTRL; i++)
        post(&ctrl_rxq, ctrl_in[i], CTRL_SIZE, 1);
    for (u32 i = 0; i < NDATA; i++)
        post(&rxq, data[i], DATA_SIZE, 1);
    vq_kick(&ctrl_rxq);
    vq_kick(&rxq);
    control_send(0, VIRTIO_CONSOLE_DEVICE_READY, 1);

    /* The loop: control messages first, then received data, then finished
     * transmissions. Data the host sent before it closed the port is in the
     * receiveq before PORT_OPEN 0 is in the control receiveq, so having seen
     * the close we still echo everything received, then stop once the
     * transmitq has sent it all. */
    u32 all = (1u << Q_RX) | (1u << Q_TX) | (1u << Q_CTRL_RX); /* control_send waits on Q_CTRL_TX */
    for (;;) {
        int progress = 0;
        u8 *buf;
        u32 len = 0;
        while ((buf = vq_pop_used(&ctrl_rxq, &len))) {
            handle_control((const struct virtio_console_control *)buf, len);
            post(&ctrl_rxq, buf, CTRL_SIZE, 1);
            vq_kick(&ctrl_rxq);
            progress = 1;
        }
        while ((buf = vq_pop_used(&rxq, &len))) {
            if (len > DATA_SIZE)
                fail("the receiveq reported more bytes than the buffer holds", 3);
            if (len) {
                post(&txq, buf, len, 0); /* the same bytes, back out */
                tx_in_flight++;
            } else {
                post(&rxq, buf, DATA_SIZE, 1);
            }
            progress = 1;
        }
        vq_kick(&txq);
        while ((buf = vq_pop_used(&txq, &len))) {
            tx_in_flight--;
            post(&rxq, buf, DATA_SIZE, 1); /* sent: ready to receive again */
            progress = 1;
        }
        vq_kick(&rxq);
        if (host_closed && tx_in_flight == 0)
            break;
        if (!progress)
            virtio_wait(&dev, all);
    }
    if (!port_added)
        fail("the port was closed before it was ever added", 1);
    return 0;
}
