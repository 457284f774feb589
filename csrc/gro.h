/* gro.h - generic receive offload for TCP/IPv4 (Linux's net/core/gro.c and
 * net/ipv4/tcp_offload.c, reduced to one receive batch).
 *
 * A batch of received frames (data at the Ethernet header) is planned in
 * one pass: consecutive in-order segments of one flow whose headers agree
 * are assigned to the first of them, the head. The caller then gives each
 * head enough tailroom and gro_receive_fill appends the others' payloads, so the
 * stack above sees one skb of up to 64 KB per run instead of one per MSS.
 *
 * Plain C, no Python.h; the Cython glue is pynet/gro.pxi.
 */
#ifndef PYNET_GRO_H
#define PYNET_GRO_H

#include <stdint.h>
#include "skb.h"

#define GRO_MAX_FLOWS 8          /* open flows per batch, as Linux's MAX_GRO_SKBS */
#define GRO_MAX_IP_LEN 65535u    /* a merged datagram still fits tot_len */

struct gro_plan {
    /* head[i] == i: skb i goes up (alone or as a head); head[i] < i: its
     * payload is appended to skb head[i] and skb i is dropped */
    uint32_t *head;
    /* for heads: payload bytes the others add (the tailroom needed) */
    uint32_t *extra;
    /* skb i's TCP checksum was verified here (or trusted, as the device
     * said): it goes up CHECKSUM_UNNECESSARY */
    uint8_t *verified;
    uint32_t merged;             /* skbs folded into a head */
    uint32_t bad_csum;           /* segments whose checksum failed: left alone */
};

/* Plan the batch skbs[0..n). Reads only; nothing is changed. */
void gro_receive_plan(struct sk_buff *const *skbs, uint32_t n, struct gro_plan *plan);

/* Carry out the plan: every head must have plan->extra[head] bytes of
 * tailroom in a private buffer. Heads get the payloads appended, IPv4
 * tot_len and header checksum rewritten, PSH if a merged segment had it,
 * gso_size (the first segment's payload), gso_segs, SKB_GSO_TCPV4. */
void gro_receive_fill(struct sk_buff *const *skbs, uint32_t n, const struct gro_plan *plan);

#endif
