/* vnet.c - virtio_net_hdr <-> skb checksum/GSO state (see vnet.h). */
#include <string.h>
#include "vnet.h"

/* x86 and the legacy virtio header are both little-endian; the kernel reads
 * the header in native order unless TUNSETVNETLE/BE says otherwise. */

int vnet_hdr_from_skb(const struct sk_buff *skb, struct virtio_net_hdr *h)
{
    const unsigned char *d = skb_data(skb);
    uint32_t len = skb_len(skb);

    memset(h, 0, sizeof(*h));
    if (skb->ip_summed == CHECKSUM_PARTIAL) {
        uint32_t start = (uint32_t)skb->csum_start - skb->data;
        if (skb->csum_start < skb->data || start + skb->csum_offset + 2u > len)
            return -1;
        h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
        h->csum_start = (uint16_t)start;
        h->csum_offset = skb->csum_offset;
    }
    if (skb->gso_size) {
        uint32_t t = skb->gso_type & ~(uint32_t)(SKB_GSO_DODGY | SKB_GSO_TCP_ECN);
        uint32_t l4;
        if (t == SKB_GSO_TCPV4)
            h->gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
        else if (t == SKB_GSO_TCPV6)
            h->gso_type = VIRTIO_NET_HDR_GSO_TCPV6;
        else if (t == SKB_GSO_UDP_L4)
            h->gso_type = VIRTIO_NET_HDR_GSO_UDP_L4;
        else
            return -1;
        if (skb->gso_type & SKB_GSO_TCP_ECN)
            h->gso_type |= VIRTIO_NET_HDR_GSO_ECN;
        /* GSO needs the checksum left partial: the kernel fills it per segment. */
        if (!(h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
            return -1;
        l4 = h->csum_start;
        if (t == SKB_GSO_UDP_L4)
            h->hdr_len = (uint16_t)(l4 + 8);
        else if (l4 + 13 <= len)
            h->hdr_len = (uint16_t)(l4 + ((d[l4 + 12] >> 4) * 4u));
        else
            return -1;
        h->gso_size = skb->gso_size;
    }
    return 0;
}

/* The checksum a NEEDS_CSUM header asks for lies inside the frame's len bytes. */
static inline int vnet_csum_in_frame(const struct virtio_net_hdr *h, uint32_t len)
{
    return (uint32_t)h->csum_start + h->csum_offset + 2u <= len;
}

/* A GSO packet always carries a partial checksum (virtio spec 5.1.6.2). */
static inline int vnet_gso_has_partial_csum(const struct virtio_net_hdr *h)
{
    return h->gso_size != 0 && (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM);
}

int vnet_hdr_to_skb(const struct virtio_net_hdr *h, struct sk_buff *skb)
{
    uint32_t len = skb_len(skb);

    skb->ip_summed = CHECKSUM_NONE;
    skb->gso_size = 0;
    skb->gso_segs = 0;
    skb->gso_type = 0;
    if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
        if (!vnet_csum_in_frame(h, len) || skb->data + (uint32_t)h->csum_start >= SKB_HDR_UNSET)
            return -1;
        skb->ip_summed = CHECKSUM_PARTIAL;
        skb->csum_start = (uint16_t)(skb->data + h->csum_start);
        skb->csum_offset = h->csum_offset;
    } else if (h->flags & VIRTIO_NET_HDR_F_DATA_VALID) {
        skb->ip_summed = CHECKSUM_UNNECESSARY;
    }
    switch (h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN) {
    case VIRTIO_NET_HDR_GSO_NONE:
        return 0;
    case VIRTIO_NET_HDR_GSO_TCPV4:
        skb->gso_type = SKB_GSO_TCPV4;
        break;
    case VIRTIO_NET_HDR_GSO_TCPV6:
        skb->gso_type = SKB_GSO_TCPV6;
        break;
    case VIRTIO_NET_HDR_GSO_UDP_L4:
        skb->gso_type = SKB_GSO_UDP_L4;
        break;
    default:
        return -1;
    }
    if (!vnet_gso_has_partial_csum(h))
        return -1;
    if (h->gso_type & VIRTIO_NET_HDR_GSO_ECN)
        skb->gso_type |= SKB_GSO_TCP_ECN;
    skb->gso_size = h->gso_size;
    return 0;
}

int vnet_hdr_gro_seg_size(const struct virtio_net_hdr *h, uint32_t len, int *csum_ok)
{
    *csum_ok = (h->flags & (VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID)) != 0;
    /* what vnet_hdr_to_skb would refuse must not hide inside a run */
    if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !vnet_csum_in_frame(h, len))
        return -1;
    if (h->gso_type == VIRTIO_NET_HDR_GSO_NONE)
        return 0;
    return h->gso_type == VIRTIO_NET_HDR_GSO_TCPV4 && vnet_gso_has_partial_csum(h) ? h->gso_size : -1;
}

uint16_t vnet_eth_proto(const struct sk_buff *skb)
{
    const unsigned char *d = skb_data(skb);
    return skb_len(skb) >= 14 ? (uint16_t)(d[12] << 8 | d[13]) : 0;
}
