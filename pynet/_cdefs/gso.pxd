# Declarations of csrc/gso.h for the Cython glue.
from libc.stdint cimport uint8_t, uint32_t
from pynet._cdefs.skb cimport sk_buff

cdef extern from "gso.h" nogil:
    enum:
        GSO_OK

    struct seg_plan:
        uint32_t nsegs
        uint32_t headroom
        uint32_t first_len
        uint32_t len
        uint32_t last_len

    const char *gso_strerror(int err)
    uint32_t seg_plan_len(const seg_plan *p, uint32_t i)
    uint32_t seg_plan_size(const seg_plan *p, uint32_t i)
    int skb_gso_plan(const sk_buff *skb, int hw_csum, seg_plan *plan)
    void skb_gso_fill(const sk_buff *skb, const seg_plan *plan, sk_buff *const *segs)
    int ip_fragment_plan(const sk_buff *skb, uint32_t mtu, seg_plan *plan)
    void ip_fragment_fill(const sk_buff *skb, const seg_plan *plan, sk_buff *const *frags)
