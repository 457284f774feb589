/* gso.c - TCP/UDP segmentation offload in software and IPv4 fragmentation. */
#include "gso.h"

#include <string.h>

#include "csum.h"

#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IP_DF 0x4000
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff
#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80

const char *gso_strerror(int err)
{
    switch (err) {
    case GSO_ETRUNC: return "headers do not fit the data";
    case GSO_EHDR: return "not a well-formed IPv4 header";
    case GSO_ETYPE: return "gso_type and IP protocol are not TCPV4/TCP or UDP_L4/UDP";
    case GSO_ESIZE: return "gso_size is 0 or makes a segment longer than 65535 bytes";
    case GSO_ESEGS: return "more than 65535 segments";
    case GSO_EFRAG: return "the packet is an IPv4 fragment";
    case GSO_EDF: return "DF is set: the IP layer must send ICMP fragmentation needed instead";
    case GSO_EMTU: return "mtu leaves less than 8 bytes of data per fragment";
    case GSO_EOPT: return "malformed IPv4 options";
    case GSO_ELEN: return "IPv4 total length does not match the skb's length";
    case GSO_EOFFSET: return "fragment offsets would pass 65528";
    case GSO_EISGSO: return "a GSO skb is segmented, not fragmented";
    case GSO_EROOM: return "headroom too large for 16-bit header offsets";
    default: return "unknown error";
    }
}

/* The IPv4 header at skb->data: its length, or a negative GSO_E*. */
static int ipv4_header_len(const struct sk_buff *skb)
{
    const unsigned char *iph = skb_data(skb);
    uint32_t len = skb_len(skb);
    if (len < 20)
        return GSO_ETRUNC;
    if ((iph[0] >> 4) != 4 || (iph[0] & 0x0f) < 5)
        return GSO_EHDR;
    uint32_t iphl = (iph[0] & 0x0fu) * 4;
    if (iphl > len)
        return GSO_ETRUNC;
    if (skb_headroom(skb) + iphl >= SKB_HDR_UNSET)
        return GSO_EROOM;
    return (int)iphl;
}

/* A new segment: headroom as planned, the input's metadata, headers set. */
static unsigned char *seg_start(struct sk_buff *seg, const struct sk_buff *skb,
                                const struct seg_plan *p, uint32_t len, uint32_t iphl)
{
    seg->data = p->headroom;
    seg->tail = p->headroom + len;
    seg->network_header = (uint16_t)p->headroom;
    seg->transport_header = (uint16_t)(p->headroom + iphl);
    seg->protocol = skb->protocol;
    seg->mark = skb->mark;
    seg->tstamp_ns = skb->tstamp_ns;
    memcpy(seg->cb, skb->cb, sizeof(seg->cb));
    seg->ip_summed = CHECKSUM_NONE;
    return skb_data(seg);
}

static void ip_set_csum(unsigned char *iph, uint32_t iphl)
{
    csum_put_be16(iph + 10, 0);
    csum_put_be16(iph + 10, ip_fast_csum(iph, iphl / 4));
}

/* -- GSO ---------------------------------------------------------------------------- */

int skb_gso_plan(const struct sk_buff *skb, int hw_csum, struct seg_plan *p)
{
    memset(p, 0, sizeof(*p));
    int iphl = ipv4_header_len(skb);
    if (iphl < 0)
        return iphl;
    const unsigned char *iph = skb_data(skb);
    uint32_t len = skb_len(skb);
    if (csum_get_be16(iph + 6) & (IP_MF | IP_OFFSET))
        return GSO_EFRAG;
    uint8_t proto = iph[9];
    uint32_t l4hl;
    if ((skb->gso_type & SKB_GSO_TCPV4) && proto == IPPROTO_TCP) {
        if ((uint32_t)iphl + 20 > len)
            return GSO_ETRUNC;
        l4hl = (iph[iphl + 12] >> 4) * 4u;
        if (l4hl < 20)
            return GSO_EHDR;
    } else if ((skb->gso_type & SKB_GSO_UDP_L4) && proto == IPPROTO_UDP) {
        l4hl = 8;
    } else {
        return GSO_ETYPE;
    }
    if ((uint32_t)iphl + l4hl > len)
        return GSO_ETRUNC;
    uint32_t hdrs = (uint32_t)iphl + l4hl;
    uint32_t mss = skb->gso_size;
    if (mss == 0 || hdrs + mss > 0xffff)
        return GSO_ESIZE;
    uint32_t payload = len - hdrs;
    uint32_t nsegs = payload ? (payload + mss - 1) / mss : 1;
    if (nsegs > 0xffff)
        return GSO_ESEGS;
    p->nsegs = nsegs;
    p->headroom = skb_headroom(skb);
    p->first_len = p->len = hdrs + (nsegs > 1 ? mss : payload);
    p->last_len = hdrs + payload - (nsegs - 1) * mss;
    p->iphl = (uint32_t)iphl;
    p->l4hl = l4hl;
    p->mss = mss;
    p->proto = proto;
    p->hw_csum = hw_csum != 0;
    return GSO_OK;
}

