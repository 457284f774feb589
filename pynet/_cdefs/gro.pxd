# Declarations of csrc/gro.h for the Cython glue.
from libc.stdint cimport uint8_t, uint32_t
from pynet._cdefs.skb cimport sk_buff

cdef extern from "gro.h" nogil:
    struct gro_plan:
        uint32_t *head
        uint32_t *extra
        uint8_t *verified
        uint32_t merged
        uint32_t bad_csum

    void gro_receive_plan(sk_buff *const *skbs, uint32_t n, gro_plan *plan)
    void gro_receive_fill(sk_buff *const *skbs, uint32_t n, const gro_plan *plan)
