"""AF_PACKET driver: pynet on an existing interface (a veth whose peer is the
kernel in a namespace).

Receive through a TPACKET_V3 ring: the kernel fills blocks of frames and
hands over a block when it is full or after `retire_ms` (so a lone frame
waits at most that long); frames are copied into skbs in C. Transmit
through a second socket of protocol 0 (it never receives its own frames)
with sendmmsg() batches and PACKET_QDISC_BYPASS. With vnet_hdr=True both
sockets carry a virtio_net_hdr (PACKET_VNET_HDR): a 64 KB GSO skb crosses
the veth whole (a 256 KB one, BIG TCP, when gso_ipv4_max_size says so and
the interface's own gso_ipv4_max_size lets it: set it with
pynet.netns.set_gso_ipv4_max_size, as kernel_peer does), and the kernel's
GSO frames arrive with their gso_* and partial checksum. Without it every frame must fit an MTU-sized slot: the
kernel's end must not send GSO frames (pynet.netns.kernel_peer turns its
TSO/GSO off; a larger frame is counted in rx_errors), and a frame it left
with a partial checksum (TP_STATUS_CSUMNOTREADY) arrives as CHECKSUM_PARTIAL
at its TCP/UDP checksum.

The interface must not carry pynet's own address on the kernel's side, or
the kernel answers pynet's traffic itself (with RSTs).
"""
import os
import socket

from pynet import _core
from pynet.dev.netdevice import GSO_LEGACY_MAX_SIZE, BatchDevice
from pynet.dev.tap import TAP_BIG_TCP_MAX_SIZE, TAP_OFFLOAD_FEATURES, random_hwaddr


class PacketDevice(BatchDevice):
    """PacketDevice(ifname, vnet_hdr=False, qdisc_bypass=True, ...).

    gro_ipv4_max_size: how far the reader merges the kernel's frames of one
    TCP run when NETIF_F_GRO is on (BatchDevice); 256 KB by default with
    vnet_hdr, as on a TAP.
    """

    def __init__(self, ifname, *, vnet_hdr=False, qdisc_bypass=True, mtu=1500, hwaddr=None,
                 rx_headroom=64, block_size=1 << 18, block_nr=16, retire_ms=1,
                 needed_headroom=0, tx_queue_len=1000, gso_ipv4_max_size=GSO_LEGACY_MAX_SIZE,
                 gro_ipv4_max_size=None):
        super().__init__(ifname, mtu=mtu, hwaddr=hwaddr or random_hwaddr(),
                         features=TAP_OFFLOAD_FEATURES if vnet_hdr else 0, rx_headroom=rx_headroom,
                         needed_headroom=needed_headroom, tx_queue_len=tx_queue_len,
                         gso_ipv4_max_size=gso_ipv4_max_size,
                         gro_ipv4_max_size=gro_ipv4_max_size or (
                             TAP_BIG_TCP_MAX_SIZE if vnet_hdr else GSO_LEGACY_MAX_SIZE))
        self.vnet_hdr = vnet_hdr
        self.qdisc_bypass = qdisc_bypass
        self._ring_args = (block_size, block_nr, retire_ms)
        self.ring = None
        self.tx_fd = -1

    def ndo_open(self):
        index = socket.if_nametoindex(self.name)
        self.ring = _core.PacketRing(index, *self._ring_args, vnet_hdr=self.vnet_hdr)
        try:
            self.tx_fd = _core.packet_tx_open(index, self.vnet_hdr, self.qdisc_bypass)
        except BaseException:
            self.ring.close()
            raise
        self.xmit_attach(self.tx_fd, "packet", self.vnet_hdr)

    def ndo_stop(self):
        self.xmit_detach()
        self.ring.close()
        os.close(self.tx_fd)
        self.tx_fd = -1
        self._pool.clear()

    def fileno(self):
        if self.ring is None:
            raise ValueError("device is down")
        return self.ring.fileno()

    def _vnet_hdr(self):
        return self.vnet_hdr

    def _read(self, skbs, tstamp_ns, gro_max_len):
        return self.ring.read(skbs, tstamp_ns, gro_max_len)
