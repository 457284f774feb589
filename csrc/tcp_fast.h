/* tcp_fast.h - C for the bulk TCP fast paths around the Python stack.
 *
 * Plain C, no Python.h; the Cython glue is in pynet/hdr.pxi.
 *
 * Pure-ACK coalescing: a sender of bulk data gets one ACK per receiver
 * super-segment, dozens per receive batch, and each costs a full Python
 * pass. Consecutive pure ACKs of one flow that each advance the cumulative
 * ACK say nothing the last of them does not say (RFC 9293 3.4: ACKs are
 * cumulative), so only the last needs to go up. Anything that carries more
 * -- data, SYN/FIN/RST/URG/ECE/CWR, SACK blocks, the same ACK again (a
 * duplicate ACK, RFC 5681 2), an older timestamp -- is never folded.
 */
#ifndef PYNET_TCP_FAST_H
#define PYNET_TCP_FAST_H

#include <stdint.h>

/* What identifies a pure ACK and orders it against its neighbours. */
struct tcp_ack_key {
    unsigned char eth[14];      /* the Ethernet header, whole (same MACs, same type) */
    uint32_t saddr, daddr;
    uint16_t sport, dport;
    uint32_t seq, ack_seq;
    uint8_t saw_tstamp;
    uint32_t tsval;
};

/* Is the frame p[0..len) (at its Ethernet header) a valid pure TCP/IPv4 ACK:
 * untagged IPv4 without options or fragmentation, valid IPv4 and TCP
 * checksums (the TCP one not checked when csum_ok: the device vouched for
 * it, or the sender left it to offload), flags exactly ACK, no payload,
 * well-formed options without SACK blocks? 1 with *k filled, else 0. */
int tcp_pure_ack(const unsigned char *p, uint32_t len, int csum_ok, struct tcp_ack_key *k);

/* May the pure ACK `next` stand for `prev` as well, prev being dropped?
 * Same flow and sequence number, a cumulative ACK strictly beyond prev's,
 * a timestamp no older (PAWS, RFC 7323 5). */
int tcp_ack_supersedes(const struct tcp_ack_key *prev, const struct tcp_ack_key *next);

#endif
