# tap.pxi - TAP device I/O for pynet.dev.tap, and the device layer's
# per-frame transmit path (included by _core.pyx).
#
# Receive and batched transmit see whole batches: a sequence of skbs in, a
# count out; the frames move in csrc/frame_read.c, csrc/tap.c and
# csrc/packet.c with the GIL
# released, the skbs pinned (no reallocation meanwhile, as
# pynet/checksum.pxi does). NetDeviceBase holds the fields of
# pynet.dev.netdevice.NetDevice that dev_queue_xmit and a descriptor
# driver's start_xmit read per frame, so that path runs here in C.

from libc.stdlib cimport calloc, malloc, free
from libc.string cimport memcpy
from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyObject
from pynet._cdefs.tap cimport *
from pynet._cdefs.packet cimport pkt_tx_batch
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


def frame_read_skbs(int fd, skbs, bint vnet_hdr, uint64_t tstamp_ns=0, uint32_t gro_max_len=0,
                    bint sock=False):
    """Read frames, one per syscall, into the empty skbs until EAGAIN:
    (filled, malformed, merged).

    The first `filled` skbs hold a frame each, data at the Ethernet header.
    gro_max_len (with vnet_hdr; 0: off): the frames that continue a TCP run
    are read into its first skb's tailroom and merged there, up to that IPv4
    length (frame_read_batch); `merged` counts them. Every skb needs room for
    RX_FRAME_MAX bytes. sock: fd is a socket (AF_PACKET), read with recvmsg,
    and a frame longer than an skb holds is malformed rather than cut.
    """
    cdef tuple t = tuple(skbs)
    _check_empty(t)
    cdef sk_buff **arr = _skb_pin(t)
    cdef int bad = 0, merged = 0, got
    cdef int n = <int>len(t)
    with nogil:
        got = frame_read_batch(fd, sock, arr, n, vnet_hdr, gro_max_len, tstamp_ns, &bad, &merged)
    _skb_unpin(t, arr)
    _oserror(got)
    return got, bad, merged


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
    RX_FRAME_MAX=RX_FRAME_MAX,
)


# -- the device layer's per-frame transmit path ---------------------------------------------
# pynet.dev.netdevice holds the model (NetDevice, dev_queue_xmit's generic
# path in Python); a frame that needs nothing but the driver goes through
# here without a Python frame: Python does ~1.7 M small calls a second, and
# a TAP takes a 1,514-byte frame in ~0.4 us.

cdef extern from "Python.h":
    PyObject **_PyObject_GetDictPtr(object obj)

cdef enum:
    # the values of pynet.dev.netdevice's constants
    _NETDEV_TX_OK = 0x00
    _NETDEV_TX_BUSY = 0x10
    _NET_XMIT_SUCCESS = 0x00
    # one frame up to this size is written with the GIL held: releasing and
    # taking it back costs more than the non-blocking write of a
    # 1,514-byte frame (~0.4 us) keeps other threads waiting
    _XMIT_GIL_MAX = 9216

cdef object _xmit_generic = None     # netdevice's dev_queue_xmit in Python
cdef dict _skbtrace_ns = None        # pynet.skbtrace's globals, for its `hook`
cdef unsigned long long _f_hw_csum = 0, _f_ip_csum = 0    # NETIF_F_HW_CSUM, NETIF_F_IP_CSUM
cdef str _START_XMIT = "ndo_start_xmit"
cdef str _HOOK = "hook"
cdef PyObject *_NONE = <PyObject *>None


