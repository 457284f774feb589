# Declarations of csrc/tap.h, csrc/frame_read.h and csrc/vnet.h for pynet/tap.pxi
# and pynet/packet.pxi.
from libc.stdint cimport uint32_t, uint64_t
from pynet._cdefs.skb cimport sk_buff

cdef extern from "tap.h" nogil:
    enum:
        IFNAMSIZ
    int tap_open(const char *name, int vnet_hdr, char *ifname)
    int tap_set_persist(int fd, int persist)
    int tap_set_offload(int fd, unsigned int tun_flags)
    int tap_write_batch(int fd, sk_buff **skbs, int n, int vnet_hdr, int *status, uint64_t *sent_bytes)
    long tap_bench_write_loop(int fd, const unsigned char *frame, uint32_t length, long count)

cdef extern from "frame_read.h" nogil:
    enum:
        RX_FRAME_MAX
    int frame_read_batch(int fd, int sock, sk_buff **skbs, int n, int vnet_hdr,
                         uint32_t gro_max_len, uint64_t tstamp_ns, int *bad, int *merged)

cdef extern from "<linux/if_tun.h>":
    pass

cdef extern from "vnet.h":
    enum:
        TUN_F_CSUM
        TUN_F_TSO4
        TUN_F_TSO6
        TUN_F_TSO_ECN
        TUN_F_USO4
        TUN_F_USO6

