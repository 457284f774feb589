# packet.pxi - AF_PACKET I/O for pynet.dev.packet (included by _core.pyx).
#
# The TPACKET_V3 ring and sendmmsg batches live in csrc/packet.c; this file
# owns the ring's lifetime and moves lists of skbs across with the GIL
# released. Helpers _skb_array and _oserror come from tap.pxi.

from pynet._cdefs.packet cimport *


cdef class PacketRing:
    """A TPACKET_V3 receive ring on one interface (Linux's packet_mmap)."""
    cdef pkt_ring ring
    cdef readonly bint vnet_hdr

    def __cinit__(self):
        self.ring.fd = -1

    def __init__(self, int ifindex, unsigned int block_size=1 << 18, unsigned int block_nr=16,
                 unsigned int retire_ms=1, bint vnet_hdr=False):
        if block_size < 4096 or block_size & (block_size - 1):
            raise ValueError("block_size must be a power of two >= 4096")
        _oserror(pkt_rx_open(&self.ring, ifindex, block_size, block_nr, retire_ms, vnet_hdr))
        self.vnet_hdr = vnet_hdr

    def __dealloc__(self):
        pkt_rx_close(&self.ring)

    def close(self):
        pkt_rx_close(&self.ring)

    def fileno(self):
        if self.ring.fd < 0:
            raise ValueError("ring is closed")
        return self.ring.fd

    def read(self, list skbs, uint64_t tstamp_ns=0):
        """Copy frames from the ring into the empty skbs: (filled, dropped)."""
        cdef Py_ssize_t n = len(skbs)
        cdef sk_buff **arr
        cdef int bad = 0, got
        if self.ring.fd < 0:
            raise ValueError("ring is closed")
        arr = _skb_array(skbs, n)
        for i in range(n):
            if skb_shared_buffer(arr[i]) or skb_len(arr[i]) != 0:
                free(arr)
                raise SKBError("ring read needs empty, private skbs")
        with nogil:
            got = pkt_rx_batch(&self.ring, arr, <int>n, tstamp_ns, &bad)
        free(arr)
        return got, bad


def packet_tx_open(int ifindex, bint vnet_hdr, bint qdisc_bypass):
    """A send-only AF_PACKET socket bound to ifindex: its descriptor."""
    return _oserror(pkt_tx_open(ifindex, vnet_hdr, qdisc_bypass))


def packet_send_skbs(int fd, list skbs, bint vnet_hdr):
    """sendmmsg the skbs in batches: (consumed, [(index, errno) refused])."""
    cdef Py_ssize_t n = len(skbs)
    cdef sk_buff **arr = _skb_array(skbs, n)
    cdef int *status = <int *>malloc(max(n, 1) * sizeof(int))
    cdef int done
    if status == NULL:
        free(arr)
        raise MemoryError()
    with nogil:
        done = pkt_tx_batch(fd, arr, <int>n, vnet_hdr, status)
    errors = [(i, -status[i]) for i in range(done) if status[i] != 0]
    free(arr)
    free(status)
    return done, errors
