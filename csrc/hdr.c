/* hdr.c - TCP and IPv4 header build and parse; see hdr.h. */
#include "hdr.h"

#include <string.h>

#include "csum.h"

enum {
    TCPOPT_EOL = 0, TCPOPT_NOP = 1, TCPOPT_MSS = 2, TCPOPT_WINDOW = 3, TCPOPT_SACK_PERM = 4,
    TCPOPT_SACK = 5, TCPOPT_TIMESTAMP = 8, TCPOPT_FASTOPEN = 34, TCPOPT_EXP = 254,
};
#define TCPOPT_FASTOPEN_MAGIC 0xF989
#define FASTOPEN_COOKIE_MIN 4

const char *hdr_strerror(int err)
{
    switch (err) {
    case HDR_ESHORT: return "shorter than its header";
    case HDR_EDOFF: return "bad doff";
    case HDR_EOPT: return "malformed option";
    case HDR_EVERSION: return "not IP version 4";
    case HDR_EIHL: return "bad ihl";
    case HDR_ETOTLEN: return "bad tot_len";
    case HDR_ECSUM: return "bad header checksum";
    case HDR_ETOOBIG: return "too big";
    default: return "ok";
    }
}

/* RFC 7413 4.1.1: a cookie is 4 to 16 bytes; none at all is a request. */
static inline int cookie_ok(unsigned n)
{
    return n == 0 || (n >= FASTOPEN_COOKIE_MIN && n <= HDR_FASTOPEN_COOKIE_MAX);
}

/* The option walk of Linux's tcp_parse_options, strict about lengths. */
static int tcp_parse_options(const unsigned char *p, unsigned n, struct tcp_hot *h)
{
    unsigned i = 0;

    while (i < n) {
        unsigned kind = p[i], size, data;
        if (kind == TCPOPT_EOL)
            return HDR_OK;
        if (kind == TCPOPT_NOP) {
            i++;
            continue;
        }
        if (i + 1 >= n)
            return HDR_EOPT;
        size = p[i + 1];
        if (size < 2 || i + size > n)
            return HDR_EOPT;
        data = size - 2;
        const unsigned char *d = p + i + 2;
        switch (kind) {
        case TCPOPT_MSS:
            if (data != 2)
                return HDR_EOPT;
            break;
        case TCPOPT_WINDOW:
            if (data != 1)
                return HDR_EOPT;
            break;
        case TCPOPT_SACK_PERM:
            if (data != 0)
                return HDR_EOPT;
            break;
        case TCPOPT_TIMESTAMP:
            if (data != 8)
                return HDR_EOPT;
            h->saw_tstamp = 1;
            h->rcv_tsval = csum_get_be32(d);
            h->rcv_tsecr = csum_get_be32(d + 4);
            break;
        case TCPOPT_SACK:
            if (data == 0 || data % 8 || data > 8 * HDR_TCP_NUM_SACKS)
                return HDR_EOPT;
            h->num_sacks = (uint8_t)(data / 8);
            for (unsigned b = 0; b < h->num_sacks; b++) {
                h->sack[b][0] = csum_get_be32(d + 8 * b);
                h->sack[b][1] = csum_get_be32(d + 8 * b + 4);
            }
            break;
        case TCPOPT_FASTOPEN:
            if (!cookie_ok(data))
                return HDR_EOPT;
            break;
        case TCPOPT_EXP:
            if (data >= 2 && (d[0] << 8 | d[1]) == TCPOPT_FASTOPEN_MAGIC && !cookie_ok(data - 2))
                return HDR_EOPT;
            break;
        default:
            break;      /* unknown kinds are skipped, as RFC 9293 3.2 asks */
        }
        i += size;
    }
    return HDR_OK;
}

