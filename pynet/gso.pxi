# gso.pxi - segmentation (GSO) and IPv4 fragmentation in C (csrc/gso.c): pynet.gso.
#
# Included by _core.pyx. The C plans the split and validates the input, this
# file allocates the output skbs (one malloc each, their final size), and the
# C fills them all in one call, without the GIL for large packets.

from cpython.mem cimport PyMem_Malloc, PyMem_Free
from pynet._cdefs.gso cimport (GSO_OK, seg_plan, gso_strerror, seg_plan_size,
                               skb_gso_plan, skb_gso_fill, ip_fragment_plan,
                               ip_fragment_fill)


cdef list _split(const sk_buff *skb, seg_plan *plan, bint gso, SKB owner):
    """The output skbs of plan, filled from skb (a snapshot of owner's)."""
    cdef uint32_t i, n = plan.nsegs
    cdef list out = []
    cdef SKB seg
    cdef sk_buff **segs = <sk_buff **>PyMem_Malloc(n * sizeof(sk_buff *))
    if segs == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            seg = alloc_skb(seg_plan_size(plan, i))
            seg.sk = owner.sk
            seg.dev = owner.dev
            seg.dst = owner.dst
            seg.cb = owner.cb
            segs[i] = &seg.skb
            out.append(seg)
        if skb_len(skb) >= CSUM_NOGIL_BYTES:
            with nogil:
                if gso:
                    skb_gso_fill(skb, plan, segs)
                else:
                    ip_fragment_fill(skb, plan, segs)
        elif gso:
            skb_gso_fill(skb, plan, segs)
        else:
            ip_fragment_fill(skb, plan, segs)
    finally:
        PyMem_Free(segs)
    return out


def skb_gso_segment(SKB skb not None, bint hw_csum=False):
    """Split a GSO skb (TCP or UDP over IPv4) into gso_size segments.

    skb.data is at the IPv4 header, whose IHL and the TCP data offset give
    the layout; gso_type has SKB_GSO_TCPV4 (TCP) or SKB_GSO_UDP_L4 (UDP).
    Each segment is a new skb starting at its own IPv4 header (length, id + n,
    header checksum), with the input's headroom. TCP segments carry seq + n *
    gso_size, FIN and PSH only on the last, CWR only on the first (Linux's
    tcp_gso_segment); UDP segments are datagrams with their own header.
    Transport checksums are complete, or with hw_csum (a device with
    NETIF_F_HW_CSUM) CHECKSUM_PARTIAL over the pseudo-header sum.
    The input is not changed. Raises ValueError for what it cannot split.
    """
    cdef seg_plan plan
    # Plan and fill from one snapshot of the pointers, with the buffer pinned
    # (no reallocation), whatever other threads do while the GIL is free.
    cdef sk_buff snap = skb.skb
    cdef int rc = skb_gso_plan(&snap, hw_csum, &plan)
    if rc != GSO_OK:
        raise ValueError(f"skb_gso_segment: {gso_strerror(rc).decode()} "
                         f"(len {skb_len(&snap)}, gso_size {snap.gso_size}, "
                         f"gso_type {snap.gso_type:#x})")
    skb.exports += 1
    try:
        return _split(&snap, &plan, True, skb)
    finally:
        skb.exports -= 1


def ip_fragment_skb(SKB skb not None, mtu):
    """Split the IPv4 datagram at skb.data into fragments of at most mtu bytes.

    RFC 791 section 3.2: data offsets are multiples of 8, MF is set on all but
    the last, every fragment keeps the id, and later fragments copy only the
    options whose copy bit is set. A datagram that fits comes back as one
    copy. ValueError if it must be split but has DF set -- the IP layer checks
    DF before calling and sends ICMP fragmentation needed (RFC 1191) -- or
    when mtu leaves less than 8 bytes of data. A CHECKSUM_PARTIAL input is
    finished first (skb_checksum_help), as Linux's ip_do_fragment does.
    """
    cdef uint32_t m = _ranged(mtu, 0xffffffff, "mtu")
    cdef seg_plan plan
    if skb.skb.ip_summed == CHECKSUM_PARTIAL:
        skb_checksum_help(skb)
    cdef sk_buff snap = skb.skb      # as in skb_gso_segment
    cdef int rc = ip_fragment_plan(&snap, m, &plan)
    if rc != GSO_OK:
        raise ValueError(f"ip_fragment_skb: {gso_strerror(rc).decode()} "
                         f"(len {skb_len(&snap)}, mtu {m})")
    skb.exports += 1
    try:
        return _split(&snap, &plan, False, skb)
    finally:
        skb.exports -= 1
