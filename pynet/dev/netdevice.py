"""Network devices: Linux's struct net_device, net_device_ops and dev_queue_xmit.

A driver subclasses NetDevice and supplies the ops:

- ``ndo_open()`` / ``ndo_stop()``: bring the hardware (descriptor) up / down;
- ``ndo_start_xmit(skb)``: hand one frame (data at the Ethernet header) to the
  hardware; return NETDEV_TX_OK (the driver owns the skb now and counts it
  in stats: tx_packets/tx_bytes, or tx_errors/tx_dropped) or NETDEV_TX_BUSY
  (not taken: the queue layer keeps it); ``ndo_xmit_batch(skbs)`` may send
  several at once;
- ``ndo_poll(budget, now)``: NAPI's poll: at most ``budget`` received skbs
  (the generic layer counts rx_packets/rx_bytes; the driver counts what it
  drops in rx_errors/rx_dropped).

The stack uses only the generic half: ``open()``, ``stop()``, ``poll()``,
``fileno()`` and ``dev_queue_xmit(skb)``. Frames wait in a bounded transmit
queue (the qdisc) while the driver is busy; ``dev_queue_xmit`` finishes
checksums and segments GSO skbs in software for a device that lacks the
offload (Linux's validate_xmit_skb), so the stack may always build
CHECKSUM_PARTIAL and GSO skbs.

The per-frame half runs in C (pynet/tap.pxi): NetDevice's up,
queue_stopped, qdisc and stats live in _core.NetDeviceBase, and
dev_queue_xmit is _core.dev_queue_xmit, which hands a frame that needs
nothing else straight to the driver, and for a driver over a descriptor
(xmit_attach: TAP, AF_PACKET) writes it without a Python frame; a GSO skb
for such a driver without the offload is cut and written in one C call
(xmit_gso). Everything else takes the Python path below.
"""
import itertools
import os

from pynet import _core, skbtrace
from pynet.checksum import skb_checksum_help
from pynet.gso import skb_gso_segment
from pynet.skbuff import CHECKSUM_PARTIAL, SKB_GSO_DODGY, SKBQueue
from pynet.wire.ethernet import ETH_HLEN, ETH_P_8021Q, ETH_P_IP

# net_device_ops.ndo_start_xmit results (include/linux/netdevice.h).
NETDEV_TX_OK = 0x00
NETDEV_TX_BUSY = 0x10
# dev_queue_xmit results.
NET_XMIT_SUCCESS = 0x00
NET_XMIT_DROP = 0x01

# Feature bits, laid out as Linux's netdev_features_t: a GSO feature is the
# skb's SKB_GSO_* bit shifted by NETIF_F_GSO_SHIFT, so net_gso_ok() is a mask test.
NETIF_F_SG = 1 << 0
NETIF_F_IP_CSUM = 1 << 1          # IPv4 TCP/UDP checksums only
NETIF_F_HW_CSUM = 1 << 3          # any checksum at csum_start/csum_offset
NETIF_F_RXCSUM = 1 << 8           # receive path reports verified checksums
NETIF_F_GRO = 1 << 14             # the stack merges received TCP runs (pynet.gro)
NETIF_F_GSO_SHIFT = 16
NETIF_F_TSO = 1 << (NETIF_F_GSO_SHIFT + 0)       # SKB_GSO_TCPV4
NETIF_F_TSO_ECN = 1 << (NETIF_F_GSO_SHIFT + 3)   # SKB_GSO_TCP_ECN
NETIF_F_TSO6 = 1 << (NETIF_F_GSO_SHIFT + 5)      # SKB_GSO_TCPV6
NETIF_F_GSO_UDP_L4 = 1 << (NETIF_F_GSO_SHIFT + 17)  # SKB_GSO_UDP_L4
NETIF_F_GSO_MASK = ((1 << 18) - 1) << NETIF_F_GSO_SHIFT

# Linux's GSO_LEGACY_MAX_SIZE and GSO_MAX_SIZE: an IPv4 datagram's tot_len
# limit, and how far BIG TCP lets a GSO skb grow past it.
GSO_LEGACY_MAX_SIZE = 65536
GSO_MAX_SIZE = 8 * GSO_LEGACY_MAX_SIZE
# The longest frame a TAP or an AF_PACKET socket with a virtio header hands
# its reader: a 64 KB IP packet behind a VLAN-tagged Ethernet header.
GSO_MAX_FRAME = _core.RX_FRAME_MAX

_ifindex = itertools.count(1)


def net_gso_ok(features, gso_type):
    """Whether a device with `features` segments skbs of `gso_type` itself."""
    need = ((gso_type & ~SKB_GSO_DODGY) << NETIF_F_GSO_SHIFT) & NETIF_F_GSO_MASK
    return features & need == need


