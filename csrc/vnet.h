/* vnet.h - the virtio_net_hdr that TAP (IFF_VNET_HDR) and AF_PACKET
 * (PACKET_VNET_HDR) put in front of a frame, mapped to and from an skb's
 * checksum and GSO fields (Linux's virtio_net_hdr_from_skb / _to_skb in
 * include/linux/virtio_net.h). Plain C, no Python.h.
 */
#ifndef PYNET_VNET_H
#define PYNET_VNET_H

#include <linux/virtio_net.h>
#include "skb.h"

/* Newer than some installed kernel headers (Linux 5.18 and 6.2). */
#ifndef VIRTIO_NET_HDR_GSO_UDP_L4
#define VIRTIO_NET_HDR_GSO_UDP_L4 5
#endif
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#define TUN_F_USO6 0x40
#endif

/* Fill h from skb (data at the Ethernet header). Returns 0, or -1 when the
 * skb asks for an offload the header cannot express. */
int vnet_hdr_from_skb(const struct sk_buff *skb, struct virtio_net_hdr *h);

/* Apply h to an skb just read (data at the Ethernet header, len bytes).
 * Returns 0, or -1 for a header that points outside the frame. */
int vnet_hdr_to_skb(const struct virtio_net_hdr *h, struct sk_buff *skb);

/* For a frame of len bytes that may join a GRO run (gro_run_extend): its
 * GSO segment size (0: a single segment), or -1 when it must go up alone
 * (UDP, IPv6 or ECN GSO, or a header vnet_hdr_to_skb would refuse); *csum_ok
 * when the device vouched for its checksum. */
int vnet_hdr_gro_seg_size(const struct virtio_net_hdr *h, uint32_t len, int *csum_ok);

/* The ethertype at the Ethernet header (0 when the frame is shorter). */
uint16_t vnet_eth_proto(const struct sk_buff *skb);

#endif
