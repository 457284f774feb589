# checksum.pxi - the Internet checksum (csrc/csum.c) for Python: pynet.checksum.
#
# Included by _core.pyx. Buffers are any bytes-like object (read through the
# buffer protocol, no copy); integers are range-checked here so a bad
# argument raises ValueError or TypeError, never wraps around silently.

from cpython.buffer cimport PyBUF_SIMPLE, PyObject_GetBuffer, PyBuffer_Release
from cpython.number cimport PyNumber_Index
from pynet._cdefs cimport csum as ccsum

# Above this many bytes the sum runs without the GIL (~0.5 us of work at
# tens of GB/s, well above the cost of dropping and retaking it).
cdef enum:
    CSUM_NOGIL_BYTES = 16384


cdef inline uint32_t _ranged(object v, uint32_t limit, str name) except? 0xffffffff:
    """v as an unsigned int in [0, limit]; ValueError outside, TypeError if not an int."""
    cdef long long x
    if type(v) is not int:
        v = PyNumber_Index(v)       # TypeError for floats, strings, None
    try:
        x = v
    except OverflowError:
        raise ValueError(f"{name} {v} out of range 0..{limit:#x}") from None
    if x < 0 or x > limit:
        raise ValueError(f"{name} {v} out of range 0..{limit:#x}")
    return <uint32_t>x


cdef uint32_t _csum_buffer(const unsigned char *p, size_t n, uint32_t s) noexcept:
    if n >= CSUM_NOGIL_BYTES:
        with nogil:
            s = ccsum.csum_partial(p, n, s)
        return s
    return ccsum.csum_partial(p, n, s)


def csum_partial(buf, sum=0):
    """The 32-bit unfolded ones'-complement sum of buf's bytes, read as
    big-endian 16-bit words (an odd last byte is padded with zero), plus sum.

    Only the sum modulo 0xffff is defined: compare results with csum_fold().
    """
    cdef uint32_t s = _ranged(sum, 0xffffffff, "sum")
    cdef Py_buffer view
    PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    try:
        s = _csum_buffer(<const unsigned char *>view.buf, <size_t>view.len, s)
    finally:
        PyBuffer_Release(&view)
    return s


def csum_fold(sum):
    """Fold a 32-bit sum to 16 bits and invert it: the value for the wire."""
    return ccsum.csum_fold(_ranged(sum, 0xffffffff, "sum"))


def ip_fast_csum(hdr):
    """The checksum of the IPv4 header at the start of hdr (ihl * 4 bytes):
    0 for a valid header, the value to store when its checksum field is 0."""
    cdef Py_buffer view
    cdef unsigned ihl
    PyObject_GetBuffer(hdr, &view, PyBUF_SIMPLE)
    try:
        if view.len < 20:
            raise ValueError(f"an IPv4 header is at least 20 bytes, not {view.len}")
        ihl = (<const unsigned char *>view.buf)[0] & 0x0f
        if ihl < 5 or ihl * 4 > <size_t>view.len:
            raise ValueError(f"IPv4 header length {ihl * 4} does not fit 20..{view.len}")
        return ccsum.ip_fast_csum(view.buf, ihl)
    finally:
        PyBuffer_Release(&view)


def csum_tcpudp_nofold(saddr, daddr, length, proto, sum=0):
    """sum plus the IPv4 pseudo-header (RFC 793 section 3.1), unfolded.

    Addresses are ints in host order; length is the TCP/UDP length in bytes,
    over 65535 for a BIG TCP GSO skb (summed as two 16-bit words, as Linux's).
    """
    return ccsum.csum_tcpudp_nofold(_ranged(saddr, 0xffffffff, "saddr"),
                                    _ranged(daddr, 0xffffffff, "daddr"),
                                    _ranged(length, 0xffffffff, "length"),
                                    <uint8_t>_ranged(proto, 0xff, "proto"),
                                    _ranged(sum, 0xffffffff, "sum"))


def csum_tcpudp_magic(saddr, daddr, length, proto, sum=0):
    """csum_fold(csum_tcpudp_nofold(...)): the TCP/UDP checksum field value
    when sum covers the TCP/UDP header (checksum field zero) and payload."""
    return ccsum.csum_tcpudp_magic(_ranged(saddr, 0xffffffff, "saddr"),
                                   _ranged(daddr, 0xffffffff, "daddr"),
                                   _ranged(length, 0xffffffff, "length"),
                                   <uint8_t>_ranged(proto, 0xff, "proto"),
                                   _ranged(sum, 0xffffffff, "sum"))


def csum_replace2(check, old, new):
    """The checksum after a 16-bit word of the data changed from old to new (RFC 1624)."""
    return ccsum.csum_replace2(<uint16_t>_ranged(check, 0xffff, "check"),
                               <uint16_t>_ranged(old, 0xffff, "old"),
                               <uint16_t>_ranged(new, 0xffff, "new"))


def csum_replace4(check, old, new):
    """The checksum after a 32-bit field (an address) changed from old to new (RFC 1624)."""
    return ccsum.csum_replace4(<uint16_t>_ranged(check, 0xffff, "check"),
                               _ranged(old, 0xffffffff, "old"),
                               _ranged(new, 0xffffffff, "new"))


def skb_checksum(SKB skb not None, offset, length, sum=0):
    """csum_partial over length bytes of skb's data from offset (relative to skb.data)."""
    cdef uint32_t n = skb_len(&skb.skb)
    cdef uint32_t off = _ranged(offset, n, "offset")
    cdef uint32_t ln = _ranged(length, n - off, "length")
    cdef uint32_t s = _ranged(sum, 0xffffffff, "sum")
    cdef const unsigned char *p = skb_data(&skb.skb) + off
    skb.exports += 1        # pin the buffer: no reallocation while the GIL is dropped
    try:
        return _csum_buffer(p, ln, s)
    finally:
        skb.exports -= 1


def skb_checksum_help(SKB skb not None):
    """Finish a CHECKSUM_PARTIAL skb in software (Linux's skb_checksum_help).

    Sums from csum_start to the end of the data (the checksum field holds the
    pseudo-header sum), stores the folded result at csum_start + csum_offset
    and sets ip_summed to CHECKSUM_NONE. A shared header area is copied first.
    """
    cdef sk_buff *s = &skb.skb
    if s.ip_summed != CHECKSUM_PARTIAL:
        raise ValueError(f"skb_checksum_help: ip_summed is {s.ip_summed}, not CHECKSUM_PARTIAL")
    if s.csum_start < s.data or <uint32_t>s.csum_start + s.csum_offset + 2 > s.tail:
        raise ValueError(f"skb_checksum_help: csum_start {s.csum_start} + csum_offset "
                         f"{s.csum_offset} outside the data [{s.data}, {s.tail})")
    if skb_header_cloned(s):
        skb._realloc(0, 0, "skb_checksum_help")
        s = &skb.skb
    cdef uint32_t sm
    skb.exports += 1        # pin the buffer, as in skb_checksum
    try:
        sm = _csum_buffer(s.head + s.csum_start, s.tail - s.csum_start, 0)
    finally:
        skb.exports -= 1
    # A computed 0 goes out as 0xffff, its ones'-complement twin: to UDP a
    # 0 means "no checksum" (RFC 768), to TCP both verify (Linux's CSUM_MANGLED_0).
    ccsum.csum_put_be16(s.head + s.csum_start + s.csum_offset, ccsum.csum_fold(sm) or 0xffff)
    s.ip_summed = CHECKSUM_NONE
    return None
