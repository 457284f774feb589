# packet.pxi - AF_PACKET I/O for pynet.dev.packet (included by _core.pyx).
#
# The TPACKET_V3 ring, the ringless reader and sendmmsg batches live in
# csrc/packet.c; this file owns the receive socket's lifetime and moves
# lists of skbs across with the GIL released. Helpers _skb_pin/_skb_unpin,
# _check_empty and _oserror come from tap.pxi, and so does the transmit side
# (NetDeviceBase.xmit_attach(fd, "packet")).

from pynet._cdefs.packet cimport *


cdef class PacketRx:
    """An AF_PACKET receive socket on one interface: with a TPACKET_V3 ring
    (Linux's packet_mmap; ring=True) or read with one recvmsg per frame."""
    cdef pkt_rx rx
    cdef readonly bint vnet_hdr, ring

    def __cinit__(self):
        self.rx.fd = -1

    def __init__(self, int ifindex, unsigned int block_size=1 << 18, unsigned int block_nr=16,
                 unsigned int retire_ms=1, bint vnet_hdr=False, bint ring=True,
                 int rcvbuf=4 << 20):
        if ring and (block_size < 4096 or block_size & (block_size - 1)):
            raise ValueError("block_size must be a power of two >= 4096")
        if ring and block_nr == 0:
            raise ValueError("a ring needs at least one block")
        if rcvbuf <= 0:
            raise ValueError("rcvbuf must be positive")
        _oserror(pkt_rx_open(&self.rx, ifindex, vnet_hdr, block_size, block_nr if ring else 0,
                             retire_ms, rcvbuf))
        self.vnet_hdr = vnet_hdr
        self.ring = ring

    def __dealloc__(self):
        pkt_rx_close(&self.rx)

    def close(self):
        pkt_rx_close(&self.rx)

    def fileno(self):
        if self.rx.fd < 0:
            raise ValueError("socket is closed")
        return self.rx.fd

    def read(self, skbs, uint64_t tstamp_ns=0, uint32_t gro_max_len=0):
        """Take frames into the empty skbs: (filled, malformed, merged,
        dropped). gro_max_len (with vnet_hdr; 0: off): the frames that
        continue a TCP run join its first skb instead, up to that IPv4
        length. dropped: frames the kernel had no room for, counted when
        the queue ran dry."""
        cdef tuple t = tuple(skbs)
        cdef int n = <int>len(t)
        cdef sk_buff **arr
        cdef int bad = 0, merged = 0, got
        cdef unsigned int dropped = 0
        if self.rx.fd < 0:
            raise ValueError("socket is closed")
        _check_empty(t)
        arr = _skb_pin(t)
        # One reader at a time: the ring's position is not shared between threads.
        with nogil:
            got = pkt_rx_batch(&self.rx, arr, n, gro_max_len, tstamp_ns, &bad, &merged, &dropped)
        _skb_unpin(t, arr)
        _oserror(got)
        return got, bad, merged, dropped


def packet_tx_open(int ifindex, bint vnet_hdr, bint qdisc_bypass):
    """A send-only AF_PACKET socket bound to ifindex: its descriptor."""
    return _oserror(pkt_tx_open(ifindex, vnet_hdr, qdisc_bypass))
