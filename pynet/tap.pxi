# tap.pxi - TAP device I/O for pynet.dev.tap (included by _core.pyx).
#
# Python sees whole batches: a sequence of skbs in, a count out. The frames
# move in csrc/tap.c with the GIL released; this file pins the skbs (no
# reallocation meanwhile, as pynet/checksum.pxi does) and turns -errno into
# OSError.

from libc.stdlib cimport malloc, free
from pynet._cdefs.tap cimport *
import errno
import os as _os


cdef inline int _oserror(int rc) except -1:
    if rc < 0:
        raise OSError(-rc, _os.strerror(-rc))
    return rc


cdef sk_buff **_skb_pin(tuple skbs) except NULL:
    """Pointers to the skbs' structs, each pinned (exports + 1: no reallocation)
    while C works on them without the GIL; the tuple keeps the SKBs alive."""
    cdef Py_ssize_t i, n = len(skbs)
    cdef sk_buff **arr = <sk_buff **>malloc(max(n, 1) * sizeof(sk_buff *))
    cdef SKB s
    if arr == NULL:
        raise MemoryError()
    for i in range(n):
        if not isinstance(skbs[i], SKB):
            free(arr)
            raise TypeError(f"expected SKB, got {type(skbs[i]).__name__}")
    for i in range(n):
        s = <SKB>skbs[i]
        s.exports += 1
        arr[i] = &s.skb
    return arr


cdef void _skb_unpin(tuple skbs, sk_buff **arr):
    cdef Py_ssize_t i
    for i in range(len(skbs)):
        (<SKB>skbs[i]).exports -= 1
    free(arr)


cdef int _check_empty(tuple skbs) except -1:
    """Receive buffers must be empty and private (the device writes into them)."""
    cdef SKB s
    for x in skbs:
        s = <SKB?>x
        if s.exports or skb_shared_buffer(&s.skb) or skb_len(&s.skb) != 0:
            raise SKBError("a receive buffer must be an empty, private skb with no views")
        if s.skb.data >= SKB_HDR_UNSET:      # mac_header is a 16-bit offset from head
            raise SKBError(f"a receive buffer's headroom ({s.skb.data}) must be under {SKB_HDR_UNSET}")
    return 0


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


def tap_read_skbs(int fd, skbs, bint vnet_hdr, uint64_t tstamp_ns=0):
    """Read frames into the empty skbs until EAGAIN: (filled, malformed).

    The first `filled` skbs hold one frame each, data at the Ethernet header.
    """
    cdef tuple t = tuple(skbs)
    _check_empty(t)
    cdef sk_buff **arr = _skb_pin(t)
    cdef int bad = 0, got
    cdef int n = <int>len(t)
    with nogil:
        got = tap_read_batch(fd, arr, n, vnet_hdr, tstamp_ns, &bad)
    _skb_unpin(t, arr)
    _oserror(got)
    return got, bad


ctypedef int (*xmit_batch_fn)(int fd, sk_buff **skbs, int n, int vnet_hdr, int *status,
                              uint64_t *sent_bytes) noexcept nogil


cdef tuple _xmit_skbs(xmit_batch_fn xmit, int fd, skbs, bint vnet_hdr):
    """Send the skbs with xmit (tap_write_batch, pkt_tx_batch), pinned, without
    the GIL: (consumed, [(index, errno) refused], bytes sent)."""
    cdef tuple t = tuple(skbs)
    cdef int n = <int>len(t)
    cdef int *status = <int *>malloc(max(n, 1) * sizeof(int))
    cdef int done
    cdef uint64_t nbytes = 0
    if status == NULL:
        raise MemoryError()
    cdef sk_buff **arr
    try:
        arr = _skb_pin(t)
    except BaseException:
        free(status)
        raise
    with nogil:
        done = xmit(fd, arr, n, vnet_hdr, status, &nbytes)
    _skb_unpin(t, arr)
    errors = [(i, -status[i]) for i in range(done) if status[i] != 0]
    free(status)
    return done, errors, nbytes


cdef int _xmit_skb(xmit_batch_fn xmit, int fd, SKB skb, bint vnet_hdr):
    """Send one skb with xmit: 0, or the errno (EAGAIN when it was not taken)."""
    cdef sk_buff *arr[1]
    cdef int status = 0, done
    cdef uint64_t nbytes
    arr[0] = &skb.skb
    skb.exports += 1
    with nogil:
        done = xmit(fd, arr, 1, vnet_hdr, &status, &nbytes)
    skb.exports -= 1
    return -status if done else errno.EAGAIN


def tap_write_skbs(int fd, skbs, bint vnet_hdr):
    """Write the skbs in order until the kernel would block.

    Returns (consumed, errors, bytes): skbs[:consumed] were handled, `errors`
    lists (index, errno) of those the kernel refused, `bytes` sums the sent ones.
    """
    return _xmit_skbs(tap_write_batch, fd, skbs, vnet_hdr)


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


def tap_write_skb(int fd, SKB skb not None, bint vnet_hdr):
    """Write one frame: 0, or the errno (EAGAIN: try later; others: refused)."""
    return _xmit_skb(tap_write_batch, fd, skb, vnet_hdr)
