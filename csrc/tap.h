/* tap.h - Linux TAP device I/O for pynet's TapDevice (pynet/dev/tap.py).
 *
 * Plain C, called by pynet/tap.pxi with the GIL released. The descriptor is
 * non-blocking; writes loop over several frames per call and stop at EAGAIN
 * (reads: frame_read.h). Functions return a count or -errno.
 */
#ifndef PYNET_TAP_H
#define PYNET_TAP_H

#include <net/if.h>
#include "skb.h"

/* Create or attach the TAP called name (empty: the kernel picks one, written
 * back to ifname). vnet_hdr turns on IFF_VNET_HDR with a 10-byte header. */
int tap_open(const char *name, int vnet_hdr, char ifname[IFNAMSIZ]);
int tap_set_persist(int fd, int persist);
/* TUNSETOFFLOAD with TUN_F_* flags: what the kernel may hand the reader. */
int tap_set_offload(int fd, unsigned int tun_flags);

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
