/* tap.h - Linux TAP device I/O for pynet's TapDevice (pynet/dev/tap.py).
 *
 * Plain C, called by pynet/tap.pxi with the GIL released. The descriptor is
 * non-blocking; reads and writes loop over several frames per call and stop
 * at EAGAIN. Functions return a count or -errno.
 */
#ifndef PYNET_TAP_H
#define PYNET_TAP_H

#include <net/if.h>
#include "skb.h"

/* The longest frame a TAP hands its reader: a 64 KB IP packet (GSO, or the
 * largest MTU) behind a VLAN-tagged Ethernet header. Every receive skb has
 * room for one. */
#define TAP_FRAME_MAX (65536u + 14u + 4u)

/* Create or attach the TAP called name (empty: the kernel picks one, written
 * back to ifname). vnet_hdr turns on IFF_VNET_HDR with a 10-byte header. */
int tap_open(const char *name, int vnet_hdr, char ifname[IFNAMSIZ]);
int tap_set_persist(int fd, int persist);
/* TUNSETOFFLOAD with TUN_F_* flags: what the kernel may hand the reader. */
int tap_set_offload(int fd, unsigned int tun_flags);

/* Read frames into up to n empty skbs (each with room for a whole frame
 * past its headroom). Malformed virtio headers are counted in *bad and their
 * skb reused. gro_max_len (vnet_hdr only; 0: off): a TCP run's following
 * frames are read straight into its head's tailroom and merged there
 * (gro_run_extend), up to that IPv4 length; *merged counts them. Returns the
 * number of skbs filled, or -errno when the first read fails with
 * something other than EAGAIN. */
int tap_read_batch(int fd, struct sk_buff *const *skbs, int n, int vnet_hdr,
                   uint32_t gro_max_len, uint64_t tstamp_ns, int *bad, int *merged);

/* Write up to n frames. status[i] is 0 (sent) or -errno (dropped: the
 * kernel refused it); *sent_bytes adds up the frames sent. Stops at EAGAIN;
 * returns the number of skbs consumed (sent or dropped), the rest are for a
 * later call. */
int tap_write_batch(int fd, struct sk_buff *const *skbs, int n, int vnet_hdr, int *status,
                    uint64_t *sent_bytes);

/* Bench-only baseline: write the same frame count times with a plain write()
 * loop (busy-retry on EAGAIN). Returns frames written or -errno. */
long tap_bench_write_loop(int fd, const unsigned char *frame, uint32_t len, long count);

#endif
