# skbuff.pxi - the SKB type and SKBQueue (Linux's sk_buff and sk_buff_head).
#
# Included by _core.pyx. The buffer lives in csrc/skb.c; this file only checks
# arguments, raises, and exposes the bytes without copying.
#
# Sharing rule (what a write to shared data does): clones share one buffer.
#  - A view of the data (skb.data, memoryview(skb)) is writable only while the
#    skb's header area is private: `skb.header_cloned` is False. A clone of a
#    buffer whose other holders did not release their header gives read-only
#    views; call `unshare()` for a private, writable copy.
#  - push() and put() never write into a buffer another skb reads: they first
#    take a private copy (Linux's skb_cow_head / skb_unshare) when needed.
#  - header_release() on the original (TCP's retransmit queue) promises never
#    to read the header area again, so one clone may write headers in place
#    without a copy: the tcp_transmit_skb pattern.
#  - While a view is exported, an operation that must reallocate raises
#    BufferError, as bytearray does on resize.

from cpython.buffer cimport PyBUF_WRITABLE, PyBuffer_FillInfo
from libc.string cimport memcpy, memset
from collections import deque as _deque
from pynet._cdefs.skb cimport *


# Set only while _skb_uninit() runs (the GIL is held throughout): tells
# __cinit__ to leave the struct zeroed instead of allocating a buffer that
# the caller would free again at once.
cdef bint _alloc_uninit = False


cdef SKB _skb_uninit():
    global _alloc_uninit
    _alloc_uninit = True
    try:
        return SKB.__new__(SKB)
    finally:
        _alloc_uninit = False


cdef SKB alloc_skb(uint32_t size):
    """A new empty skb of `size` bytes, for C-level callers (one malloc)."""
    cdef SKB n = _skb_uninit()
    _skb_check(skb_init(&n.skb, size), "alloc_skb", &n.skb, size)
    return n


class SKBError(ValueError):
    """A pointer operation on an SKB went past its buffer (Linux would BUG())."""


cdef int _skb_check(int rc, str op, sk_buff *skb, Py_ssize_t n) except -1:
    if rc == SKB_OK:
        return 0
    if rc == SKB_ENOMEM:
        raise MemoryError(f"{op}: cannot allocate")
    state = (f"(len {skb_len(skb)}, headroom {skb_headroom(skb)}, "
             f"tailroom {skb_tailroom(skb)})")
    if rc == SKB_EOVER:
        raise SKBError(f"{op}: {n} bytes do not fit {state}")
    if rc == SKB_EUNDER:
        raise SKBError(f"{op}: {n} bytes is more than the data {state}")
    if rc == SKB_ENOTEMPTY:
        raise SKBError(f"{op}: only an empty skb can reserve {state}")
    raise SKBError(f"{op}: size {n} out of range (0..{SKB_MAX_ALLOC})")


cdef inline uint32_t _u32(Py_ssize_t n, str op) except? 0xffffffff:
    if n < 0:
        raise SKBError(f"{op}: negative length {n}")
    if n > SKB_MAX_ALLOC:
        raise SKBError(f"{op}: {n} exceeds the largest skb ({SKB_MAX_ALLOC} bytes)")
    return <uint32_t>n


