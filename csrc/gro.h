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

/* What a segment must agree on with its run, and where the run stands. */
struct gro_flow {
    const unsigned char *ip, *th;   /* the head's headers */
    uint32_t head;                  /* index of the head skb */
    uint32_t next_seq;              /* the sequence number the next segment must carry */
    uint32_t mss;                   /* the run's segment size; 0 once the run has ended */
    uint32_t ip_len;                /* the run's IPv4 length so far */
    uint32_t max_len;               /* and the most it may reach */
    uint32_t thlen;
};

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

/* GRO as a driver reads: the frames that continue a TCP run go straight
 * into the run's first skb, the head. The frame reader (frame_read.c: a TAP,
 * or AF_PACKET without its ring) reads the next frame's headers into a
 * scratch buffer of gro_run_hdr_len bytes and its payload right behind the
 * head's, so a merge copies nothing; the AF_PACKET ring reader (packet.c)
 * copies the payload from the ring to the head, as it would have copied the
 * frame to an skb of its own. PSH does not end a
 * run (Linux's GRO flushes there, so as not to hold data back; every frame
 * of a read batch goes up in the same poll anyway). */
struct gro_run {
    struct gro_flow flow;
    struct sk_buff *head;
};

/* Open a run at skb (just read, data at the Ethernet header, checksum
 * vouched for by the device: CHECKSUM_PARTIAL or _UNNECESSARY) that may
 * grow to max_len bytes of IPv4 datagram. Returns 0 when skb cannot head
 * one: not TCP/IPv4 data GRO may merge, or a short last segment. */
int gro_run_start(struct gro_run *run, struct sk_buff *skb, uint32_t max_len);

/* The header bytes a frame that continues the run has. */
static inline uint32_t gro_run_hdr_len(const struct gro_run *run)
{
    return 14 + 20 + run->flow.thlen;
}

/* A frame of len bytes whose first gro_run_hdr_len bytes are at hdr, and
 * its payload at payload (NULL: already in place behind the head's data).
 * gso_size is the frame's own (0: one segment); csum_ok: the device
 * vouched for its checksum. Returns 1 when the frame joined the head (its
 * payload is the head's now; the IPv4 length (0 past 65,535, as BIG TCP)
 * and header checksum, PSH, gso_size and gso_segs rewritten; the head
 * CHECKSUM_UNNECESSARY), or 0 when it must go up on its own: the run is
 * over. */
int gro_run_extend(struct gro_run *run, const unsigned char *hdr, uint32_t len,
                   uint16_t gso_size, int csum_ok, const unsigned char *payload);

#endif
