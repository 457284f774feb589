# tap.pxi - TAP device I/O for pynet.dev.tap (included by _core.pyx).
#
# Python sees whole batches: a list of skbs in, a count out. The frames move
# in csrc/tap.c with the GIL released; this file only pins the skbs and turns
# -errno into OSError.

from libc.stdlib cimport malloc, free
from pynet._cdefs.tap cimport *
import os as _os


cdef inline int _oserror(int rc) except -1:
    if rc < 0:
        raise OSError(-rc, _os.strerror(-rc))
    return rc


cdef sk_buff **_skb_array(list skbs, Py_ssize_t n) except NULL:
    """Pointers to the skbs' structs; the list keeps the SKB objects alive."""
    cdef sk_buff **arr = <sk_buff **>malloc(max(n, 1) * sizeof(sk_buff *))
    cdef Py_ssize_t i
    cdef SKB s
    if arr == NULL:
        raise MemoryError()
    for i in range(n):
        s = <SKB?>skbs[i]
        if s.exports:
            free(arr)
            raise BufferError("an skb handed to the device still has exported views")
        arr[i] = &s.skb
    return arr


def tap_open_fd(str name, bint vnet_hdr):
    """Create or attach the TAP `name` ("" lets the kernel pick): (fd, ifname)."""
    cdef bytes bname = name.encode()
    cdef char ifname[IFNAMSIZ]
    if len(bname) >= IFNAMSIZ:
        raise ValueError(f"interface name {name!r} longer than {IFNAMSIZ - 1} bytes")
    cdef int fd = _oserror(tap_open(bname, vnet_hdr, ifname))
    return fd, ifname.decode()


def tap_set_persist_fd(int fd, bint persist):
    _oserror(tap_set_persist(fd, persist))


def tap_set_offload_fd(int fd, unsigned int tun_flags):
    _oserror(tap_set_offload(fd, tun_flags))


def tap_read_skbs(int fd, list skbs, bint vnet_hdr, uint64_t tstamp_ns=0):
    """Read frames into the empty skbs until EAGAIN: (filled, malformed).

    The first `filled` skbs hold one frame each, data at the Ethernet header.
    """
    cdef Py_ssize_t n = len(skbs)
    cdef sk_buff **arr = _skb_array(skbs, n)
    cdef int bad = 0, got
    cdef Py_ssize_t i
    for i in range(n):
        if skb_shared_buffer(arr[i]) or skb_len(arr[i]) != 0:
            free(arr)
            raise SKBError("tap read needs empty, private skbs")
    with nogil:
        got = tap_read_batch(fd, arr, <int>n, vnet_hdr, tstamp_ns, &bad)
    free(arr)
    _oserror(got)
    return got, bad


def tap_write_skbs(int fd, list skbs, bint vnet_hdr):
    """Write the skbs in order until the kernel would block.

    Returns (consumed, errors): skbs[:consumed] were handled, `errors` lists
    (index, errno) of those the kernel refused.
    """
    cdef Py_ssize_t n = len(skbs)
    cdef sk_buff **arr = _skb_array(skbs, n)
    cdef int *status = <int *>malloc(max(n, 1) * sizeof(int))
    cdef int done
    if status == NULL:
        free(arr)
        raise MemoryError()
    with nogil:
        done = tap_write_batch(fd, arr, <int>n, vnet_hdr, status)
    errors = [(i, -status[i]) for i in range(done) if status[i] != 0]
    free(arr)
    free(status)
    return done, errors


def tap_bench_write(int fd, frame, long count):
    """Bench baseline: `count` plain write() calls of one frame, all in C."""
    cdef const unsigned char[::1] f = frame
    cdef long r
    with nogil:
        r = tap_bench_write_loop(fd, &f[0], <uint32_t>f.shape[0], count)
    _oserror(<int>r if r < 0 else 0)
    return r


globals().update(
    TUN_F_CSUM=TUN_F_CSUM, TUN_F_TSO4=TUN_F_TSO4, TUN_F_TSO6=TUN_F_TSO6,
    TUN_F_TSO_ECN=TUN_F_TSO_ECN, TUN_F_USO4=TUN_F_USO4, TUN_F_USO6=TUN_F_USO6,
)
