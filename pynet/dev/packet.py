"""AF_PACKET driver: pynet on an existing interface (a veth whose peer is the
kernel in a namespace).

Receive, by default, through a TPACKET_V3 ring without vnet_hdr and with
one recvmsg() per frame with it (rx_ring chooses). The ring: the kernel
fills blocks of frames and hands over a block when it is full or after
`retire_ms` (so a lone frame waits at most that long); frames are copied
into skbs in C, so each byte is copied twice (into the ring, then out),
and one poll takes a whole block without a syscall per frame: the better
choice for MSS-sized frames (6.2-6.3 against 4.6 Gbit/s kernel -> pynet,
6 Dec 2026). recvmsg() copies each frame once, from the kernel's skb
straight into pynet's, and merges a TCP run in place as the TAP reader
does: with the kernel's 64 KB GSO frames that is 42-44 against 32-33
Gbit/s. Either way the kernel's queue is bounded (the ring, or `rcvbuf`
bytes of socket buffer) and what it drops for want of room is counted in
stats.rx_dropped. Transmit
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
    rx_ring: receive through the ring (block_size, block_nr, retire_ms);
    False reads with recvmsg and needs vnet_hdr: a frame's virtio header
    says what the ring's frame status would (a checksum left partial by the
    kernel next door). None (the default): the ring unless vnet_hdr.
    Without the ring a frame longer than the room it is read into is counted
    in rx_errors, never cut: every skb holds a 64 KB frame, but one that
    arrives while a GRO run is open gets only the room the run left, so a
    far end that sends BIG TCP frames wants the ring. rcvbuf is SO_RCVBUF's
    (the kernel doubles it; without CAP_NET_ADMIN net.core.rmem_max caps it).
    """

    def __init__(self, ifname, *, vnet_hdr=False, qdisc_bypass=True, mtu=1500, hwaddr=None,
                 rx_headroom=64, block_size=1 << 18, block_nr=16, retire_ms=1,
                 needed_headroom=0, tx_queue_len=1000, gso_ipv4_max_size=GSO_LEGACY_MAX_SIZE,
                 gro_ipv4_max_size=None, rx_ring=None, rcvbuf=4 << 20):
        super().__init__(ifname, mtu=mtu, hwaddr=hwaddr or random_hwaddr(),
                         features=TAP_OFFLOAD_FEATURES if vnet_hdr else 0, rx_headroom=rx_headroom,
                         needed_headroom=needed_headroom, tx_queue_len=tx_queue_len,
                         gso_ipv4_max_size=gso_ipv4_max_size,
                         gro_ipv4_max_size=gro_ipv4_max_size or (
                             TAP_BIG_TCP_MAX_SIZE if vnet_hdr else GSO_LEGACY_MAX_SIZE))
        if rx_ring is False and not vnet_hdr:
            raise ValueError("rx_ring=False needs vnet_hdr=True")
        self.vnet_hdr = vnet_hdr
        self.qdisc_bypass = qdisc_bypass
        self._rx_args = dict(block_size=block_size, block_nr=block_nr, retire_ms=retire_ms,
                             vnet_hdr=vnet_hdr, rcvbuf=rcvbuf,
                             ring=not vnet_hdr if rx_ring is None else rx_ring)
        self.rx = None
        self.tx_fd = -1

    def ndo_open(self):
        index = socket.if_nametoindex(self.name)
        self.rx = _core.PacketRx(index, **self._rx_args)
        try:
            self.tx_fd = _core.packet_tx_open(index, self.vnet_hdr, self.qdisc_bypass)
        except BaseException:
            self.rx.close()
            raise
        self.xmit_attach(self.tx_fd, "packet", self.vnet_hdr)

    def ndo_stop(self):
        self.xmit_detach()
        self.rx.close()
        os.close(self.tx_fd)
        self.tx_fd = -1
        self._pool.clear()

    def fileno(self):
        if self.rx is None:
            raise ValueError("device is down")
        return self.rx.fileno()

    def _vnet_hdr(self):
        return self.vnet_hdr

    def _read(self, skbs, tstamp_ns, gro_max_len):
        got, bad, merged, dropped = self.rx.read(skbs, tstamp_ns, gro_max_len)
        self.stats.rx_dropped += dropped
        return got, bad, merged
