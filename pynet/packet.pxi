# packet.pxi - AF_PACKET I/O for pynet.dev.packet (included by _core.pyx).
#
# The TPACKET_V3 ring and sendmmsg batches live in csrc/packet.c; this file
# owns the ring's lifetime and moves lists of skbs across with the GIL
# released. Helpers _skb_pin/_skb_unpin, _check_empty and _oserror come from
# tap.pxi, and so does the transmit side (NetDeviceBase.xmit_attach(fd, "packet")).

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

    def read(self, skbs, uint64_t tstamp_ns=0, uint32_t gro_max_len=0):
        """Copy frames from the ring into the empty skbs: (filled, dropped, merged).
        gro_max_len (with vnet_hdr; 0: off): the frames that continue a TCP run
        are copied behind its first skb instead, up to that IPv4 length."""
        cdef tuple t = tuple(skbs)
        cdef int n = <int>len(t)
        cdef sk_buff **arr
        cdef int bad = 0, merged = 0, got
        if self.ring.fd < 0:
            raise ValueError("ring is closed")
        _check_empty(t)
        arr = _skb_pin(t)
        # One reader at a time: the ring's position is not shared between threads.
        with nogil:
            got = pkt_rx_batch(&self.ring, arr, n, gro_max_len, tstamp_ns, &bad, &merged)
        _skb_unpin(t, arr)
        return got, bad, merged


def packet_tx_open(int ifindex, bint vnet_hdr, bint qdisc_bypass):
    """A send-only AF_PACKET socket bound to ifindex: its descriptor."""
    return _oserror(pkt_tx_open(ifindex, vnet_hdr, qdisc_bypass))
