# gro.pxi - receive coalescing in C (csrc/gro.c): pynet.gro.
#
# Included by _core.pyx. The C plans the batch, this file gives each head
# the tailroom its run needs (a private buffer, as pskb_expand_head), and the
# C appends the payloads. Python then sees one skb per run.

from cpython.mem cimport PyMem_Malloc, PyMem_Free
from pynet._cdefs.gro cimport gro_plan, gro_receive_plan, gro_receive_fill


cdef class GroStats:
    """What gro_receive did, summed over calls (Linux's per-NAPI counters)."""
    cdef public Py_ssize_t merged      # segments folded into a head
    cdef public Py_ssize_t bad_csum    # segments left alone: checksum wrong
    cdef public Py_ssize_t realloc     # heads that needed a bigger buffer

    def __repr__(self):
        return f"GroStats(merged={self.merged}, bad_csum={self.bad_csum}, realloc={self.realloc})"


def gro_receive(skbs, GroStats stats=None):
    """Coalesce a batch of received frames (data at the Ethernet header).

    Consecutive in-order TCP/IPv4 segments of one flow with the same ACK,
    window, options and flags (ACK, PSH only on the last) become one skb:
    payloads appended to the first, IPv4 length and checksum rewritten,
    gso_size the first segment's payload, gso_type SKB_GSO_TCPV4. Every TCP
    segment whose checksum C verified goes up CHECKSUM_UNNECESSARY. Returns
    the skbs to hand up, in order; the merged ones are dropped.
    """
    if type(skbs) is not list:
        skbs = list(skbs)
    cdef Py_ssize_t n = len(skbs), i
    if n == 0:
        return skbs
    cdef gro_plan plan
    cdef sk_buff **ptrs = <sk_buff **>PyMem_Malloc(n * sizeof(sk_buff *))
    cdef uint32_t *words = <uint32_t *>PyMem_Malloc(2 * n * sizeof(uint32_t))
    cdef uint8_t *verified = <uint8_t *>PyMem_Malloc(n)
    cdef SKB s
    cdef uint32_t need, grown = 0
    cdef Py_ssize_t j
    cdef list out
    if ptrs == NULL or words == NULL or verified == NULL:
        PyMem_Free(ptrs)
        PyMem_Free(words)
        PyMem_Free(verified)
        raise MemoryError()
    try:
        for i in range(n):
            s = <SKB?>skbs[i]
            ptrs[i] = &s.skb
        plan.head, plan.extra, plan.verified = words, words + n, verified
        gro_receive_plan(ptrs, <uint32_t>n, &plan)
        if plan.merged:
            for i in range(n):
                need = plan.extra[i]
                if not need:
                    continue
                s = <SKB>skbs[i]
                if skb_tailroom(&s.skb) < need or skb_shared_buffer(&s.skb):
                    try:
                        s._realloc(0, need, "gro_receive")
                    except BufferError:      # someone holds a view of it: its run goes up unmerged
                        for j in range(i + 1, n):
                            if plan.head[j] == <uint32_t>i:
                                plan.head[j] = <uint32_t>j
                                plan.merged -= 1
                        continue
                    grown += 1
        gro_receive_fill(ptrs, <uint32_t>n, &plan)
        if stats is not None:
            stats.merged += plan.merged
            stats.bad_csum += plan.bad_csum
            stats.realloc += grown
        if not plan.merged:
            return skbs
        out = [skbs[i] for i in range(n) if plan.head[i] == <uint32_t>i]
        return out
    finally:
        PyMem_Free(ptrs)
        PyMem_Free(words)
        PyMem_Free(verified)