cdef class NetDeviceStats:
    """struct rtnl_link_stats64, the fields pynet keeps; counted in C on the
    transmit fast path, plain integer attributes for Python."""
    cdef public unsigned long long rx_packets, tx_packets, rx_bytes, tx_bytes
    cdef public unsigned long long rx_errors, tx_errors, rx_dropped, tx_dropped

    def __init__(self, rx_packets=0, tx_packets=0, rx_bytes=0, tx_bytes=0, rx_errors=0,
                 tx_errors=0, rx_dropped=0, tx_dropped=0):
        self.rx_packets, self.tx_packets = rx_packets, tx_packets
        self.rx_bytes, self.tx_bytes = rx_bytes, tx_bytes
        self.rx_errors, self.tx_errors = rx_errors, tx_errors
        self.rx_dropped, self.tx_dropped = rx_dropped, tx_dropped

    def as_dict(self):
        return {"rx_packets": self.rx_packets, "tx_packets": self.tx_packets,
                "rx_bytes": self.rx_bytes, "tx_bytes": self.tx_bytes,
                "rx_errors": self.rx_errors, "tx_errors": self.tx_errors,
                "rx_dropped": self.rx_dropped, "tx_dropped": self.tx_dropped}

    def __eq__(self, other):
        if not isinstance(other, NetDeviceStats):
            return NotImplemented
        return self.as_dict() == other.as_dict()

    def __repr__(self):
        return "NetDeviceStats(" + ", ".join(f"{k}={v}" for k, v in self.as_dict().items()) + ")"