void skb_gso_fill(const struct sk_buff *skb, const struct seg_plan *p,
                  struct sk_buff *const *segs)
{
    const unsigned char *in = skb_data(skb);
    const unsigned char *payload = in + p->iphl + p->l4hl;
    uint32_t saddr = csum_get_be32(in + 12), daddr = csum_get_be32(in + 16);
    uint16_t id = csum_get_be16(in + 4);
    uint32_t seq = p->proto == IPPROTO_TCP ? csum_get_be32(in + p->iphl + 4) : 0;
    uint16_t check_off = p->proto == IPPROTO_TCP ? 16 : 6;

    for (uint32_t i = 0; i < p->nsegs; i++) {
        uint32_t seglen = seg_plan_len(p, i);
        uint32_t plen = seglen - p->iphl - p->l4hl;
        uint32_t l4len = p->l4hl + plen;
        unsigned char *iph = seg_start(segs[i], skb, p, seglen, p->iphl);
        unsigned char *th = iph + p->iphl;
        memcpy(iph, in, p->iphl + p->l4hl);

        /* IPv4: its own length and id, a fresh header checksum (inet_gso_segment). */
        csum_put_be16(iph + 2, (uint16_t)seglen);
        csum_put_be16(iph + 4, (uint16_t)(id + i));
        ip_set_csum(iph, p->iphl);

        if (p->proto == IPPROTO_TCP) {
            /* tcp_gso_segment: FIN and PSH only on the last, CWR only on the first. */
            csum_put_be32(th + 4, seq + i * p->mss);
            if (i + 1 < p->nsegs)
                th[13] &= (unsigned char)~(TCP_FIN | TCP_PSH);
            if (i > 0)
                th[13] &= (unsigned char)~TCP_CWR;
        } else {
            csum_put_be16(th + 4, (uint16_t)l4len);   /* each datagram its own length */
        }
        csum_put_be16(th + check_off, 0);

        const unsigned char *src = payload + (size_t)i * p->mss;
        if (p->hw_csum) {
            /* The device sums from csum_start and folds into the field,
             * which holds the pseudo-header sum meanwhile. */
            memcpy(th + p->l4hl, src, plen);
            csum_put_be16(th + check_off,
                          (uint16_t)~csum_tcpudp_magic(saddr, daddr, l4len, p->proto, 0));
            segs[i]->ip_summed = CHECKSUM_PARTIAL;
            segs[i]->csum_start = segs[i]->transport_header;
            segs[i]->csum_offset = check_off;
        } else {
            uint32_t sum = csum_partial_copy(th + p->l4hl, src, plen, 0);
            sum = csum_add(sum, csum_partial(th, p->l4hl, 0));   /* l4hl is even */
            uint16_t check = csum_tcpudp_magic(saddr, daddr, l4len, p->proto, sum);
            if (check == 0 && p->proto == IPPROTO_UDP)
                check = 0xffff;     /* RFC 768: 0 would mean "no checksum" */
            csum_put_be16(th + check_off, check);
        }
    }
}

/* -- IPv4 fragmentation ------------------------------------------------------------- */

/* The options RFC 791 copies into every fragment (the copy bit, 0x80, of
 * the type), padded with EOL to a multiple of 4 bytes. */
