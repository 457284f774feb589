/* frame_read.c - one frame per syscall, GRO into the run's head (see frame_read.h). */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include "frame_read.h"
#include "gro.h"
#include "vnet.h"

/* Ethernet, IPv4 and TCP headers at their longest */
#define GRO_HDR_MAX (14 + 20 + 60)

/* One frame into iov[0..iovcnt): its length, 0 for a datagram longer than
 * the iovecs hold (sock only; the rest is lost, so the frame is malformed),
 * or -1 with errno. */
static ssize_t read_frame(int fd, int sock, struct iovec *iov, int iovcnt)
{
    struct msghdr m;
    ssize_t r;

    if (!sock)
        return readv(fd, iov, iovcnt);
    memset(&m, 0, sizeof(m));
    m.msg_iov = iov;
    m.msg_iovlen = (size_t)iovcnt;
    r = recvmsg(fd, &m, 0);
    return r >= 0 && (m.msg_flags & MSG_TRUNC) ? 0 : r;
}

int frame_read_batch(int fd, int sock, struct sk_buff *const *skbs, int n, int vnet_hdr,
                     uint32_t gro_max_len, uint64_t tstamp_ns, int *bad, int *merged)
{
    struct virtio_net_hdr h;
    struct iovec iov[3];
    struct gro_run run;
    unsigned char hdr[GRO_HDR_MAX];
    int in_run = 0;
    int i = 0;

    *bad = 0;
    *merged = 0;
    iov[0].iov_base = &h;
    iov[0].iov_len = sizeof(h);
    while (i < n) {
        struct sk_buff *skb = skbs[i];
        ssize_t r;
        skb_rx_reset(skb);
        /* In a run, the next frame's headers go to hdr and its payload
         * straight behind the head's: a frame of the run joins it without
         * a copy; any other is gathered into skb (rare: a run ends at the
         * first frame that does not continue it). */
        uint32_t hl = in_run ? gro_run_hdr_len(&run) : 0, tail = 0;
        if (hl) {
            /* room for the longest frame, and no more than skb could gather */
            uint32_t room = skb_tailroom(skb) > hl ? skb_tailroom(skb) - hl : 0;
            tail = skb_tailroom(run.head) < room ? skb_tailroom(run.head) : room;
            if (hl + tail < RX_FRAME_MAX)
                hl = 0;
        }
        if (hl) {
            iov[1].iov_base = hdr;
            iov[1].iov_len = hl;
            iov[2].iov_base = skb_tail_pointer(run.head);
            iov[2].iov_len = tail;
            r = read_frame(fd, sock, iov, 3);
        } else {
            in_run = 0;
            iov[1].iov_base = skb_tail_pointer(skb);
            iov[1].iov_len = skb_tailroom(skb);
            r = vnet_hdr ? read_frame(fd, sock, iov, 2) : read_frame(fd, sock, iov + 1, 1);
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            /* A packet socket fails one frame with EINVAL when the kernel
             * cannot express it in a virtio header (packet_rcv_vnet: a GSO
             * type it has no code for); the frame is gone, the next one
             * reads. ENETDOWN comes once after the link went down: like
             * EAGAIN, the socket works again when it is back up. */
            if (sock && errno == EINVAL) {
                if (++*bad >= n)
                    return i;
                continue;
            }
            if (errno == EAGAIN || (sock && errno == ENETDOWN) || i > 0)
                return i;
            return -errno;
        }
        if (vnet_hdr) {
            if ((size_t)r < sizeof(h)) {
                if (++*bad >= n)
                    return i;
                continue;
            }
            r -= sizeof(h);
        }
        if (hl) {
            int csum_ok, seg = vnet_hdr_gro_seg_size(&h, (uint32_t)r, &csum_ok);
            if ((uint32_t)r > hl && seg >= 0
                && gro_run_extend(&run, hdr, (uint32_t)r, (uint16_t)seg, csum_ok, NULL)) {
                ++*merged;
                continue;
            }
            in_run = 0;
            uint32_t first = (uint32_t)r < hl ? (uint32_t)r : hl;
            memcpy(skb_tail_pointer(skb), hdr, first);
            memcpy(skb_tail_pointer(skb) + first, skb_tail_pointer(run.head), (uint32_t)r - first);
        }
        __skb_put(skb, (uint32_t)r);
        if (r < 14 || (vnet_hdr && vnet_hdr_to_skb(&h, skb) < 0)) {
            /* At most n malformed frames per call, as many as good ones:
             * a flood of them must not keep the caller (and its timers) here. */
            if (++*bad >= n)
                return i;
            continue;
        }
        skb->mac_header = (uint16_t)skb->data;
        skb->protocol = vnet_eth_proto(skb);
        skb->tstamp_ns = tstamp_ns;
        if (gro_max_len && vnet_hdr && !in_run)
            in_run = gro_run_start(&run, skb, gro_max_len);
        i++;
    }
    return i;
}
