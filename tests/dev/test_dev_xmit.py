"""dev_queue_xmit's C paths into a descriptor driver, without privilege: a
Unix datagram socket pair stands in for the TAP (one write() per frame, and
EAGAIN once the unread datagrams fill the sender's SO_SNDBUF).

- one frame per call goes straight to the descriptor, counted, its partial
  checksum finished unless the device offloads it, unless the device's
  ndo_start_xmit was replaced on the instance;
- a GSO frame on a device without the offload is cut and written by one C
  call (NetDeviceBase.xmit_gso): the bytes are exactly those of the Python
  path (netdevice._gso_segment_frame over pynet.gso), and what the full
  queue left waits in the qdisc and goes out after it is woken.
"""
import socket
import struct

import pytest

from frames import tcp_gso_frame, udp_frame
from oracle import ones_sum
from pynet.dev.netdevice import (NET_XMIT_SUCCESS, NETDEV_TX_OK, NETIF_F_HW_CSUM, BatchDevice, NetDevice,
                                 _gso_segment_frame, dev_queue_xmit)
from pynet.skbuff import CHECKSUM_PARTIAL

PAYLOAD = bytes((i * 13 + i // 7) & 0xFF for i in range(64000))


class SockDevice(BatchDevice):
    """A BatchDevice whose frames go to one end of a datagram socket pair."""

    def __init__(self, **kwargs):
        super().__init__("pynsock", hwaddr=b"\x02\x00\x00\x00\x00\x01", **kwargs)
        self.tx, self.rx = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.tx.setblocking(False)
        self.rx.setblocking(False)

    def ndo_open(self):
        self.xmit_attach(self.tx.fileno(), "tap", False)

    def ndo_stop(self):
        self.xmit_detach()
        self.tx.close()
        self.rx.close()

    def received(self):
        out = []
        while True:
            try:
                out.append(self.rx.recv(70000))
            except BlockingIOError:
                return out


@pytest.fixture
def dev():
    with SockDevice() as d:
        yield d


class Peer:            # what udp_frame needs of a pynet.netns KernelPeer
    kernel_hwaddr = b"\x02" * 6
    kernel_addr = "198.18.0.1"

    @staticmethod
    def pynet_addr():
        return "198.18.0.2"


def test_one_frame_goes_straight_to_the_descriptor_and_is_counted(dev):
    skb = udp_frame(dev, Peer, 9, b"hello")
    assert dev_queue_xmit(skb) == NET_XMIT_SUCCESS
    assert dev.received() == [skb.tobytes()]
    assert (dev.stats.tx_packets, dev.stats.tx_bytes) == (1, len(skb))
    assert not dev.qdisc and not dev.queue_stopped


@pytest.mark.parametrize("features", [0, NETIF_F_HW_CSUM])
def test_a_partial_checksum_is_finished_unless_the_device_does_it(dev, features):
    dev.features = features
    skb = udp_frame(dev, Peer, 9, b"partial", partial=True)
    sent = skb.tobytes()
    assert dev_queue_xmit(skb) == NET_XMIT_SUCCESS
    [frame] = dev.received()
    ip, udp = frame[14:34], frame[34:]
    pseudo = ip[12:20] + struct.pack("!HH", 17, len(udp))
    if features:
        assert frame == sent                          # left for the "hardware"
    else:
        assert ones_sum(pseudo + udp) == 0xFFFF       # RFC 768, finished in software
        assert frame[:40] == sent[:40] and frame[42:] == sent[42:]


def test_an_instance_ndo_start_xmit_is_called_instead_of_the_write(dev):
    seen = []
    dev.ndo_start_xmit = lambda skb: seen.append(skb.tobytes()) or NETDEV_TX_OK
    skb = udp_frame(dev, Peer, 9, b"probe")
    assert dev_queue_xmit(skb) == NET_XMIT_SUCCESS
    assert seen == [skb.tobytes()] and dev.received() == []


@pytest.mark.parametrize("mss", [1448, 536, 63999])
def test_gso_frame_is_cut_in_c_as_the_python_path_cuts_it(dev, mss):
    skb = tcp_gso_frame(dev, PAYLOAD, mss)
    want = [s.tobytes() for s in _gso_segment_frame(skb.copy(), hw_csum=False)]
    frame = skb.tobytes()
    got = []
    assert dev_queue_xmit(skb) == NET_XMIT_SUCCESS
    while True:
        got += dev.received()
        if not dev.qdisc and not dev.queue_stopped:
            break
        dev.netif_wake_queue()            # what the next poll does
    assert got == want and len(got) == -(-len(PAYLOAD) // mss)
    assert dev.stats.tx_packets == len(want) and dev.stats.tx_errors == 0
    assert dev.stats.tx_bytes == sum(map(len, want))
    assert skb.tobytes() == frame and skb.ip_summed == CHECKSUM_PARTIAL   # input untouched


def test_what_the_full_queue_left_waits_in_the_qdisc(dev):
    dev.tx.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)   # room for a few frames
    skb = tcp_gso_frame(dev, PAYLOAD, 1448)
    want = [s.tobytes() for s in _gso_segment_frame(skb.copy(), hw_csum=False)]
    dev_queue_xmit(skb)
    assert dev.queue_stopped and 0 < len(dev.qdisc) < 45
    assert dev.stats.tx_packets + len(dev.qdisc) == 45
    got = dev.received()
    assert len(got) == dev.stats.tx_packets
    assert all(s.dev is dev and s.mac_header == s.data_offset for s in dev.qdisc)
    while dev.qdisc or dev.queue_stopped:
        dev.netif_wake_queue()
        got += dev.received()
    assert got == want and dev.stats.tx_packets == 45


def test_a_frame_gso_cannot_cut_is_dropped_and_counted(dev):
    skb = tcp_gso_frame(dev, PAYLOAD[:3000], 1448)
    skb.gso_type = 1 << 12                # no software GSO for this type
    assert dev_queue_xmit(skb) != NET_XMIT_SUCCESS
    assert dev.stats.tx_dropped == 1 and dev.received() == []


def test_only_a_driver_whose_start_xmit_is_the_c_one_can_attach_a_descriptor():
    class PyDriver(NetDevice):
        def ndo_start_xmit(self, skb):
            return NETDEV_TX_OK
    with pytest.raises(TypeError):
        PyDriver("pynpy").xmit_attach(1, "tap", False)


def test_gso_ipv4_max_size_is_checked_and_big_tcp_needs_linux_6_3():
    from pynet.dev.netdevice import GSO_LEGACY_MAX_SIZE, GSO_MAX_SIZE
    from pynet.dev.tap import TAP_BIG_TCP_MAX_SIZE, TapDevice, kernel_takes_big_tcp
    for bad in (0, GSO_MAX_SIZE + 1):
        with pytest.raises(ValueError, match="gso_ipv4_max_size"):
            NetDevice("x", gso_ipv4_max_size=bad)
    assert NetDevice("x").gso_ipv4_max_size == GSO_LEGACY_MAX_SIZE
    releases = ("6.3.0", "6.18.44-fc-v1252", "7.0", "6.2.16", "5.15.0-91-generic", "6", "x.y")
    assert [kernel_takes_big_tcp(r) for r in releases] == [True] * 3 + [False] * 4
    assert TapDevice(offload=False).gso_ipv4_max_size == GSO_LEGACY_MAX_SIZE
    assert TapDevice(offload=True).gso_ipv4_max_size == (
        TAP_BIG_TCP_MAX_SIZE if kernel_takes_big_tcp() else GSO_LEGACY_MAX_SIZE)
    assert TapDevice(offload=True, gso_ipv4_max_size=65536).gso_ipv4_max_size == 65536
