/* gro.c - TCP/IPv4 receive coalescing over one batch; see gro.h.
 *
 * What may merge follows tcp_gro_receive: the same 4-tuple, the next
 * sequence number, the same ACK, window and option bytes (timestamps
 * included), flags ACK or ACK|PSH and nothing else, no IP options or
 * fragments, the same TOS, TTL and DF. A segment with PSH, or shorter than
 * the first (the MSS), ends its run; a segment that cannot join its flow's
 * run starts a new one. Zero-length segments (pure ACKs) and anything else
 * pass through untouched, in order within their flow.
 */
#include <string.h>

#include "gro.h"
#include "csum.h"

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define IPPROTO_TCP 6
#define TCP_FLAG_PSH 0x08
#define TCP_FLAG_ACK 0x10

static inline uint16_t get16(const unsigned char *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void put16(unsigned char *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }

/* The parts of the frame at d (len bytes, data at the Ethernet header), or
 * 0 if it is not a TCP/IPv4 data segment GRO may touch (it then goes up
 * as it is). Reads the TCP header's first 14 bytes only. */
static int gro_parse_hdr(const unsigned char *d, uint32_t len, const unsigned char **ipp,
                         const unsigned char **thp, uint32_t *thlen, uint32_t *paylen)
{
    if (len < ETH_HLEN + 40 || get16(d + 12) != ETH_P_IP)
        return 0;
    const unsigned char *ip = d + ETH_HLEN;
    /* version 4, no options; not a fragment; TCP; length exactly the frame's
     * (padding or truncation: let the IP layer judge) */
    if (ip[0] != 0x45 || (get16(ip + 6) & 0x3fff) || ip[9] != IPPROTO_TCP)
        return 0;
    uint32_t tot = get16(ip + 2);
    if (tot != len - ETH_HLEN || ip_fast_csum(ip, 5) != 0)
        return 0;
    const unsigned char *th = ip + 20;
    uint32_t hl = (uint32_t)(th[12] >> 4) * 4;
    if (hl < 20 || 20 + hl >= tot)          /* no payload: a pure ACK is not merged */
        return 0;
    uint8_t flags = th[13];
    if ((flags & ~TCP_FLAG_PSH) != TCP_FLAG_ACK || (th[12] & 0x0f))
        return 0;                            /* SYN, FIN, RST, URG, ECE, CWR, reserved bits */
    *ipp = ip;
    *thp = th;
    *thlen = hl;
    *paylen = tot - 20 - hl;
    return 1;
}

/* A batch's skb: GSO ones come from a device that segments for us and are
 * left to the in-place runs of a driver (gro_run_*). */
static int gro_parse(const struct sk_buff *skb, const unsigned char **ipp,
                     const unsigned char **thp, uint32_t *thlen, uint32_t *paylen)
{
    return !skb->gso_size && gro_parse_hdr(skb_data(skb), skb_len(skb), ipp, thp, thlen, paylen);
}

static int gro_csum_ok(const struct sk_buff *skb, const unsigned char *ip, const unsigned char *th,
                       uint32_t tcplen)
{
    if (skb->ip_summed == CHECKSUM_UNNECESSARY || skb->ip_summed == CHECKSUM_PARTIAL)
        return 1;                    /* the device vouched for it (virtio NEEDS_CSUM / DATA_VALID) */
    uint32_t sum = csum_partial(th, tcplen, 0);
    return csum_tcpudp_magic(get32(ip + 12), get32(ip + 16), tcplen, IPPROTO_TCP, sum) == 0;
}

static int same_flow(const struct gro_flow *f, const unsigned char *ip, const unsigned char *th)
{
    return memcmp(f->ip + 12, ip + 12, 8) == 0 && memcmp(f->th, th, 4) == 0;
}

/* seglen: the segment's payload, or its GSO segment size */
static int can_merge(const struct gro_flow *f, const unsigned char *ip, const unsigned char *th,
                     uint32_t thlen, uint32_t seglen, uint32_t paylen)
{
    return thlen == f->thlen
        && get32(th + 4) == f->next_seq
        && seglen <= f->mss
        && f->ip_len + paylen <= f->max_len
        && ip[1] == f->ip[1] && ip[8] == f->ip[8]                 /* TOS, TTL */
        && (ip[6] & 0x40) == (f->ip[6] & 0x40)                    /* DF */
        && memcmp(th + 8, f->th + 8, 4) == 0                      /* ACK */
        && memcmp(th + 14, f->th + 14, 2) == 0                    /* window */
        && memcmp(th + 20, f->th + 20, thlen - 20) == 0;          /* options */
}

void gro_receive_plan(struct sk_buff *const *skbs, uint32_t n, struct gro_plan *plan)
{
    struct gro_flow flows[GRO_MAX_FLOWS];
    uint32_t nflows = 0, oldest = 0;
    plan->merged = 0;
    plan->bad_csum = 0;
    for (uint32_t i = 0; i < n; i++) {
        const unsigned char *ip, *th;
        uint32_t thlen, paylen;
        plan->head[i] = i;
        plan->extra[i] = 0;
        plan->verified[i] = 0;
        if (!gro_parse(skbs[i], &ip, &th, &thlen, &paylen))
            continue;
        if (!gro_csum_ok(skbs[i], ip, th, thlen + paylen)) {
            plan->bad_csum++;        /* TCP will count and drop it */
            continue;
        }
        plan->verified[i] = 1;
        struct gro_flow *f = NULL;
        uint32_t k;
        for (k = 0; k < nflows; k++)
            if (same_flow(&flows[k], ip, th)) {
                f = &flows[k];
                break;
            }
        if (f && f->mss && can_merge(f, ip, th, thlen, paylen, paylen)) {
            plan->head[i] = f->head;
            plan->extra[f->head] += paylen;
            plan->merged++;
            f->next_seq += paylen;
            f->ip_len += paylen;
            if (paylen < f->mss || th[13] & TCP_FLAG_PSH)
                f->mss = 0;          /* the run ends here */
            continue;
        }
        if (!f) {                    /* a new flow; evict the oldest when full */
            if (nflows < GRO_MAX_FLOWS)
                f = &flows[nflows++];
            else {
                f = &flows[oldest];
                oldest = (oldest + 1) % GRO_MAX_FLOWS;
            }
        }
        f->ip = ip;
        f->th = th;
        f->head = i;
        f->thlen = thlen;
        f->next_seq = get32(th + 4) + paylen;
        f->ip_len = 20 + thlen + paylen;
        f->max_len = GRO_MAX_IP_LEN;
        f->mss = th[13] & TCP_FLAG_PSH ? 0 : paylen;
    }
}

void gro_receive_fill(struct sk_buff *const *skbs, uint32_t n, const struct gro_plan *plan)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t h = plan->head[i];
        struct sk_buff *skb = skbs[i];
        if (plan->verified[i])
            skb->ip_summed = CHECKSUM_UNNECESSARY;
        if (h == i)
            continue;
        struct sk_buff *head = skbs[h];
        unsigned char *hip = skb_data(head) + ETH_HLEN;
        const unsigned char *ip = skb_data(skb) + ETH_HLEN;
        uint32_t hl = (uint32_t)(ip[20 + 12] >> 4) * 4;
        uint32_t off = ETH_HLEN + 20 + hl;
        uint32_t paylen = skb_len(skb) - off;
        if (head->gso_size == 0) {   /* the first merge: the head becomes a GSO skb */
            head->gso_size = (uint16_t)(get16(hip + 2) - 20 - hl);
            head->gso_segs = 1;
            head->gso_type = SKB_GSO_TCPV4;
        }
        memcpy(skb_tail_pointer(head), skb_data(skb) + off, paylen);
        __skb_put(head, paylen);
        head->gso_segs++;
        hip[20 + 13] |= ip[20 + 13] & TCP_FLAG_PSH;
        put16(hip + 2, (uint16_t)(get16(hip + 2) + paylen));
        put16(hip + 10, 0);
        put16(hip + 10, ip_fast_csum(hip, 5));
    }
}

