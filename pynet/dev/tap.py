"""TAP driver: pynet's end of a Linux TAP interface.

The kernel sees an Ethernet interface; pynet reads and writes its frames
through the descriptor. Reads and writes run in C (csrc/frame_read.c,
csrc/tap.c) with the GIL released, several frames per call, on a
non-blocking descriptor.

offload=True turns on IFF_VNET_HDR: every frame carries a virtio_net_hdr,
so a 64 KB TCP or UDP GSO skb with CHECKSUM_PARTIAL crosses in one write
(a 256 KB TCP one, BIG TCP, where the kernel takes them: see TapDevice),
and TUNSETOFFLOAD lets the kernel hand pynet 64 KB GSO frames with partial
checksums (mapped to skb.gso_* and CHECKSUM_PARTIAL, or CHECKSUM_UNNECESSARY
for DATA_VALID). Without it the device carries plain MTU-sized frames and
the stack finishes checksums and segments itself.
"""
import os

from pynet import _core
from pynet.dev.netdevice import (GSO_LEGACY_MAX_SIZE, NETIF_F_GSO_UDP_L4, NETIF_F_HW_CSUM,
                                 NETIF_F_RXCSUM, NETIF_F_SG, NETIF_F_TSO, NETIF_F_TSO6,
                                 NETIF_F_TSO_ECN, BatchDevice)

TAP_OFFLOAD_FEATURES = (NETIF_F_SG | NETIF_F_HW_CSUM | NETIF_F_RXCSUM | NETIF_F_TSO
                        | NETIF_F_TSO_ECN | NETIF_F_TSO6 | NETIF_F_GSO_UDP_L4)
# What pynet accepts from the kernel: partial checksums, TCP and UDP GSO.
TUN_OFFLOADS = (_core.TUN_F_CSUM | _core.TUN_F_TSO4 | _core.TUN_F_TSO6 | _core.TUN_F_TSO_ECN
                | _core.TUN_F_USO4 | _core.TUN_F_USO6)
# pynet's super-segments into a TAP with offloads, where the kernel takes
# BIG TCP: 256 KB moved 28.6-29.9 Gbit/s to a kernel socket here, 128 KB
# 23.2, 512 KB 24.6, 64 KB 13.9-17.6 (4 s runs, 5 Dec 2026).
TAP_BIG_TCP_MAX_SIZE = 256 << 10


def kernel_takes_big_tcp(release=None):
    """Whether this kernel's IPv4 receive reads a GSO packet's tot_len of 0
    as its length (iph_totlen, Linux 6.3): older ones drop such frames."""
    fields = (release or os.uname().release).split(".")
    try:
        version = (int(fields[0]), int("".join(c for c in fields[1] if c.isdigit()) or 0))
    except (IndexError, ValueError):
        return False
    return version >= (6, 3)


def random_hwaddr():
    """A locally administered unicast MAC (IEEE 802: bit 1 set, bit 0 clear)."""
    b = bytearray(os.urandom(6))
    b[0] = (b[0] & 0xFE) | 0x02
    return bytes(b)


class TapDevice(BatchDevice):
    """TapDevice(name, offload=False, persist=False, netns=None, ...).

    Creates the TAP `name` or attaches to an existing persistent one when
    opened. With netns, the descriptor is opened by a thread inside that
    namespace, so the kernel's interface lives there. hwaddr is pynet's own
    MAC on this link (random by default); the kernel's end has its own.

    gso_ipv4_max_size: the largest TCP super-segment pynet writes. By
    default, with offload on a kernel that takes BIG TCP (6.3 and later),
    TAP_BIG_TCP_MAX_SIZE: the kernel receives a 256 KB GSO frame (IPv4
    tot_len 0) as one skb, so each write and each wake-up of the reader
    carries four times the data; otherwise 64 KB. The other way stays at
    64 KB: a TAP's tso_max_size is 65536, so the kernel may not raise its
    own gso_ipv4_max_size for it.

    gro_ipv4_max_size: how far the reader merges the kernel's frames of one
    TCP run when NETIF_F_GRO is on (BatchDevice); TAP_BIG_TCP_MAX_SIZE by
    default with offload, as the stack takes 256 KB skbs on any kernel.
    """

    def __init__(self, name="", *, offload=False, persist=False, netns=None, mtu=1500,
                 hwaddr=None, rx_headroom=64, needed_headroom=0, tx_queue_len=1000,
                 gso_ipv4_max_size=None, gro_ipv4_max_size=None):
        if gso_ipv4_max_size is None:
            gso_ipv4_max_size = (TAP_BIG_TCP_MAX_SIZE if offload and kernel_takes_big_tcp()
                                 else GSO_LEGACY_MAX_SIZE)
        super().__init__(name, mtu=mtu, hwaddr=hwaddr or random_hwaddr(),
                         features=TAP_OFFLOAD_FEATURES if offload else 0, rx_headroom=rx_headroom,
                         needed_headroom=needed_headroom, tx_queue_len=tx_queue_len,
                         gso_ipv4_max_size=gso_ipv4_max_size,
                         gro_ipv4_max_size=gro_ipv4_max_size or (
                             TAP_BIG_TCP_MAX_SIZE if offload else GSO_LEGACY_MAX_SIZE))
        self.offload = offload
        self.persist = persist
        self.netns = netns
        self.fd = -1

    def _open_fd(self):
        fd, self.name = _core.tap_open_fd(self.name, self.offload)
        try:
            _core.tap_set_persist_fd(fd, self.persist)
            if self.offload:
                try:
                    _core.tap_set_offload_fd(fd, TUN_OFFLOADS)
                except OSError:   # kernel older than 6.2: no UDP GSO towards us
                    _core.tap_set_offload_fd(fd, TUN_OFFLOADS & ~(_core.TUN_F_USO4 | _core.TUN_F_USO6))
        except BaseException:
            os.close(fd)
            raise
        return fd

    def ndo_open(self):
        if self.netns is None:
            self.fd = self._open_fd()
        else:
            from pynet.netns import run_in_netns
            self.fd = run_in_netns(self.netns, self._open_fd)
        self.xmit_attach(self.fd, "tap", self.offload)

    def ndo_stop(self):
        self.xmit_detach()
        os.close(self.fd)
        self.fd = -1
        self._pool.clear()

    def fileno(self):
        if self.fd < 0:
            raise ValueError("device is down")
        return self.fd

    def _vnet_hdr(self):
        return self.offload

    def _read(self, skbs, tstamp_ns, gro_max_len):
        return _core.frame_read_skbs(self.fd, skbs, self.offload, tstamp_ns, gro_max_len)
