/* packet.c - AF_PACKET receive (TPACKET_V3 ring or recvmsg) and sendmmsg transmit (see packet.h). */
#define _GNU_SOURCE   /* sendmmsg */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <netinet/in.h>
#include "frame_read.h"
#include "gro.h"
#include "packet.h"
#include "vnet.h"

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

static int bind_ifindex(int fd, int ifindex, uint16_t proto)
{
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof(sll));
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(proto);
    sll.sll_ifindex = ifindex;
    return bind(fd, (struct sockaddr *)&sll, sizeof(sll));
}

/* The TPACKET_V3 ring of r->fd, mapped; -1 with errno. */
static int rx_ring_map(struct pkt_rx *r, unsigned int block_size, unsigned int block_nr,
                       unsigned int retire_ms)
{
    struct tpacket_req3 req;

    memset(&req, 0, sizeof(req));
    req.tp_block_size = block_size;
    req.tp_block_nr = block_nr;
    req.tp_frame_size = 2048;
    req.tp_frame_nr = block_size / 2048 * block_nr;
    req.tp_retire_blk_tov = retire_ms;
    if (setsockopt(r->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0)
        return -1;
    r->map_len = (size_t)block_size * block_nr;
    r->map = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, 0);
    if (r->map == MAP_FAILED) {
        r->map = NULL;
        return -1;
    }
    r->block_size = block_size;
    r->block_nr = block_nr;
    return 0;
}