# struct rtnl_link_stats64, the fields pynet keeps (rx/tx packets, bytes,
# errors, dropped); in C so that the transmit fast path counts without Python.
NetDeviceStats = _core.NetDeviceStats


class NetDevice(_core.NetDeviceBase):
    """One network interface. Subclasses are drivers; see the module docstring.

    Attributes: name, ifindex, mtu, hwaddr (6 bytes), features (NETIF_F_*),
    needed_headroom (bytes the stack should reserve in front of the Ethernet
    header), stats, tx_queue_len (bound of the transmit queue), up,
    queue_stopped, gso_ipv4_max_size (the largest IPv4 GSO datagram the
    stack builds for it, as Linux's: over 65536 they are BIG TCP ones,
    tot_len 0), gro_ipv4_max_size (the largest one GRO builds from what it
    receives, likewise).
    """

    def __init__(self, name, *, mtu=1500, hwaddr=b"\x00" * 6, features=0,
                 needed_headroom=0, tx_queue_len=1000, gso_ipv4_max_size=GSO_LEGACY_MAX_SIZE,
                 gro_ipv4_max_size=GSO_LEGACY_MAX_SIZE):
        if len(hwaddr) != 6:
            raise ValueError("hwaddr must be 6 bytes")
        for what, size in (("gso", gso_ipv4_max_size), ("gro", gro_ipv4_max_size)):
            if not 0 < size <= GSO_MAX_SIZE:
                raise ValueError(f"{what}_ipv4_max_size must be 1..{GSO_MAX_SIZE}, not {size}")
        self.name = name
        self.ifindex = next(_ifindex)
        self.mtu = mtu
        self.hwaddr = bytes(hwaddr)
        self.features = features
        self.gso_ipv4_max_size = gso_ipv4_max_size
        self.gro_ipv4_max_size = gro_ipv4_max_size
        self.needed_headroom = needed_headroom
        self.stats = NetDeviceStats()
        self.tx_queue_len = tx_queue_len
        self.qdisc = SKBQueue(tx_queue_len)
        self.up = False
        self.queue_stopped = False

    # -- net_device_ops: drivers override these -------------------------------
    def ndo_open(self):
        pass

    def ndo_stop(self):
        pass

    def ndo_start_xmit(self, skb):
        raise NotImplementedError

    def ndo_poll(self, budget, now):
        raise NotImplementedError

    def fileno(self):
        """A descriptor that becomes readable when frames arrive."""
        raise NotImplementedError

    # -- generic device layer --------------------------------------------------
    def open(self):
        """dev_open: start the hardware, then accept frames."""
        if not self.up:
            self.ndo_open()
            self.up = True
            self.queue_stopped = False
        return self

    def stop(self):
        """dev_close: drop what is still queued (counted) and stop the hardware."""
        if self.up:
            self.up = False
            self.stats.tx_dropped += self.qdisc.purge()
            self.ndo_stop()

    close = stop

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.stop()

    def netif_stop_queue(self):
        self.queue_stopped = True

    def netif_wake_queue(self):
        """The driver has room again: let the queued frames go."""
        self.queue_stopped = False
        self.qdisc_run()

    def ndo_xmit_batch(self, skbs):
        """Send several frames; return how many the driver took (the rest
        found it busy). Drivers that can write a batch in one call override it."""
        for i, skb in enumerate(skbs):
            if self.ndo_start_xmit(skb) == NETDEV_TX_BUSY:
                return i
        return len(skbs)

    def poll(self, budget=64, now=None):
        """NAPI poll: retry a busy transmit queue, then return up to `budget`
        received skbs (data and mac_header at the Ethernet header; checksum
        and GSO offload state in ip_summed / csum_* / gso_*). `now` is the
        caller's clock, for wrappers that delay or rate-limit."""
        if not self.up:
            return []
        if self.queue_stopped or self.qdisc:
            self.netif_wake_queue()
        return self.rx_batch(budget, now)

    def __repr__(self):
        return (f"<{type(self).__name__} {self.name} ifindex={self.ifindex} mtu={self.mtu} "
                f"{'up' if self.up else 'down'}>")


