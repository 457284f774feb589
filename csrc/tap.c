/* tap.c - TAP device I/O (see tap.h). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/if_tun.h>
#include "tap.h"
#include "gro.h"
#include "vnet.h"

/* Ethernet, IPv4 and TCP headers at their longest */
#define TAP_GRO_HDR_MAX (14 + 20 + 60)

int tap_open(const char *name, int vnet_hdr, char ifname[IFNAMSIZ])
{
    struct ifreq ifr;
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (vnet_hdr ? IFF_VNET_HDR : 0);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0)
        goto fail;
    if (vnet_hdr) {
        int sz = sizeof(struct virtio_net_hdr);
        if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0)
            goto fail;
    }
    /* A persistent TAP keeps the last opener's offloads: always reset them. */
    if (ioctl(fd, TUNSETOFFLOAD, 0u) < 0)
        goto fail;
    memcpy(ifname, ifr.ifr_name, IFNAMSIZ);
    ifname[IFNAMSIZ - 1] = 0;
    return fd;
fail:;
    int err = errno;
    close(fd);
    return -err;
}

int tap_set_persist(int fd, int persist)
{
    return ioctl(fd, TUNSETPERSIST, persist ? 1 : 0) < 0 ? -errno : 0;
}

int tap_set_offload(int fd, unsigned int tun_flags)
{
    return ioctl(fd, TUNSETOFFLOAD, tun_flags) < 0 ? -errno : 0;
}

static void rx_reset(struct sk_buff *skb)
{
    skb->tail = skb->data;
    skb->ip_summed = CHECKSUM_NONE;
    skb->gso_size = skb->gso_segs = 0;
    skb->gso_type = 0;
}

int tap_read_batch(int fd, struct sk_buff *const *skbs, int n, int vnet_hdr,
                   uint32_t gro_max_len, uint64_t tstamp_ns, int *bad, int *merged)
{
    struct virtio_net_hdr h;
    struct iovec iov[3];
    struct gro_run run;
    unsigned char hdr[TAP_GRO_HDR_MAX];
    int in_run = 0;
    int i = 0;

    *bad = 0;
    *merged = 0;
    iov[0].iov_base = &h;
    iov[0].iov_len = sizeof(h);
    while (i < n) {
        struct sk_buff *skb = skbs[i];
        ssize_t r;
        rx_reset(skb);
        /* In a run, the next frame's headers go to hdr and its payload
         * straight behind the head's: a frame of the run joins it without
         * a copy; any other is gathered into skb (rare: a run ends at the
         * first frame that does not continue it). */
        uint32_t hl = in_run ? gro_run_hdr_len(&run) : 0, tail = 0;
        if (hl) {
            /* room for the longest frame, and no more than skb could gather */
            uint32_t room = skb_tailroom(skb) > hl ? skb_tailroom(skb) - hl : 0;
            tail = skb_tailroom(run.head) < room ? skb_tailroom(run.head) : room;
            if (hl + tail < TAP_FRAME_MAX)
                hl = 0;
        }
        if (hl) {
            iov[1].iov_base = hdr;
            iov[1].iov_len = hl;
            iov[2].iov_base = skb_tail_pointer(run.head);
            iov[2].iov_len = tail;
            r = readv(fd, iov, 3);
        } else {
            in_run = 0;
            iov[1].iov_base = skb_tail_pointer(skb);
            iov[1].iov_len = skb_tailroom(skb);
            r = vnet_hdr ? readv(fd, iov, 2) : readv(fd, iov + 1, 1);
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || i > 0)
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

int tap_write_batch(int fd, struct sk_buff *const *skbs, int n, int vnet_hdr, int *status,
                    uint64_t *sent_bytes)
{
    struct virtio_net_hdr h;
    struct iovec iov[2];
    int i;

    *sent_bytes = 0;
    for (i = 0; i < n; i++) {
        const struct sk_buff *skb = skbs[i];
        ssize_t r;
        iov[0].iov_base = &h;
        iov[0].iov_len = sizeof(h);
        iov[1].iov_base = skb_data(skb);
        iov[1].iov_len = skb_len(skb);
        if (vnet_hdr && vnet_hdr_from_skb(skb, &h) < 0) {
            status[i] = -EINVAL;
            continue;
        }
        do
            r = vnet_hdr ? writev(fd, iov, 2) : write(fd, iov[1].iov_base, iov[1].iov_len);
        while (r < 0 && errno == EINTR);
        if (r < 0 && errno == EAGAIN)
            return i;
        status[i] = r < 0 ? -errno : 0;
        if (r >= 0)
            *sent_bytes += skb_len(skb);
    }
    return i;
}

long tap_bench_write_loop(int fd, const unsigned char *frame, uint32_t len, long count)
{
    long i = 0;
    while (i < count) {
        if (write(fd, frame, len) < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            return -errno;
        }
        i++;
    }
    return i;
}
