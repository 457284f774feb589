/* gso.h - software segmentation of TCP/UDP over IPv4 (Linux's
 * tcp_gso_segment / __udp_gso_segment under inet_gso_segment) and IPv4
 * fragmentation (ip_do_fragment), in plain C; glue in pynet/gso.pxi.
 *
 * Both work in two steps so the caller can allocate the output skbs itself:
 * a *_plan() call validates the input and says how many segments of which
 * sizes to make, then *_fill() writes them all. Input and outputs start at
 * the IPv4 header (skb->data); each output is allocated by the caller with
 * seg_plan_size(plan, i) bytes and filled with plan->headroom bytes of
 * headroom, the input's, so link headers can be pushed later.
 */
#ifndef PYNET_GSO_H
#define PYNET_GSO_H

#include <stdint.h>

#include "skb.h"

enum {
    GSO_OK = 0,
    GSO_ETRUNC = -1,     /* headers do not fit the data */
    GSO_EHDR = -2,       /* not a well-formed IPv4 header */
    GSO_ETYPE = -3,      /* gso_type/protocol we cannot segment */
    GSO_ESIZE = -4,      /* gso_size 0, or a segment past 64 KB */
    GSO_ESEGS = -5,      /* more than 65535 segments */
    GSO_EFRAG = -6,      /* input is itself a fragment (GSO) */
    GSO_EDF = -7,        /* fragmentation needed but DF set */
    GSO_EMTU = -8,       /* mtu leaves no room for 8 bytes of data */
    GSO_EOPT = -9,       /* malformed IPv4 options */
    GSO_ELEN = -10,      /* IPv4 total length is not the skb's length */
    GSO_EOFFSET = -11,   /* fragment offsets would pass 65528 */
    GSO_EISGSO = -12,    /* fragmenting a GSO skb */
    GSO_EROOM = -13,     /* headroom past the 16-bit header offsets */
};

const char *gso_strerror(int err);

struct seg_plan {
    uint32_t nsegs;
    uint32_t headroom;      /* each output's headroom: the input's */
    uint32_t first_len;     /* bytes (IPv4 header on) of segment 0 */
    uint32_t len;           /* ... of the segments between */
    uint32_t last_len;      /* ... of the last */
    /* private to the fill step */
    uint32_t iphl, l4hl, mss, first_room;
    uint8_t proto;
    uint8_t hw_csum;
    uint8_t opt_len;        /* later fragments' copied options */
    uint8_t opts[40];
};

static inline uint32_t seg_plan_len(const struct seg_plan *p, uint32_t i)
{
    return i == 0 ? p->first_len : i + 1 == p->nsegs ? p->last_len : p->len;
}

static inline uint32_t seg_plan_size(const struct seg_plan *p, uint32_t i)
{
    return p->headroom + seg_plan_len(p, i);
}

/* GSO: split by skb->gso_size (SKB_GSO_TCPV4 or SKB_GSO_UDP_L4). With
 * hw_csum the transport checksum is left CHECKSUM_PARTIAL holding the
 * pseudo-header sum, for a device with NETIF_F_HW_CSUM; otherwise it is
 * complete. The IPv4 header checksum is always complete. */
int skb_gso_plan(const struct sk_buff *skb, int hw_csum, struct seg_plan *plan);
void skb_gso_fill(const struct sk_buff *skb, const struct seg_plan *plan,
                  struct sk_buff *const *segs);

/* IPv4 fragmentation to fit mtu (RFC 791 section 3.2). An skb that fits
 * comes out as one copy; one that does not but has DF set is GSO_EDF: the
 * IP layer checks DF first and answers with ICMP fragmentation needed. A
 * CHECKSUM_PARTIAL input must be finished first (skb_checksum_help). */
int ip_fragment_plan(const struct sk_buff *skb, uint32_t mtu, struct seg_plan *plan);
void ip_fragment_fill(const struct sk_buff *skb, const struct seg_plan *plan,
                      struct sk_buff *const *frags);

#endif