class BacklogDevice(NetDevice):
    """A device whose received frames wait in memory, in a bounded backlog (as
    netif_rx's), with an eventfd readable while it holds any: loopback and the
    in-memory pipe. A full backlog, or one still holding frames when the
    device stops, drops them into stats.rx_dropped."""

    def __init__(self, name, *, rx_queue_len=1000, **kwargs):
        super().__init__(name, **kwargs)
        self.rxq = SKBQueue(rx_queue_len)
        self._efd = None

    def ndo_open(self):
        self._efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)

    def ndo_stop(self):
        self.stats.rx_dropped += self.rxq.purge()
        os.close(self._efd)
        self._efd = None

    def fileno(self):
        if self._efd is None:
            raise ValueError("device is down")
        return self._efd

    def netif_rx(self, skb):
        """Queue a received frame for the next poll; False (counted) when the backlog is full."""
        if not self.rxq:
            os.eventfd_write(self._efd, 1)
        if not self.rxq.enqueue(skb):
            self.stats.rx_dropped += 1
            return False
        return True

    def ndo_poll(self, budget, now):
        q = self.rxq
        out = []
        while q and len(out) < budget:
            out.append(q.dequeue())
        if not q:
            try:
                os.eventfd_read(self._efd)
            except BlockingIOError:
                pass
        return out


class BatchDevice(NetDevice):
    """A driver over a kernel descriptor whose frames move in C batches with
    the GIL released (TAP, AF_PACKET). Receive fills skbs from a pool of
    empty, preallocated ones; transmit goes through the descriptor the
    driver attaches in ndo_open (xmit_attach), counted in C: a frame is sent
    or refused (tx_errors), or the kernel's queue is full (NETDEV_TX_BUSY).

    With virtio headers and NETIF_F_GRO the reader does GRO itself: the
    frames that continue a TCP run go straight behind its first skb, up to
    gro_ipv4_max_size (csrc/gro.c's gro_run_*), so a kernel sender's 64 KB
    GSO frames reach the stack four to an skb without a copy; each receive
    skb then has room for that much. gro_merged counts those frames (they
    are in rx_packets too).

    Subclasses supply _read(skbs, tstamp_ns, gro_max_len) -> (filled,
    malformed, merged) and _vnet_hdr() (whether frames carry virtio headers).
    """
    ndo_start_xmit = _core.NetDeviceBase.xmit_one
    ndo_xmit_batch = _core.NetDeviceBase.xmit_batch

    def __init__(self, name, *, rx_headroom=64, **kwargs):
        super().__init__(name, **kwargs)
        self.rx_headroom = rx_headroom
        self.gro_merged = 0
        self._pool = []

    def _rx_gro_max_len(self):
        """The IPv4 length the reader merges a run up to, or 0 (no GRO in the driver)."""
        if self._vnet_hdr() and self.features & NETIF_F_GRO:
            return self.gro_ipv4_max_size
        return 0

    def _rx_size(self, gro_max_len):
        """Bytes per receive skb, headroom included: a whole frame, and the
        room a run may grow into past it (up to gro_max_len)."""
        if not self._vnet_hdr():
            return self.rx_headroom + self.mtu + ETH_HLEN + 4
        if gro_max_len > GSO_LEGACY_MAX_SIZE:
            return self.rx_headroom + GSO_MAX_FRAME + gro_max_len - GSO_LEGACY_MAX_SIZE
        return self.rx_headroom + GSO_MAX_FRAME

    def ndo_poll(self, budget, now):
        pool = self._pool
        gro_max_len = self._rx_gro_max_len()
        _core.skb_pool_fill(pool, budget, self._rx_size(gro_max_len), self.rx_headroom)
        batch = pool if len(pool) == budget else pool[:budget]
        got, bad, merged = self._read(batch, int(now * 1e9) if now is not None else 0,
                                      gro_max_len)
        self.stats.rx_errors += bad
        self.stats.rx_packets += merged          # frames, as the kernel counts them
        self.gro_merged += merged
        if not got:
            return []
        out = pool[:got]
        del pool[:got]
        return out


def validate_xmit_skb(skb, dev):
    """Finish in software what `dev` cannot offload: a list of skbs to send.

    GSO skbs are segmented unless the device handles their gso_type; a
    CHECKSUM_PARTIAL skb gets its checksum filled unless the device checksums.
    (net/core/dev.c: validate_xmit_skb, skb_csum_hwoffload_help.)
    """
    features = dev.features
    if skb.gso_size:
        if _gso_offloaded(skb, features):
            return [skb]
        return _gso_segment_frame(skb, hw_csum=bool(features & NETIF_F_HW_CSUM))
    if skb.ip_summed == CHECKSUM_PARTIAL and not _csum_offloaded(skb, features):
        skb_checksum_help(skb)
    return [skb]


def _gso_offloaded(skb, features):
    return net_gso_ok(features, skb.gso_type) and features & (NETIF_F_HW_CSUM | NETIF_F_IP_CSUM)


def _csum_offloaded(skb, features):
    if features & NETIF_F_HW_CSUM:
        return True
    return bool(features & NETIF_F_IP_CSUM) and skb.protocol == ETH_P_IP