int pkt_rx_open(struct pkt_rx *r, int ifindex, int vnet_hdr, unsigned int block_size,
                unsigned int block_nr, unsigned int retire_ms, int rcvbuf)
{
    int v = TPACKET_V3, one = 1, err;

    memset(r, 0, sizeof(*r));
    /* Bound to no protocol until the ring (or socket buffer) is set up, so
     * nothing is queued early. */
    r->fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (r->fd < 0)
        return -errno;
    if (setsockopt(r->fd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) < 0
        || (vnet_hdr && setsockopt(r->fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) < 0)
        /* our own transmissions are not input */
        || setsockopt(r->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0)
        goto fail;
    if (block_nr) {
        if (rx_ring_map(r, block_size, block_nr, retire_ms) < 0)
            goto fail;
    } else if (setsockopt(r->fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0
               && setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0) {
        goto fail;      /* root may pass net.core.rmem_max; anyone else gets at most that */
    }
    if (bind_ifindex(r->fd, ifindex, ETH_P_ALL) < 0)
        goto fail;
    r->vnet_hdr = vnet_hdr;
    return 0;
fail:
    err = errno;
    pkt_rx_close(r);
    return -err;
}

void pkt_rx_close(struct pkt_rx *r)
{
    if (r->map)
        munmap(r->map, r->map_len);
    if (r->fd >= 0)
        close(r->fd);
    r->map = NULL;
    r->fd = -1;
}

static struct tpacket_block_desc *block(struct pkt_rx *r, unsigned int i)
{
    return (struct tpacket_block_desc *)(r->map + (size_t)i * r->block_size);
}

/* TP_STATUS_CSUMNOTREADY: the kernel next door left the TCP/UDP checksum
 * for hardware (its skb was CHECKSUM_PARTIAL), so the field holds only the
 * pseudo-header sum. The data is intact; the frame stays CHECKSUM_PARTIAL,
 * as a virtio NEEDS_CSUM frame does, so the stack accepts it and a capture
 * or a forwarder can finish it. Without a virtio header the checksum's
 * place comes from the IPv4 header at tp_net. -1: not a TCP/UDP over IPv4
 * frame whose checksum pynet can place (dropped, counted). */
static int csum_notready_to_skb(struct sk_buff *skb, uint32_t net)
{
    const unsigned char *ip = skb_data(skb) + net;
    uint32_t len = skb_len(skb), start, off;

    if (net < 14 || net + 20 > len || (ip[0] >> 4) != 4 || (ip[6] & 0x1f) || ip[7])
        return -1;                        /* not IPv4, or a fragment */
    start = net + (ip[0] & 0x0f) * 4u;
    if (ip[9] == IPPROTO_TCP)
        off = 16;
    else if (ip[9] == IPPROTO_UDP)
        off = 6;
    else
        return -1;
    if ((ip[0] & 0x0f) < 5 || start + off + 2 > len || skb->data + start >= SKB_HDR_UNSET)
        return -1;
    skb->ip_summed = CHECKSUM_PARTIAL;
    skb->csum_start = (uint16_t)(skb->data + start);
    skb->csum_offset = (uint16_t)off;
    return 0;
}

/* One frame of the ring into skb; 0, or -1 when it must be dropped. */
static int frame_to_skb(struct pkt_rx *r, const struct tpacket3_hdr *h, struct sk_buff *skb)
{
    const unsigned char *mac = (const unsigned char *)h + h->tp_mac;
    struct virtio_net_hdr vh;

    skb_rx_reset(skb);
    if (h->tp_snaplen != h->tp_len || h->tp_snaplen > skb_tailroom(skb) || h->tp_snaplen < 14)
        return -1;
    memcpy(skb_tail_pointer(skb), mac, h->tp_snaplen);
    __skb_put(skb, h->tp_snaplen);
    if (r->vnet_hdr) {
        /* The kernel puts the header right in front of the frame. */
        memcpy(&vh, mac - sizeof(vh), sizeof(vh));
        if (vnet_hdr_to_skb(&vh, skb) < 0)
            return -1;
    } else if (h->tp_status & TP_STATUS_CSUMNOTREADY) {
        if (csum_notready_to_skb(skb, (uint32_t)h->tp_net - h->tp_mac) < 0)
            return -1;
    } else if (h->tp_status & TP_STATUS_CSUM_VALID) {
        skb->ip_summed = CHECKSUM_UNNECESSARY;    /* checked by the kernel */
    }
    skb->mac_header = (uint16_t)skb->data;
    skb->protocol = vnet_eth_proto(skb);
    return 0;
}

/* The frame at h continues the run: its payload copied to the run's head. */
static int frame_to_run(struct gro_run *run, const struct tpacket3_hdr *h)
{
    const unsigned char *mac = (const unsigned char *)h + h->tp_mac;
    struct virtio_net_hdr vh;
    uint32_t hl = gro_run_hdr_len(run);
    int csum_ok, seg;
    if (h->tp_snaplen != h->tp_len || h->tp_snaplen <= hl)
        return 0;
    memcpy(&vh, mac - sizeof(vh), sizeof(vh));
    seg = vnet_hdr_gro_seg_size(&vh, h->tp_snaplen, &csum_ok);
    return seg >= 0 && gro_run_extend(run, mac, h->tp_snaplen, (uint16_t)seg, csum_ok, mac + hl);
}

static int ring_rx_batch(struct pkt_rx *r, struct sk_buff *const *skbs, int n,
                         uint32_t gro_max_len, uint64_t tstamp_ns, int *bad, int *merged)
{
    struct gro_run run;
    int in_run = 0;
    int i = 0;

    *bad = 0;
    *merged = 0;
    while (i < n) {
        struct tpacket_block_desc *bd = block(r, r->cur);
        const struct tpacket3_hdr *h;
        if (r->left == 0) {
            if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
                break;
            r->left = bd->hdr.bh1.num_pkts;
            r->next = (unsigned char *)bd + bd->hdr.bh1.offset_to_first_pkt;
            if (r->left == 0)
                goto release;
        }
        h = (const struct tpacket3_hdr *)r->next;
        if (in_run && frame_to_run(&run, h)) {
            ++*merged;
        } else if (frame_to_skb(r, h, skbs[i]) < 0) {
            in_run = 0;
            (*bad)++;
        } else {
            skbs[i]->tstamp_ns = tstamp_ns;
            in_run = gro_max_len && r->vnet_hdr && gro_run_start(&run, skbs[i], gro_max_len);
            i++;
        }
        r->next += h->tp_next_offset;
        if (--r->left)
            continue;
release:
        __atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
        r->cur = (r->cur + 1) % r->block_nr;
    }
    return i;
}

int pkt_tx_open(int ifindex, int vnet_hdr, int qdisc_bypass)
{
    int one = 1, err;
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if ((vnet_hdr && setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) < 0)
        || (qdisc_bypass && setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0)
        || bind_ifindex(fd, ifindex, 0) < 0) {
        err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

#define PKT_TX_CHUNK 64

int pkt_tx_batch(int fd, struct sk_buff *const *skbs, int n, int vnet_hdr, int *status,
                 uint64_t *sent_bytes)
{
    struct mmsghdr msgs[PKT_TX_CHUNK];
    struct iovec iov[PKT_TX_CHUNK][2];
    struct virtio_net_hdr vh[PKT_TX_CHUNK];
    int done = 0;

    *sent_bytes = 0;
    while (done < n) {
        int m = 0, idx[PKT_TX_CHUNK], r, k;
        /* Build a chunk; a frame the header cannot describe is refused here. */
        while (done + m < n && m < PKT_TX_CHUNK) {
            int j = done + m;
            struct sk_buff *skb = skbs[j];
            struct iovec *v = iov[m];
            status[j] = 0;
            if (vnet_hdr && vnet_hdr_from_skb(skb, &vh[m]) < 0) {
                status[j] = -EINVAL;
                if (m == 0) {
                    done++;
                    continue;
                }
                break;
            }
            v[0].iov_base = &vh[m];
            v[0].iov_len = sizeof(vh[m]);
            v[1].iov_base = skb_data(skb);
            v[1].iov_len = skb_len(skb);
            memset(&msgs[m], 0, sizeof(msgs[m]));
            msgs[m].msg_hdr.msg_iov = vnet_hdr ? v : v + 1;
            msgs[m].msg_hdr.msg_iovlen = vnet_hdr ? 2 : 1;
            idx[m++] = j;
        }
        if (m == 0)
            continue;
        r = sendmmsg(fd, msgs, (unsigned int)m, MSG_DONTWAIT);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == ENOBUFS)
                return done;
            /* The first message failed: drop it, go on with the rest. */
            status[idx[0]] = -errno;
            done = idx[0] + 1;
            continue;
        }
        for (k = 0; k < r; k++)
            *sent_bytes += skb_len(skbs[idx[k]]);
        done = idx[r - 1] + 1;
    }
    return done;
}

/* Frames the kernel dropped (ring or socket buffer full) since last asked:
 * reading PACKET_STATISTICS resets it. The kernel picks the struct by
 * PACKET_VERSION (V3 here, ring or not); tp_drops is the second field of
 * tpacket_stats and tpacket_stats_v3 alike. */
static unsigned int rx_drops(int fd)
{
    union {
        struct tpacket_stats v1;
        struct tpacket_stats_v3 v3;
    } st;
    socklen_t len = sizeof(st);
    return getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) < 0 ? 0 : st.v1.tp_drops;
}

int pkt_rx_batch(struct pkt_rx *r, struct sk_buff *const *skbs, int n, uint32_t gro_max_len,
                 uint64_t tstamp_ns, int *bad, int *merged, unsigned int *dropped)
{
    int got = r->map ? ring_rx_batch(r, skbs, n, gro_max_len, tstamp_ns, bad, merged)
                     : frame_read_batch(r->fd, 1, skbs, n, r->vnet_hdr, gro_max_len, tstamp_ns,
                                        bad, merged);
    /* asked only once the queue ran dry: a syscall per poll, not per frame */
    *dropped = got >= 0 && got < n ? rx_drops(r->fd) : 0;
    return got;
}