int tcp_hdr_parse(const unsigned char *p, uint32_t len, struct tcp_hot *h)
{
    if (len < TH_LEN)
        return HDR_ESHORT;
    unsigned doff = (p[TH_DOFF_FLAGS] >> 4) * 4u;
    if (doff < TH_LEN || doff > len)
        return HDR_EDOFF;
    h->source = csum_get_be16(p + TH_SOURCE);
    h->dest = csum_get_be16(p + TH_DEST);
    h->seq = csum_get_be32(p + TH_SEQ);
    h->ack_seq = csum_get_be32(p + TH_ACK_SEQ);
    h->flags = csum_get_be16(p + TH_DOFF_FLAGS) & 0x0fff;
    h->window = csum_get_be16(p + TH_WINDOW);
    h->doff = (uint16_t)doff;
    h->payload_len = len - doff;
    h->saw_tstamp = 0;
    h->num_sacks = 0;
    if (doff == TH_LEN + 12 && csum_get_be32(p + TH_LEN) == 0x0101080au) {
        /* Linux's tcp_fast_parse_options: NOP NOP TS aligned, the common case */
        h->saw_tstamp = 1;
        h->rcv_tsval = csum_get_be32(p + TH_LEN + 4);
        h->rcv_tsecr = csum_get_be32(p + TH_LEN + 8);
        return HDR_OK;
    }
    return tcp_parse_options(p + TH_LEN, doff - TH_LEN, h);
}

int tcp_options_size(const struct tcp_out_options *o)
{
    unsigned n = 0;
    if (o->mss)
        n += 4;
    if (o->ts)
        n += 12;                          /* SACK-permitted rides in its NOPs */
    else if (o->sack_perm)
        n += 4;
    if (o->wscale >= 0)
        n += 4;
    if (o->num_sacks)
        n += 4 + 8u * o->num_sacks;
    if (o->fastopen)
        n += ((o->fastopen == 2 ? 4u : 2u) + o->fastopen_len + 3) & ~3u;
    if (n > TH_MAX_LEN - TH_LEN || o->num_sacks > HDR_TCP_NUM_SACKS
        || o->fastopen_len > HDR_FASTOPEN_COOKIE_MAX)
        return HDR_ETOOBIG;
    return (int)n;
}

/* Linux's tcp_options_write: MSS, [SACK-perm|NOP NOP] TS, [NOP NOP SACK-perm],
 * NOP WS, NOP NOP SACK blocks, Fast Open (NOP-padded). */
static unsigned char *tcp_options_write(unsigned char *p, const struct tcp_out_options *o)
{
    if (o->mss) {
        p[0] = TCPOPT_MSS; p[1] = 4;
        csum_put_be16(p + 2, o->mss);
        p += 4;
    }
    if (o->ts) {
        if (o->sack_perm) {
            p[0] = TCPOPT_SACK_PERM; p[1] = 2;
        } else {
            p[0] = TCPOPT_NOP; p[1] = TCPOPT_NOP;
        }
        p[2] = TCPOPT_TIMESTAMP; p[3] = 10;
        csum_put_be32(p + 4, o->tsval);
        csum_put_be32(p + 8, o->tsecr);
        p += 12;
    } else if (o->sack_perm) {
        p[0] = TCPOPT_NOP; p[1] = TCPOPT_NOP; p[2] = TCPOPT_SACK_PERM; p[3] = 2;
        p += 4;
    }
    if (o->wscale >= 0) {
        p[0] = TCPOPT_NOP; p[1] = TCPOPT_WINDOW; p[2] = 3; p[3] = (unsigned char)o->wscale;
        p += 4;
    }
    if (o->num_sacks) {
        p[0] = TCPOPT_NOP; p[1] = TCPOPT_NOP; p[2] = TCPOPT_SACK;
        p[3] = (unsigned char)(2 + 8 * o->num_sacks);
        p += 4;
        for (unsigned b = 0; b < o->num_sacks; b++, p += 8) {
            csum_put_be32(p, o->sack[b][0]);
            csum_put_be32(p + 4, o->sack[b][1]);
        }
    }
    if (o->fastopen) {
        unsigned len;
        if (o->fastopen == 2) {
            len = 4u + o->fastopen_len;
            p[0] = TCPOPT_EXP; p[1] = (unsigned char)len;
            csum_put_be16(p + 2, TCPOPT_FASTOPEN_MAGIC);
        } else {
            len = 2u + o->fastopen_len;
            p[0] = TCPOPT_FASTOPEN; p[1] = (unsigned char)len;
        }
        memcpy(p + len - o->fastopen_len, o->fastopen_cookie, o->fastopen_len);
        for (; len & 3; len++)
            p[len] = TCPOPT_NOP;
        p += len;
    }
    return p;
}

