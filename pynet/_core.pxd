# Declarations of pynet._core's C-level types, for the .pxi files that make up
# _core.pyx (and any later Cython module that cimports them).
from pynet._cdefs.skb cimport sk_buff
from libc.stdint cimport uint16_t, uint32_t

cdef class SKB:
    cdef sk_buff skb
    cdef Py_ssize_t exports
    cdef public object sk      # owning socket, as skb->sk
    cdef public object dev     # device it came in on or goes out of, as skb->dev
    cdef public object dst     # route, as skb_dst(skb)
    cdef public object cb      # the owning layer's control block object (Python twin of skb->cb)
    cdef int _realloc(self, uint32_t nhead, uint32_t ntail, str op) except -1
    cdef object _view(self, uint32_t start, uint32_t stop)
    cdef uint16_t _hdr_set(self, v) except? 0xfffe
    cdef _set_csum(self, start, offset)