def _gso_segment_frame(skb, hw_csum):
    """skb_gso_segment on a frame: segment from the IPv4 header, then give
    every segment a copy of the Ethernet header. With hw_csum the segments
    keep partial checksums for the device to finish."""
    data = skb.data
    mac_len = ETH_HLEN + (4 if (data[12] << 8 | data[13]) == ETH_P_8021Q else 0)
    eth = bytes(data[:mac_len])
    skb.pull(mac_len)
    if skb.network_header < 0:
        skb.reset_network_header()
    segs = skb_gso_segment(skb, hw_csum)
    for seg in segs:
        seg.push_data(eth)
        seg.reset_mac_header()
        seg.protocol = skb.protocol
        seg.dev = skb.dev
        seg.sk = skb.sk
    return segs


def _dev_queue_xmit(skb):
    """dev_queue_xmit's generic path, for every frame the C fast path
    (_core.dev_queue_xmit) does not take: tracing on, software GSO or
    checksum, a busy or stopped queue, a device that is down."""
    if skbtrace.hook is not None:
        skbtrace.hook("dev_queue_xmit", skb)
    dev = skb.dev
    if not dev.up:
        dev.stats.tx_dropped += 1
        return NET_XMIT_DROP
    if skb.mac_header < 0:
        skb.reset_mac_header()
    q = dev.qdisc
    if (skb.gso_size and dev.xmit_attached and not q and not dev.queue_stopped
            and skbtrace.hook is None and "ndo_start_xmit" not in vars(dev)
            and not _gso_offloaded(skb, dev.features)):
        return _gso_xmit_direct(skb, dev)
    if skb.gso_size or skb.ip_summed == CHECKSUM_PARTIAL:
        try:
            segs = validate_xmit_skb(skb, dev)
        except ValueError:
            dev.stats.tx_dropped += 1
            return NET_XMIT_DROP
        if len(segs) == 1:
            skb = segs[0]
    else:
        segs = None
    # An idle queue is bypassed, as a qdisc with TCQ_F_CAN_BYPASS is.
    if segs is None or len(segs) == 1:
        if not q and not dev.queue_stopped:
            if skbtrace.hook is not None:
                skbtrace.hook("start_xmit", skb)     # the driver's ndo_start_xmit (xmit_one)
            if dev.ndo_start_xmit(skb) == NETDEV_TX_BUSY:
                q.enqueue_head(skb)
                dev.queue_stopped = True
            return NET_XMIT_SUCCESS
        segs = (skb,)
    rc = NET_XMIT_SUCCESS
    for seg in segs:
        if not q.enqueue(seg):
            dev.stats.tx_dropped += 1
            rc = NET_XMIT_DROP
    dev.qdisc_run()
    return rc


def _gso_xmit_direct(skb, dev):
    """Software GSO into a descriptor driver with an idle queue: one C call
    cuts the frame and writes every segment (GIL released); what the
    kernel's full queue left waits in the qdisc, which is stopped."""
    try:
        rest = dev.xmit_gso(skb, hw_csum=bool(dev.features & NETIF_F_HW_CSUM))
    except ValueError:
        dev.stats.tx_dropped += 1
        return NET_XMIT_DROP
    rc = NET_XMIT_SUCCESS
    for seg in rest:
        if not dev.qdisc.enqueue(seg):
            dev.stats.tx_dropped += 1
            rc = NET_XMIT_DROP
    if rest:
        dev.queue_stopped = True
    return rc


_core.dev_xmit_init(_dev_queue_xmit, skbtrace, NETIF_F_HW_CSUM, NETIF_F_IP_CSUM)
dev_queue_xmit = _core.dev_queue_xmit


class DeviceWrapper(NetDevice):
    """A device stacked on another (smoltcp's phy middleware): the stack uses
    the wrapper, the wrapper drives `lower`. It takes the lower device's
    MTU, address, features and headroom, counts what passes through it in
    its own stats, and by default changes nothing. Subclasses override
    ndo_start_xmit / ndo_poll to look at or alter frames."""

    def __init__(self, lower, name=None):
        super().__init__(name or lower.name, mtu=lower.mtu, hwaddr=lower.hwaddr,
                         features=lower.features, needed_headroom=lower.needed_headroom,
                         tx_queue_len=lower.tx_queue_len,
                         gso_ipv4_max_size=lower.gso_ipv4_max_size)
        self.lower = lower

    def ndo_open(self):
        self.lower.open()

    def ndo_stop(self):
        self.lower.stop()

    def fileno(self):
        return self.lower.fileno()

    def ndo_start_xmit(self, skb):
        length = len(skb)
        rc = self.lower.ndo_start_xmit(skb)
        if rc == NETDEV_TX_OK:
            self.stats.tx_packets += 1
            self.stats.tx_bytes += length
        return rc

    def ndo_poll(self, budget, now):
        return self.lower.rx_batch(budget, now)
