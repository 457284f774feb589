/* packet.h - AF_PACKET I/O for pynet's PacketDevice (pynet/dev/packet.py).
 *
 * Receive: a TPACKET_V3 ring (blocks of frames the kernel fills and hands
 * over whole), frames copied out into skbs; or, without a ring, one
 * recvmsg() per frame straight into the skb (frame_read.h): one copy per
 * byte where the ring costs two, the better choice for 64 KB GSO frames,
 * while the ring's batches win for MSS-sized ones. Transmit: a separate socket
 * of protocol 0 (it never receives), frames sent with sendmmsg() in batches,
 * PACKET_QDISC_BYPASS. With vnet_hdr both sockets use PACKET_VNET_HDR, so
 * GSO frames cross whole in both directions. Plain C, no Python.h; called
 * with the GIL released. Functions return a count or -errno.
 */
#ifndef PYNET_PACKET_H
#define PYNET_PACKET_H

#include <stddef.h>
#include "skb.h"

struct pkt_rx {
    int fd;
    int vnet_hdr;
    unsigned char *map;        /* the ring; NULL: frames are read with recvmsg */
    size_t map_len;
    unsigned int block_size, block_nr;
    unsigned int cur;          /* block being read */
    unsigned int left;         /* frames left in it (0: not yet taken) */
    unsigned char *next;       /* next frame in it */
};

/* A receive socket bound to ifindex (all protocols, not its own output).
 * block_nr > 0: with a ring of block_nr blocks of block_size bytes, each
 * handed over after retire_ms at the latest; 0: no ring, and rcvbuf bytes of
 * socket buffer (SO_RCVBUFFORCE where allowed) bound the kernel's queue. */
int pkt_rx_open(struct pkt_rx *r, int ifindex, int vnet_hdr, unsigned int block_size,
                unsigned int block_nr, unsigned int retire_ms, int rcvbuf);
void pkt_rx_close(struct pkt_rx *r);
/* Take frames into up to n empty skbs. Frames that do not fit, were
 * truncated or carry a bad virtio header count in *bad. gro_max_len
 * (vnet_hdr only; 0: off): the frames that continue a TCP run join its
 * head instead (gro_run_extend), up to that IPv4 length; *merged counts
 * them. When the queue ran dry, *dropped is what the kernel dropped for
 * want of room since it was last asked (PACKET_STATISTICS), else 0.
 * Returns the skbs filled or -errno. */
int pkt_rx_batch(struct pkt_rx *r, struct sk_buff *const *skbs, int n, uint32_t gro_max_len,
                 uint64_t tstamp_ns, int *bad, int *merged, unsigned int *dropped);

int pkt_tx_open(int ifindex, int vnet_hdr, int qdisc_bypass);
/* Send up to n frames with sendmmsg, status[i] 0 or -errno (dropped);
 * *sent_bytes adds up the frames sent. Stops at EAGAIN/ENOBUFS; returns how
 * many skbs were consumed. */
int pkt_tx_batch(int fd, struct sk_buff *const *skbs, int n, int vnet_hdr, int *status,
                 uint64_t *sent_bytes);

#endif