static int copied_options(const unsigned char *opt, uint32_t n, struct seg_plan *p)
{
    uint32_t i = 0, out = 0;
    while (i < n) {
        uint8_t type = opt[i];
        if (type == 0)          /* end of option list */
            break;
        if (type == 1) {        /* no-operation: one byte, not copied */
            i++;
            continue;
        }
        if (i + 1 >= n || opt[i + 1] < 2 || i + opt[i + 1] > n)
            return GSO_EOPT;
        uint8_t olen = opt[i + 1];
        if (type & 0x80) {
            memcpy(p->opts + out, opt + i, olen);
            out += olen;
        }
        i += olen;
    }
    while (out % 4)
        p->opts[out++] = 0;
    p->opt_len = (uint8_t)out;
    return GSO_OK;
}

int ip_fragment_plan(const struct sk_buff *skb, uint32_t mtu, struct seg_plan *p)
{
    memset(p, 0, sizeof(*p));
    if (skb->gso_size)
        return GSO_EISGSO;
    int iphl = ipv4_header_len(skb);
    if (iphl < 0)
        return iphl;
    const unsigned char *iph = skb_data(skb);
    uint32_t len = skb_len(skb);
    if (csum_get_be16(iph + 2) != len)
        return GSO_ELEN;
    int rc = copied_options(iph + 20, (uint32_t)iphl - 20, p);
    if (rc < 0)
        return rc;
    p->headroom = skb_headroom(skb);
    p->iphl = (uint32_t)iphl;
    if (len <= mtu) {
        p->nsegs = 1;
        p->first_len = p->len = p->last_len = len;
        p->first_room = len - (uint32_t)iphl;
        return GSO_OK;
    }
    uint16_t frag = csum_get_be16(iph + 6);
    if (frag & IP_DF)
        return GSO_EDF;
    if (mtu < (uint32_t)iphl + 8)
        return GSO_EMTU;
    uint32_t data = len - (uint32_t)iphl;
    uint32_t later_hl = 20u + p->opt_len;
    uint32_t first_room = (mtu - (uint32_t)iphl) & ~7u;
    uint32_t room = (mtu - later_hl) & ~7u;
    if ((uint32_t)(frag & IP_OFFSET) * 8 + data > 0xffff)
        return GSO_EOFFSET;
    uint32_t rest = data - first_room;      /* data > first_room: it did not fit */
    uint32_t later = (rest + room - 1) / room;
    p->nsegs = 1 + later;
    p->first_room = first_room;
    p->mss = room;
    p->first_len = (uint32_t)iphl + first_room;
    p->len = later_hl + room;
    p->last_len = later_hl + rest - (later - 1) * room;
    return GSO_OK;
}

void ip_fragment_fill(const struct sk_buff *skb, const struct seg_plan *p,
                      struct sk_buff *const *frags)
{
    const unsigned char *in = skb_data(skb);
    const unsigned char *data = in + p->iphl;
    uint16_t frag = csum_get_be16(in + 6);
    uint16_t base = frag & IP_OFFSET;
    uint16_t more = frag & IP_MF;   /* fragmenting a fragment: its MF stays on the last */
    uint32_t later_hl = 20u + p->opt_len;
    uint32_t offset = 0;

    for (uint32_t i = 0; i < p->nsegs; i++) {
        uint32_t fraglen = seg_plan_len(p, i);
        uint32_t hl = i == 0 ? p->iphl : later_hl;
        uint32_t dlen = fraglen - hl;
        unsigned char *iph = seg_start(frags[i], skb, p, fraglen, hl);
        if (i == 0) {
            memcpy(iph, in, hl);
        } else {
            memcpy(iph, in, 20);
            iph[0] = (unsigned char)(0x40 | hl / 4);
            memcpy(iph + 20, p->opts, p->opt_len);
        }
        memcpy(iph + hl, data + offset, dlen);
        uint16_t mf = i + 1 < p->nsegs ? IP_MF : more;
        csum_put_be16(iph + 2, (uint16_t)fraglen);
        csum_put_be16(iph + 6, (uint16_t)((frag & IP_DF) | mf | (base + offset / 8)));
        ip_set_csum(iph, hl);
        offset += dlen;
    }
}
