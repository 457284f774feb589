/* hdr.h - build and parse the hot fields of TCP and IPv4 headers.
 *
 * Plain C, no Python.h; the Cython glue is pynet/hdr.pxi. The Python views
 * in pynet/wire (tcp.py, ipv4.py) are the reference these are tested against:
 * the same validation, the same option layout (Linux's tcp_options_write).
 * Multi-byte fields are big-endian on the wire, host order in the structs.
 */
#ifndef PYNET_HDR_H
#define PYNET_HDR_H

#include <stdint.h>

/* Field offsets, as struct iphdr and struct tcphdr lay them out. */
enum {
    IPH_VER_IHL = 0, IPH_TOS = 1, IPH_TOT_LEN = 2, IPH_ID = 4, IPH_FRAG_OFF = 6,
    IPH_TTL = 8, IPH_PROTOCOL = 9, IPH_CHECK = 10, IPH_SADDR = 12, IPH_DADDR = 16,
    IPH_LEN = 20,
};
enum {
    TH_SOURCE = 0, TH_DEST = 2, TH_SEQ = 4, TH_ACK_SEQ = 8, TH_DOFF_FLAGS = 12,
    TH_WINDOW = 14, TH_CHECK = 16, TH_URG_PTR = 18,
    TH_LEN = 20, TH_MAX_LEN = 60,
};

#define HDR_IP_DF 0x4000
#define HDR_TCP_NUM_SACKS 4
#define HDR_FASTOPEN_COOKIE_MAX 16

/* Errors (negative); hdr_strerror() names them. */
enum {
    HDR_OK = 0,
    HDR_ESHORT = -1,     /* fewer bytes than the fixed header */
    HDR_EDOFF = -2,      /* doff < 5 or past the buffer */
    HDR_EOPT = -3,       /* a malformed TCP option */
    HDR_EVERSION = -4,   /* IP version is not 4 */
    HDR_EIHL = -5,       /* ihl < 5 or past the buffer */
    HDR_ETOTLEN = -6,    /* tot_len < header or > buffer */
    HDR_ECSUM = -7,      /* bad IPv4 header checksum */
    HDR_ETOOBIG = -8,    /* a datagram over 65,535 bytes, options over 40 */
};
const char *hdr_strerror(int err);

/* What tcp_hdr_parse reads: the header and the options of every segment
 * (Linux's tcp_options_received, for the fields the fast path uses). */
struct tcp_hot {
    uint16_t source, dest;
    uint32_t seq, ack_seq;
    uint16_t flags;         /* the 12 bits after doff: FIN 0x01 ... CWR 0x80, AE 0x100 */
    uint16_t window;
    uint16_t doff;          /* header length in bytes */
    uint32_t payload_len;
    uint8_t saw_tstamp;
    uint32_t rcv_tsval, rcv_tsecr;
    uint8_t num_sacks;
    uint32_t sack[HDR_TCP_NUM_SACKS][2];
};

/* Parse the TCP segment p[0..len): 0, or HDR_ESHORT / HDR_EDOFF / HDR_EOPT.
 * Options are validated as pynet.wire.tcp does (lengths of every kind pynet
 * speaks, Fast Open cookie sizes); SYN-only options are checked, not returned. */
int tcp_hdr_parse(const unsigned char *p, uint32_t len, struct tcp_hot *h);

/* What tcp_hdr_write puts in the options, in Linux's order and alignment. */
struct tcp_out_options {
    uint16_t mss;           /* 0: none */
    int16_t wscale;         /* -1: none */
    uint8_t sack_perm;
    uint8_t ts;             /* send tsval/tsecr */
    uint32_t tsval, tsecr;
    uint8_t num_sacks;
    uint32_t sack[HDR_TCP_NUM_SACKS][2];
    int8_t fastopen;        /* 0 none, 1 kind 34, 2 experimental kind 254 + magic */
    uint8_t fastopen_len;   /* cookie bytes (0 = a cookie request) */
    uint8_t fastopen_cookie[HDR_FASTOPEN_COOKIE_MAX];
};

/* Bytes of options (a multiple of 4), or HDR_ETOOBIG past 40. */
int tcp_options_size(const struct tcp_out_options *o);

/* Write a TCP header with options at p (room for 20 + tcp_options_size bytes);
 * the check field is left 0. Returns the header length. */
int tcp_hdr_write(unsigned char *p, uint16_t source, uint16_t dest, uint32_t seq,
                  uint32_t ack_seq, uint16_t flags, uint16_t window, uint16_t urg_ptr,
                  const struct tcp_out_options *o);

/* Write a 20-byte IPv4 header at p with its checksum. */
void ipv4_hdr_write(unsigned char *p, uint32_t saddr, uint32_t daddr, uint8_t protocol,
                    uint16_t id, uint8_t ttl, uint8_t tos, uint16_t frag_off, uint16_t tot_len);

/* What ipv4_hdr_parse reads. */
struct ipv4_hot {
    uint16_t ihl;           /* header length in bytes */
    uint32_t tot_len;       /* over 65535 only for a BIG TCP GSO packet */
    uint16_t id;
    uint16_t frag_off;      /* flags and offset, as on the wire */
    uint8_t tos, ttl, protocol;
    uint32_t saddr, daddr;
};

/* Validate and read the IPv4 header at p[0..len), checksum included when
 * verify: 0 or HDR_ESHORT / HDR_EVERSION / HDR_EIHL / HDR_ETOTLEN / HDR_ECSUM.
 * gso_tcp: p is a TCP GSO packet, whose tot_len of 0 stands for len when
 * len is over 65535 (BIG TCP, Linux's iph_totlen). */
int ipv4_hdr_parse(const unsigned char *p, uint32_t len, int verify, int gso_tcp,
                   struct ipv4_hot *h);

#endif
