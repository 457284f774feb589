# Declarations of csrc/packet.h for pynet/packet.pxi.
from libc.stdint cimport uint32_t, uint64_t
from pynet._cdefs.skb cimport sk_buff

cdef extern from "packet.h" nogil:
    struct pkt_rx:
        int fd
    int pkt_rx_open(pkt_rx *r, int ifindex, int vnet_hdr, unsigned int block_size,
                    unsigned int block_nr, unsigned int retire_ms, int rcvbuf)
    void pkt_rx_close(pkt_rx *r)
    int pkt_rx_batch(pkt_rx *r, sk_buff **skbs, int n, uint32_t gro_max_len,
                     uint64_t tstamp_ns, int *bad, int *merged, unsigned int *dropped)
    int pkt_tx_open(int ifindex, int vnet_hdr, int qdisc_bypass)
    int pkt_tx_batch(int fd, sk_buff **skbs, int n, int vnet_hdr, int *status, uint64_t *sent_bytes)