cdef class SKB:
    """A packet buffer: head <= data <= tail <= end, as Linux's sk_buff.

    SKB(size) allocates `size` bytes of buffer, empty (data == tail == 0).
    Offsets (data, tail, end, mac_header, network_header, transport_header,
    csum_start) count from head; a header offset of -1 is unset.
    """
    # struct sk_buff skb and the attributes are declared in _core.pxd

    def __cinit__(self, Py_ssize_t size=0, *args, **kwargs):
        self.exports = 0
        if _alloc_uninit:
            return      # alloc_skb()/clone() fill self.skb themselves
        _skb_check(skb_init(&self.skb, _u32(size, "alloc_skb")), "alloc_skb", &self.skb, size)

    def __init__(self, Py_ssize_t size=0):
        pass

    def __dealloc__(self):
        skb_release(&self.skb)

    @staticmethod
    def from_bytes(data, Py_ssize_t headroom=0, Py_ssize_t tailroom=0):
        """A new skb holding a copy of `data`, with room around it."""
        cdef const unsigned char[::1] src = data
        cdef Py_ssize_t n = src.shape[0]
        cdef SKB skb = SKB(_u32(headroom, "from_bytes") + _u32(n, "from_bytes")
                           + _u32(tailroom, "from_bytes"))
        skb.skb.data = skb.skb.tail = <uint32_t>headroom
        if n:
            memcpy(skb.skb.head + headroom, &src[0], n)
        skb.skb.tail += <uint32_t>n
        return skb

    # -- geometry ---------------------------------------------------------
    def __len__(self):
        return skb_len(&self.skb)

    property len:
        def __get__(self): return skb_len(&self.skb)
    property data_offset:
        "Offset of data from head (== headroom)."
        def __get__(self): return self.skb.data
    property tail:
        def __get__(self): return self.skb.tail
    property end:
        def __get__(self): return self.skb.end
    property headroom:
        def __get__(self): return skb_headroom(&self.skb)
    property tailroom:
        def __get__(self): return skb_tailroom(&self.skb)
    property truesize:
        "Bytes this skb costs its owner: the buffer and the metadata."
        def __get__(self): return skb_truesize(&self.skb)

    # -- pointer operations -----------------------------------------------
    def reserve(self, Py_ssize_t n):
        """Move data and tail forward by n on an empty skb (headroom for headers)."""
        _skb_check(skb_reserve(&self.skb, _u32(n, "skb_reserve")), "skb_reserve", &self.skb, n)

    def put(self, Py_ssize_t n):
        """Extend the data by n bytes at the tail; returns a view of them."""
        cdef uint32_t old = self.skb.tail
        cdef uint32_t un = _u32(n, "skb_put")
        if skb_shared_buffer(&self.skb):
            self._realloc(0, 0, "skb_put")
            old = self.skb.tail
        _skb_check(skb_put(&self.skb, un), "skb_put", &self.skb, n)
        return self._view(old, old + un)

    def put_data(self, data):
        """skb_put_data: append a copy of data."""
        cdef const unsigned char[::1] src = data
        cdef Py_ssize_t n = src.shape[0]
        cdef uint32_t un = _u32(n, "skb_put_data")
        if skb_shared_buffer(&self.skb):
            self._realloc(0, 0, "skb_put_data")
        cdef uint32_t old = self.skb.tail
        _skb_check(skb_put(&self.skb, un), "skb_put_data", &self.skb, n)
        if n:
            memcpy(self.skb.head + old, &src[0], n)

    def push(self, Py_ssize_t n):
        """Extend the data by n bytes at the front (into the headroom); returns a view of them."""
        cdef uint32_t un = _u32(n, "skb_push")
        if un > skb_headroom(&self.skb):
            _skb_check(SKB_EOVER, "skb_push", &self.skb, n)
        if skb_header_cloned(&self.skb):
            self._realloc(0, 0, "skb_push")
        __skb_push(&self.skb, un)
        return self._view(self.skb.data, self.skb.data + un)

    def push_data(self, data):
        """Prepend a copy of data (a header built elsewhere)."""
        cdef const unsigned char[::1] src = data
        cdef Py_ssize_t n = src.shape[0]
        cdef uint32_t un = _u32(n, "skb_push")
        if un > skb_headroom(&self.skb):
            _skb_check(SKB_EOVER, "skb_push", &self.skb, n)
        if skb_header_cloned(&self.skb):
            self._realloc(0, 0, "skb_push")
        __skb_push(&self.skb, un)
        if n:
            memcpy(self.skb.head + self.skb.data, &src[0], n)

    def pull(self, Py_ssize_t n):
        """Remove n bytes from the front of the data (a header consumed)."""
        _skb_check(skb_pull(&self.skb, _u32(n, "skb_pull")), "skb_pull", &self.skb, n)

    def trim(self, Py_ssize_t length):
        """Cut the data to `length` bytes (drop trailing padding)."""
        _skb_check(skb_trim(&self.skb, _u32(length, "skb_trim")), "skb_trim", &self.skb, length)

    # -- sharing --------------------------------------------------------------
    def clone(self):
        """A new skb sharing this buffer, with its own pointers and metadata."""
        cdef SKB n = _skb_uninit()
        _skb_check(skb_clone_into(&n.skb, &self.skb), "skb_clone", &self.skb, 0)
        n.sk = self.sk
        n.dev = self.dev
        n.dst = self.dst
        n.cb = self.cb
        return n

    def copy(self, headroom=None, Py_ssize_t tailroom=0):
        """A new skb with a private copy of the data (skb_copy / pskb_copy).

        headroom defaults to this skb's headroom; header offsets move with the data.
        """
        cdef uint32_t hr = self.skb.data if headroom is None else _u32(headroom, "skb_copy")
        cdef SKB n = _skb_uninit()
        _skb_check(skb_copy_into(&n.skb, &self.skb, hr, _u32(tailroom, "skb_copy")),
                   "skb_copy", &self.skb, hr + tailroom)
        n.sk = self.sk
        n.dev = self.dev
        n.dst = self.dst
        n.cb = self.cb
        return n

    property cloned:
        "True while another skb shares this buffer."
        def __get__(self): return bool(skb_shared_buffer(&self.skb))
    property header_cloned:
        "True when the header area is shared with an skb that may still read it."
        def __get__(self): return bool(skb_header_cloned(&self.skb))

    def header_release(self):
        """Promise never to read or write the header area again (skb_header_release)."""
        skb_header_release(&self.skb)

    def cow_head(self, Py_ssize_t headroom=0):
        """Make the header area private with at least `headroom` bytes before data."""
        cdef uint32_t need = _u32(headroom, "skb_cow_head")
        if need > skb_headroom(&self.skb) or skb_header_cloned(&self.skb):
            self._realloc(need - skb_headroom(&self.skb) if need > skb_headroom(&self.skb) else 0,
                          0, "skb_cow_head")

    def unshare(self):
        """Give this skb a private copy of its buffer if it shares one."""
        if skb_shared_buffer(&self.skb):
            self._realloc(0, 0, "skb_unshare")
        self.skb.cloned = 0

    def expand_head(self, Py_ssize_t nhead, Py_ssize_t ntail=0):
        """Reallocate with nhead more bytes of headroom and ntail more of tailroom."""
        self._realloc(_u32(nhead, "pskb_expand_head"), _u32(ntail, "pskb_expand_head"),
                      "pskb_expand_head")

    cdef int _realloc(self, uint32_t nhead, uint32_t ntail, str op) except -1:
        if self.exports:
            raise BufferError(f"{op}: the skb's data is exported to {self.exports} view(s); "
                              "release them before it can be reallocated")
        _skb_check(skb_expand_head(&self.skb, nhead, ntail), op, &self.skb, nhead + ntail)
        return 0

    # -- bytes ----------------------------------------------------------------
    cdef object _view(self, uint32_t start, uint32_t stop):
        return memoryview(self)[start - self.skb.data:stop - self.skb.data]

    def __getbuffer__(self, Py_buffer *buf, int flags):
        cdef bint readonly = skb_header_cloned(&self.skb)
        if readonly and (flags & PyBUF_WRITABLE):
            raise BufferError("the skb shares its buffer with a clone: unshare() it before writing")
        PyBuffer_FillInfo(buf, self, self.skb.head + self.skb.data, skb_len(&self.skb),
                          readonly, flags)
        self.exports += 1

    def __releasebuffer__(self, Py_buffer *buf):
        self.exports -= 1

    property data:
        "A memoryview of the data (no copy): read-only while the header is shared."
        def __get__(self): return memoryview(self)

    def tobytes(self):
        return (self.skb.head + self.skb.data)[:skb_len(&self.skb)]

    def headroom_bytes(self):
        """The bytes before data (a header that was pulled), as a copy."""
        return self.skb.head[:self.skb.data]

    # -- header offsets (from head; -1 = unset) ----------------------------------
    property mac_header:
        def __get__(self): return _hdr_get(self.skb.mac_header)
        def __set__(self, v): self.skb.mac_header = self._hdr_set(v)
    property network_header:
        def __get__(self): return _hdr_get(self.skb.network_header)
        def __set__(self, v): self.skb.network_header = self._hdr_set(v)
    property transport_header:
        def __get__(self): return _hdr_get(self.skb.transport_header)
        def __set__(self, v): self.skb.transport_header = self._hdr_set(v)

    cdef uint16_t _hdr_set(self, v) except? 0xfffe:
        if v is None or v == -1:
            return SKB_HDR_UNSET
        if not 0 <= v < min(self.skb.end + 1, SKB_HDR_UNSET):
            raise SKBError(f"header offset {v} outside the buffer (end {self.skb.end})")
        return <uint16_t>v

    def reset_mac_header(self):
        self.mac_header = self.skb.data
    def reset_network_header(self):
        self.network_header = self.skb.data
    def reset_transport_header(self):
        self.transport_header = self.skb.data

    property mac_len:
        "Bytes from the mac header to the network header (0 when either is unset)."
        def __get__(self):
            if self.skb.mac_header == SKB_HDR_UNSET or self.skb.network_header == SKB_HDR_UNSET:
                return 0
            return self.skb.network_header - self.skb.mac_header

    # -- checksum and GSO state ---------------------------------------------------
    property ip_summed:
        def __get__(self): return self.skb.ip_summed
        def __set__(self, int v):
            if v not in (CHECKSUM_NONE, CHECKSUM_UNNECESSARY, CHECKSUM_COMPLETE, CHECKSUM_PARTIAL):
                raise ValueError(f"ip_summed must be one of CHECKSUM_*, not {v}")
            self.skb.ip_summed = v
    property csum_start:
        def __get__(self): return self.skb.csum_start
        def __set__(self, v): self.skb.csum_start = self._hdr_set(v)
    property csum_offset:
        def __get__(self): return self.skb.csum_offset
        def __set__(self, v): self._set_csum(self.skb.csum_start, v)
    property csum:
        def __get__(self): return self.skb.csum
        def __set__(self, uint32_t v): self.skb.csum = v
    property gso_size:
        def __get__(self): return self.skb.gso_size
        def __set__(self, uint16_t v): self.skb.gso_size = v
    property gso_segs:
        def __get__(self): return self.skb.gso_segs
        def __set__(self, uint16_t v): self.skb.gso_segs = v
    property gso_type:
        def __get__(self): return self.skb.gso_type
        def __set__(self, uint32_t v): self.skb.gso_type = v
    property is_gso:
        def __get__(self): return self.skb.gso_size != 0
    property protocol:
        "Ethertype in host order (ETH_P_IP = 0x0800)."
        def __get__(self): return self.skb.protocol
        def __set__(self, uint16_t v): self.skb.protocol = v
    property mark:
        def __get__(self): return self.skb.mark
        def __set__(self, uint32_t v): self.skb.mark = v
    property tstamp_ns:
        def __get__(self): return self.skb.tstamp_ns
        def __set__(self, uint64_t v): self.skb.tstamp_ns = v

    def set_partial(self, start, offset):
        """Leave the checksum at head+start+offset to the device or GSO (CHECKSUM_PARTIAL)."""
        self._set_csum(start, offset)
        self.skb.ip_summed = CHECKSUM_PARTIAL

    cdef _set_csum(self, start, offset):
        # Compared without adding, so no value a caller passes can wrap around.
        if (not 0 <= start < SKB_HDR_UNSET or not 0 <= offset <= 0xffff
                or start > self.skb.end or offset > self.skb.end - start
                or self.skb.end - start - offset < 2):
            raise SKBError(f"csum_start {start} + csum_offset {offset} + 2 outside the buffer "
                           f"(end {self.skb.end})")
        self.skb.csum_start = <uint16_t>start
        self.skb.csum_offset = <uint16_t>offset

    def __repr__(self):
        return (f"<SKB head=0 data={self.skb.data} tail={self.skb.tail} end={self.skb.end} "
                f"len={skb_len(&self.skb)}{' cloned' if skb_shared_buffer(&self.skb) else ''}"
                f"{' gso_size=%d' % self.skb.gso_size if self.skb.gso_size else ''}>")

    def geometry(self):
        """(head, data, tail, end) offsets, for traces."""
        return (0, self.skb.data, self.skb.tail, self.skb.end)