cdef class NetDeviceBase:
    """The C half of pynet.dev.netdevice.NetDevice: up, queue_stopped, qdisc
    and stats, read by dev_queue_xmit per frame; and for a driver over a TAP
    or AF_PACKET descriptor (xmit_attach), its start_xmit and batch writer."""
    cdef public bint up, queue_stopped
    cdef public unsigned long long features      # NETIF_F_*
    cdef public SKBQueue qdisc
    cdef public NetDeviceStats stats
    cdef xmit_batch_fn xmit_fn        # tap_write_batch / pkt_tx_batch; NULL: a Python driver
    cdef int xmit_fd
    cdef bint xmit_vnet_hdr

    def __cinit__(self, *args, **kwargs):
        self.qdisc = SKBQueue(1000)
        self.stats = NetDeviceStats()
        self.xmit_fd = -1

    def xmit_attach(self, int fd, str kind, bint vnet_hdr):
        """Send through descriptor fd: kind "tap" (write) or "packet" (sendmmsg).
        The class's ndo_start_xmit must be xmit_one: dev_queue_xmit writes
        from C in its place."""
        if getattr(type(self), "ndo_start_xmit", None) is not NetDeviceBase.xmit_one:
            raise TypeError("xmit_attach needs ndo_start_xmit = NetDeviceBase.xmit_one")
        if kind == "tap":
            self.xmit_fn = tap_write_batch
        elif kind == "packet":
            self.xmit_fn = pkt_tx_batch
        else:
            raise ValueError(f"kind must be 'tap' or 'packet', not {kind!r}")
        self.xmit_fd = fd
        self.xmit_vnet_hdr = vnet_hdr

    def xmit_detach(self):
        self.xmit_fn = NULL
        self.xmit_fd = -1

    @property
    def xmit_attached(self):
        """Whether frames go to a descriptor from C (xmit_attach)."""
        return self.xmit_fn != NULL

    def qdisc_run(self, Py_ssize_t quota=64):
        """Send queued frames, `quota` per ndo_xmit_batch call, until the queue
        is empty or the driver is busy; what it did not take goes back to the
        head (dev_requeue_skb: never lost) and the queue stops."""
        cdef SKBQueue q = self.qdisc
        cdef list batch
        cdef Py_ssize_t i, n, sent
        while not self.queue_stopped and q._q:
            n = min(quota, len(q._q))
            batch = [q.dequeue() for i in range(n)]
            hook = _skbtrace_ns.get("hook") if _skbtrace_ns is not None else None
            if hook is not None:
                for skb in batch:
                    hook("start_xmit", skb)
            sent = self.ndo_xmit_batch(batch)
            if sent < n:
                for i in range(n - 1, sent - 1, -1):
                    q.enqueue_head(batch[i])
                self.queue_stopped = True

    def rx_batch(self, Py_ssize_t budget, now=None):
        """Frames received by the driver (ndo_poll), counted, with skb.dev set
        to this device."""
        cdef SKB s
        skbs = self.ndo_poll(budget, now)
        for x in skbs:
            s = <SKB?>x
            s.dev = self
            self.stats.rx_packets += 1
            self.stats.rx_bytes += skb_len(&s.skb)
        return skbs

    cdef int _xmit_one(self, SKB skb) except -1:
        cdef sk_buff *arr[1]
        cdef int status = 0, done
        cdef uint64_t nbytes = 0
        if self.xmit_fn == NULL:
            raise ValueError("device is down")
        arr[0] = &skb.skb
        if skb_len(&skb.skb) <= _XMIT_GIL_MAX:
            done = self.xmit_fn(self.xmit_fd, arr, 1, self.xmit_vnet_hdr, &status, &nbytes)
        else:
            skb.exports += 1
            with nogil:
                done = self.xmit_fn(self.xmit_fd, arr, 1, self.xmit_vnet_hdr, &status, &nbytes)
            skb.exports -= 1
        if not done:
            return _NETDEV_TX_BUSY          # full: the queue layer keeps it
        if status:
            self.stats.tx_errors += 1       # refused by the kernel: counted, not retried
        else:
            self.stats.tx_packets += 1
            self.stats.tx_bytes += nbytes
        return _NETDEV_TX_OK

    def xmit_one(self, SKB skb not None):
        """ndo_start_xmit of an attached descriptor: NETDEV_TX_OK (sent, or
        refused by the kernel and counted in tx_errors) or NETDEV_TX_BUSY."""
        return self._xmit_one(skb)

    def xmit_batch(self, skbs):
        """ndo_xmit_batch of an attached descriptor: how many skbs it took (sent
        or refused and counted); the rest found the kernel's queue full."""
        if self.xmit_fn == NULL:
            raise ValueError("device is down")
        done, errors, nbytes = _xmit_skbs(self.xmit_fn, self.xmit_fd, skbs, self.xmit_vnet_hdr)
        self.stats.tx_packets += done - len(errors)
        self.stats.tx_bytes += nbytes
        self.stats.tx_errors += len(errors)
        return done

    def xmit_gso(self, SKB skb not None, bint hw_csum=False):
        """validate_xmit_skb's software GSO and the driver's batch write in
        one C call, the GIL released: the GSO frame (data at the Ethernet
        header) is cut as pynet.gso.skb_gso_segment cuts it (with hw_csum the
        segments keep partial checksums for the device), each segment gets
        the frame's Ethernet header and all are written, counted in stats.
        Returns the segments the kernel's full queue left, as skbs for the
        qdisc. ValueError for a frame GSO cannot cut; skb is not changed."""
        cdef sk_buff snap = skb.skb
        cdef seg_plan plan
        cdef uint32_t mac_len = 14, i, n
        cdef int rc, done = 0, nerr = 0, fd = self.xmit_fd
        cdef bint vnet = self.xmit_vnet_hdr
        cdef xmit_batch_fn xmit = self.xmit_fn
        cdef uint64_t nbytes = 0
        cdef const unsigned char *eth = skb_data(&skb.skb)
        cdef sk_buff *segs
        cdef sk_buff **arr
        cdef int *status
        cdef SKB left
        if xmit == NULL:
            raise ValueError("device is down")
        if skb_len(&snap) >= 14 and (eth[12] << 8 | eth[13]) == 0x8100:    # ETH_P_8021Q
            mac_len = 18
        if skb_len(&snap) < mac_len:
            raise ValueError("xmit_gso: frame shorter than its Ethernet header")
        __skb_pull(&snap, mac_len)          # the snapshot only: the caller's skb stays
        snap.network_header = <uint16_t>snap.data
        rc = skb_gso_plan(&snap, hw_csum, &plan)
        if rc != GSO_OK:
            raise ValueError(f"skb_gso_segment: {gso_strerror(rc).decode()} "
                             f"(len {skb_len(&snap)}, gso_size {snap.gso_size}, "
                             f"gso_type {snap.gso_type:#x})")
        n = plan.nsegs
        segs = <sk_buff *>calloc(n, sizeof(sk_buff))
        arr = <sk_buff **>malloc(n * sizeof(sk_buff *))
        status = <int *>malloc(n * sizeof(int))
        try:
            if segs == NULL or arr == NULL or status == NULL:
                raise MemoryError()
            for i in range(n):
                if skb_init(&segs[i], seg_plan_size(&plan, i)) != 0:
                    raise MemoryError()
                arr[i] = &segs[i]
            skb.exports += 1             # the buffer stays put while the GIL is free
            with nogil:
                skb_gso_fill(&snap, &plan, arr)
                for i in range(n):
                    __skb_push(arr[i], mac_len)
                    memcpy(skb_data(arr[i]), eth, mac_len)
                    arr[i].mac_header = <uint16_t>arr[i].data
                done = xmit(fd, arr, <int>n, vnet, status, &nbytes)
            skb.exports -= 1
            for i in range(<uint32_t>done):
                if status[i]:
                    nerr += 1
            self.stats.tx_packets += done - nerr
            self.stats.tx_bytes += nbytes
            self.stats.tx_errors += nerr     # refused by the kernel: counted, not retried
            rest = []
            for i in range(<uint32_t>done, n):
                left = _skb_uninit()          # takes over the segment's buffer
                left.skb = segs[i]
                segs[i].shinfo = NULL
                left.sk, left.dev = skb.sk, skb.dev
                rest.append(left)
            return rest
        finally:
            if segs != NULL:
                for i in range(n):
                    if segs[i].shinfo != NULL:
                        skb_release(&segs[i])
            free(segs)
            free(arr)
            free(status)