int gro_run_start(struct gro_run *run, struct sk_buff *skb, uint32_t max_len)
{
    const unsigned char *ip, *th;
    uint32_t thlen, paylen;
    struct gro_flow *f = &run->flow;
    if ((skb->ip_summed != CHECKSUM_PARTIAL && skb->ip_summed != CHECKSUM_UNNECESSARY)
        || (skb->gso_size && skb->gso_type != SKB_GSO_TCPV4)
        || !gro_parse_hdr(skb_data(skb), skb_len(skb), &ip, &th, &thlen, &paylen))
        return 0;
    uint32_t mss = skb->gso_size ? skb->gso_size : paylen;
    if (paylen % mss)
        return 0;                    /* a short last segment ends its run already */
    run->head = skb;
    f->ip = ip;
    f->th = th;
    f->head = 0;
    f->thlen = thlen;
    f->next_seq = get32(th + 4) + paylen;
    f->mss = mss;
    f->ip_len = 20 + thlen + paylen;
    f->max_len = max_len;
    return 1;
}

int gro_run_extend(struct gro_run *run, const unsigned char *hdr, uint32_t len,
                   uint16_t gso_size, int csum_ok, const unsigned char *payload)
{
    struct gro_flow *f = &run->flow;
    struct sk_buff *head = run->head;
    const unsigned char *ip, *th;
    uint32_t thlen, paylen;
    uint32_t mss = f->mss;
    if (!mss || !csum_ok || (gso_size && gso_size != mss)
        || !gro_parse_hdr(hdr, len, &ip, &th, &thlen, &paylen)
        || !same_flow(f, ip, th) || !can_merge(f, ip, th, thlen, gso_size ? gso_size : paylen, paylen)
        || paylen > skb_tailroom(head)
        || (f->ip_len + paylen - 20 - thlen) / mss > 0xffff) {   /* gso_segs is 16 bits */
        f->mss = 0;
        return 0;
    }
    if (payload)
        memcpy(skb_tail_pointer(head), payload, paylen);
    __skb_put(head, paylen);
    f->next_seq += paylen;
    f->ip_len += paylen;
    if (paylen % mss)
        f->mss = 0;                  /* the run ends here */
    unsigned char *hip = skb_data(head) + ETH_HLEN;
    hip[20 + 13] |= th[13] & TCP_FLAG_PSH;
    /* past 65,535 the length is the skb's (Linux's iph_set_totlen, BIG TCP) */
    put16(hip + 2, f->ip_len > GRO_MAX_IP_LEN ? 0 : (uint16_t)f->ip_len);
    put16(hip + 10, 0);
    put16(hip + 10, ip_fast_csum(hip, 5));
    uint32_t total = f->ip_len - 20 - f->thlen;
    head->gso_size = (uint16_t)mss;
    head->gso_segs = (uint16_t)((total + mss - 1) / mss);
    head->gso_type = SKB_GSO_TCPV4;
    head->ip_summed = CHECKSUM_UNNECESSARY;
    return 1;
}