cdef inline object _hdr_get(uint16_t v):
    return -1 if v == SKB_HDR_UNSET else v


cdef class SKBQueue:
    """A FIFO of skbs with a limit, as sk_buff_head plus the owner's bound.

    `limit` caps the number of skbs and `byte_limit` (if set) the bytes of data.
    enqueue() on a full queue drops the new skb (tail drop); enqueue_evict()
    drops the oldest instead, as the neighbour's arp_queue does. Both count
    what they dropped in `dropped`.
    """
    cdef object _q
    cdef public Py_ssize_t limit
    cdef public object byte_limit
    cdef readonly Py_ssize_t bytes
    cdef readonly Py_ssize_t dropped

    def __init__(self, Py_ssize_t limit=1000, byte_limit=None):
        if limit < 0:
            raise ValueError("limit must be >= 0")
        self._q = _deque()
        self.limit = limit
        self.byte_limit = byte_limit
        self.bytes = 0
        self.dropped = 0

    cdef bint _fits(self, SKB skb):
        if len(self._q) >= self.limit:
            return False
        return self.byte_limit is None or self.bytes + skb_len(&skb.skb) <= self.byte_limit

    def enqueue(self, SKB skb not None):
        """Append skb; return False (and count a drop) when the queue is full."""
        if not self._fits(skb):
            self.dropped += 1
            return False
        self._q.append(skb)
        self.bytes += skb_len(&skb.skb)
        return True

    def enqueue_evict(self, SKB skb not None):
        """Append skb, dropping the oldest skbs to make room; returns what was dropped."""
        if self.limit == 0 or (self.byte_limit is not None and skb_len(&skb.skb) > self.byte_limit):
            self.dropped += 1       # would not fit even alone: evict nothing
            return [skb]
        evicted = []
        while not self._fits(skb):
            evicted.append(self.dequeue())
        self._q.append(skb)
        self.bytes += skb_len(&skb.skb)
        self.dropped += len(evicted)
        return evicted

    def enqueue_head(self, SKB skb not None):
        """Put skb back at the head (a driver that was busy); never dropped."""
        self._q.appendleft(skb)
        self.bytes += skb_len(&skb.skb)

    def dequeue(self):
        """Remove and return the oldest skb, or None."""
        if not self._q:
            return None
        cdef SKB skb = self._q.popleft()
        self.bytes -= skb_len(&skb.skb)
        return skb

    def peek(self):
        return self._q[0] if self._q else None

    def purge(self):
        """Drop everything; return how many skbs were dropped."""
        n = len(self._q)
        self._q.clear()
        self.bytes = 0
        return n

    def __len__(self):
        return len(self._q)

    property qlen:
        def __get__(self): return len(self._q)

    def __iter__(self):
        return iter(self._q)

    def __bool__(self):
        return bool(self._q)

    def __repr__(self):
        return f"<SKBQueue qlen={len(self._q)} bytes={self.bytes} limit={self.limit} dropped={self.dropped}>"