def skb_pool_fill(list pool, Py_ssize_t n, uint32_t size, uint32_t headroom):
    """Append empty skbs of `size` bytes, `headroom` reserved, to pool until
    it holds n: a driver's receive buffers."""
    cdef SKB s
    while len(pool) < n:
        s = alloc_skb(size)
        _skb_check(skb_reserve(&s.skb, headroom), "skb_reserve", &s.skb, headroom)
        pool.append(s)


def dev_xmit_init(generic, skbtrace, unsigned long long hw_csum, unsigned long long ip_csum):
    """Hand this module netdevice's Python dev_queue_xmit (every case the
    fast path leaves), the pynet.skbtrace module and the NETIF_F_HW_CSUM and
    NETIF_F_IP_CSUM bits."""
    global _xmit_generic, _skbtrace_ns, _f_hw_csum, _f_ip_csum
    _xmit_generic = generic
    _skbtrace_ns = skbtrace.__dict__
    _f_hw_csum, _f_ip_csum = hw_csum, ip_csum


def dev_queue_xmit(skb):
    """Queue a frame (data at the Ethernet header) on skb.dev and run the queue.

    Returns NET_XMIT_SUCCESS, or NET_XMIT_DROP when the device is down, the
    frame cannot be finished in software, or the transmit queue is full
    (each counted in dev.stats.tx_dropped). A frame that needs no software
    offload but a checksum (finished here), on an idle running queue with
    tracing off, goes straight to the driver from here (an attached
    descriptor's write in C, unless the instance's ndo_start_xmit was
    replaced); the rest takes netdevice's path.
    """
    cdef SKB s
    cdef NetDeviceBase dev
    cdef PyObject **dictp
    cdef int rc
    if _skbtrace_ns is None:
        raise RuntimeError("dev_queue_xmit before pynet.dev.netdevice set it up")
    if not isinstance(skb, SKB):
        return _xmit_generic(skb)
    s = <SKB>skb
    if (not isinstance(s.dev, NetDeviceBase) or PyDict_GetItem(_skbtrace_ns, _HOOK) != _NONE
            or s.skb.gso_size or s.skb.mac_header == SKB_HDR_UNSET):
        return _xmit_generic(skb)
    dev = <NetDeviceBase>s.dev
    if not dev.up or dev.queue_stopped or dev.qdisc._q:
        return _xmit_generic(skb)
    if s.skb.ip_summed == CHECKSUM_PARTIAL and not (
            dev.features & _f_hw_csum or (dev.features & _f_ip_csum and s.skb.protocol == 0x0800)):
        try:
            skb_checksum_help(s)           # validate_xmit_skb's skb_csum_hwoffload_help
        except ValueError:
            return _xmit_generic(skb)      # which drops it, counted
    # An idle queue is bypassed, as a qdisc with TCQ_F_CAN_BYPASS is.
    dictp = _PyObject_GetDictPtr(dev)
    if dev.xmit_fn != NULL and (dictp == NULL or dictp[0] == NULL
                                or PyDict_GetItem(<object>dictp[0], _START_XMIT) == NULL):
        rc = dev._xmit_one(s)
    else:
        rc = dev.ndo_start_xmit(s)
    if rc == _NETDEV_TX_BUSY:
        dev.qdisc.enqueue_head(s)
        dev.queue_stopped = True
    return _NET_XMIT_SUCCESS