int tcp_hdr_write(unsigned char *p, uint16_t source, uint16_t dest, uint32_t seq,
                  uint32_t ack_seq, uint16_t flags, uint16_t window, uint16_t urg_ptr,
                  const struct tcp_out_options *o)
{
    unsigned hl = (unsigned)(tcp_options_write(p + TH_LEN, o) - p);
    csum_put_be16(p + TH_SOURCE, source);
    csum_put_be16(p + TH_DEST, dest);
    csum_put_be32(p + TH_SEQ, seq);
    csum_put_be32(p + TH_ACK_SEQ, ack_seq);
    csum_put_be16(p + TH_DOFF_FLAGS, (uint16_t)((hl / 4) << 12 | (flags & 0x0fff)));
    csum_put_be16(p + TH_WINDOW, window);
    csum_put_be16(p + TH_CHECK, 0);
    csum_put_be16(p + TH_URG_PTR, urg_ptr);
    return (int)hl;
}

void ipv4_hdr_write(unsigned char *p, uint32_t saddr, uint32_t daddr, uint8_t protocol,
                    uint16_t id, uint8_t ttl, uint8_t tos, uint16_t frag_off, uint16_t tot_len)
{
    p[IPH_VER_IHL] = 0x45;
    p[IPH_TOS] = tos;
    csum_put_be16(p + IPH_TOT_LEN, tot_len);
    csum_put_be16(p + IPH_ID, id);
    csum_put_be16(p + IPH_FRAG_OFF, frag_off);
    p[IPH_TTL] = ttl;
    p[IPH_PROTOCOL] = protocol;
    csum_put_be16(p + IPH_CHECK, 0);
    csum_put_be32(p + IPH_SADDR, saddr);
    csum_put_be32(p + IPH_DADDR, daddr);
    csum_put_be16(p + IPH_CHECK, ip_fast_csum(p, 5));
}

int ipv4_hdr_parse(const unsigned char *p, uint32_t len, int verify, int gso_tcp,
                   struct ipv4_hot *h)
{
    if (len < IPH_LEN)
        return HDR_ESHORT;
    if (p[IPH_VER_IHL] >> 4 != 4)
        return HDR_EVERSION;
    unsigned ihl = (p[IPH_VER_IHL] & 0x0f) * 4u;
    if (ihl < IPH_LEN || ihl > len)
        return HDR_EIHL;
    uint32_t tot_len = csum_get_be16(p + IPH_TOT_LEN);
    if (tot_len == 0 && gso_tcp && len > 0xFFFF)
        tot_len = len;
    if (tot_len < ihl || tot_len > len)
        return HDR_ETOTLEN;
    if (verify && ip_fast_csum(p, ihl / 4) != 0)
        return HDR_ECSUM;
    h->ihl = (uint16_t)ihl;
    h->tot_len = tot_len;
    h->id = csum_get_be16(p + IPH_ID);
    h->frag_off = csum_get_be16(p + IPH_FRAG_OFF);
    h->tos = p[IPH_TOS];
    h->ttl = p[IPH_TTL];
    h->protocol = p[IPH_PROTOCOL];
    h->saddr = csum_get_be32(p + IPH_SADDR);
    h->daddr = csum_get_be32(p + IPH_DADDR);
    return HDR_OK;
}