def skb_buf_cache_info():
    """The large-buffer cache of csrc/skb.c (freed 16-320 KB skb buffers kept
    for reuse, at most SKB_CACHE_BYTES): a dict of buffers and bytes waiting,
    hits and misses of allocations of a cached size, and overflow (frees
    past the bound, given back to malloc)."""
    cdef skb_buf_cache_stats st
    skb_buf_cache_read_stats(&st)
    return {"buffers": st.buffers, "bytes": st.bytes, "hits": st.hits, "misses": st.misses,
            "overflow": st.overflow}


def skb_buf_cache_shrink():
    """Give the buffers waiting in the large-buffer cache back to malloc, as a
    program may after a burst of bulk traffic (Linux's kmem_cache_shrink);
    returns the bytes freed. The counters of hits, misses and overflow stay."""
    return buf_cache_shrink()


# Constants re-exported to Python (the C enums are compile-time only).
globals().update(
    SKB_MAX_ALLOC=SKB_MAX_ALLOC, SKB_CACHE_BYTES=SKB_CACHE_BYTES,
    CHECKSUM_NONE=CHECKSUM_NONE, CHECKSUM_UNNECESSARY=CHECKSUM_UNNECESSARY,
    CHECKSUM_COMPLETE=CHECKSUM_COMPLETE, CHECKSUM_PARTIAL=CHECKSUM_PARTIAL,
    SKB_GSO_TCPV4=SKB_GSO_TCPV4, SKB_GSO_TCPV6=SKB_GSO_TCPV6, SKB_GSO_UDP_L4=SKB_GSO_UDP_L4,
    SKB_GSO_DODGY=SKB_GSO_DODGY, SKB_GSO_TCP_ECN=SKB_GSO_TCP_ECN,
)
