/* frame_read.h - reading received frames one per syscall, from a TAP
 * (readv) or an AF_PACKET socket without a ring (recvmsg), with an optional
 * virtio_net_hdr in front of each and GRO straight into the run's first skb.
 *
 * Both descriptors hand over one frame per call and copy it once, from the
 * kernel's skb into the buffer given; pynet's TapDevice and a PacketDevice
 * that reads without its ring share this loop. Plain C, no Python.h; called
 * with the GIL released.
 */
#ifndef PYNET_FRAME_READ_H
#define PYNET_FRAME_READ_H

#include <stdint.h>
#include "skb.h"

/* The longest frame a receive skb must hold: a 64 KB IP packet (GSO, or the
 * largest MTU) behind a VLAN-tagged Ethernet header. */
#define RX_FRAME_MAX (65536u + 14u + 4u)

/* Read frames into up to n empty skbs (each with room for RX_FRAME_MAX bytes
 * past its headroom) until the descriptor has no more (EAGAIN).
 * sock: fd is a socket, read with recvmsg, and a frame longer than the room
 * given (MSG_TRUNC) counts as malformed; otherwise readv.
 * Malformed frames (truncated, too short, a bad virtio header, or one a
 * packet socket refused with EINVAL) are counted in *bad and their skb
 * reused; a packet socket's ENETDOWN ends the batch as EAGAIN does.
 * gro_max_len (vnet_hdr only; 0: off): a TCP run's following frames are
 * read straight into its head's tailroom and merged there (gro_run_extend),
 * up to that IPv4 length; *merged counts them. Returns the number of skbs filled, or -errno when the first read
 * fails with something other than EAGAIN. */
int frame_read_batch(int fd, int sock, struct sk_buff *const *skbs, int n, int vnet_hdr,
                     uint32_t gro_max_len, uint64_t tstamp_ns, int *bad, int *merged);

#endif
