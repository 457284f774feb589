"""virtio_net_hdr offloads (TAP IFF_VNET_HDR, AF_PACKET PACKET_VNET_HDR): 60 KB UDP GSO
frames in both directions."""
import hashlib
import select
import socket
import struct

import pytest

from frames import ipv4_header, ones_sum, tcp_gso_frame
from pynet.dev.netdevice import NET_XMIT_SUCCESS, dev_queue_xmit
from pynet.netns import kernel_peer
from pynet.skbuff import CHECKSUM_PARTIAL, SKB, SKB_GSO_UDP_L4

pytestmark = pytest.mark.priv

UDP_SEGMENT = 103          # linux/udp.h
PAYLOAD = bytes((i * 7 + i // 251) & 0xFF for i in range(60000))


def udp_gso_frame(dev, peer, sport, dport, payload, gso_size):
    """One Ethernet frame holding a UDP datagram too big for the MTU, left for
    the kernel to segment: CHECKSUM_PARTIAL with the pseudo-header sum in
    the UDP checksum field (not inverted), as Linux's udp_send_skb does."""
    src, dst = socket.inet_aton(peer.pynet_addr()), socket.inet_aton(peer.kernel_addr)
    ulen = 8 + len(payload)
    ip = ipv4_header(0, 20 + ulen, 17, src, dst, ident=1)
    pseudo = ones_sum(src + dst + struct.pack("!HH", 17, ulen))
    udp = struct.pack("!HHHH", sport, dport, ulen, pseudo)
    eth = peer.kernel_hwaddr + dev.hwaddr + b"\x08\x00"
    skb = SKB.from_bytes(eth + ip + udp + payload, headroom=dev.needed_headroom)
    skb.set_partial(skb.data_offset + 14 + 20, 6)
    skb.gso_size, skb.gso_type = gso_size, SKB_GSO_UDP_L4
    skb.dev = dev
    return skb


KINDS = pytest.mark.parametrize("kind", ["tap", "veth"], ids=["tap", "af_packet"])


@KINDS
def test_one_60k_udp_gso_write_arrives_as_separate_intact_datagrams(kind):
    with kernel_peer(kind, offload=True) as peer:
        dev = peer.dev
        rx = peer.ns.run_in(socket.socket, socket.AF_INET, socket.SOCK_DGRAM)
        with rx:
            rx.bind((peer.kernel_addr, 0))
            rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            port = rx.getsockname()[1]
            before = peer.ns.counters()["Udp"]["InDatagrams"]
            skb = udp_gso_frame(dev, peer, 40000, port, PAYLOAD, 1472)
            assert dev_queue_xmit(skb) == NET_XMIT_SUCCESS
            assert dev.stats.tx_packets == 1        # one write for the whole 60 KB
            rx.settimeout(2)
            got = []
            while sum(map(len, got)) < len(PAYLOAD):
                got.append(rx.recv(65536))
        assert len(got) == -(-len(PAYLOAD) // 1472)
        assert all(len(d) == 1472 for d in got[:-1])
        assert hashlib.sha256(b"".join(got)).digest() == hashlib.sha256(PAYLOAD).digest()
        c = peer.ns.counters()
        assert c["Udp"]["InDatagrams"] - before == len(got)
        assert c["Udp"]["InCsumErrors"] == 0


@KINDS
def test_kernel_udp_gso_send_is_read_as_one_gso_skb(kind):
    with kernel_peer(kind, offload=True) as peer:
        dev = peer.dev
        with peer.ns.iproute() as ipr:    # the kernel knows pynet's MAC: no ARP round trip
            ipr.neigh("add", dst=peer.pynet_addr(), lladdr=dev.hwaddr.hex(":"),
                      ifindex=ipr.link_lookup(ifname=peer.ifname)[0], state="permanent")
        tx = peer.ns.run_in(socket.socket, socket.AF_INET, socket.SOCK_DGRAM)
        with tx:
            tx.setsockopt(socket.SOL_UDP, UDP_SEGMENT, 1400)
            tx.sendto(PAYLOAD, (peer.pynet_addr(), 9))
        frames = []
        while not frames and select.select([dev], [], [], 2)[0]:
            frames = dev.poll(64)
    assert len(frames) == 1
    skb = frames[0]
    assert skb.gso_type & SKB_GSO_UDP_L4 and skb.gso_size == 1400
    assert skb.ip_summed == CHECKSUM_PARTIAL
    assert skb.csum_start == skb.data_offset + 14 + 20 and skb.csum_offset == 6
    assert bytes(skb.data[14 + 28:]) == PAYLOAD
    assert dev.stats.rx_errors == 0


@KINDS
def test_offload_request_the_header_cannot_express_is_refused_and_counted(kind):
    with kernel_peer(kind, offload=True) as peer:
        dev = peer.dev
        bad = udp_gso_frame(dev, peer, 40000, 9, PAYLOAD[:3000], 1472)
        bad.gso_type = 1 << 12                       # no virtio GSO type for this
        dev.features |= 1 << (16 + 12)               # pretend the device takes it
        skb = udp_gso_frame(dev, peer, 40000, 9, b"ok", 0)
        skb.ip_summed = 0
        assert dev.ndo_xmit_batch([bad, skb]) == 2
        assert (dev.stats.tx_errors, dev.stats.tx_packets) == (1, 1)
        assert peer.ns.link_stats(peer.ifname)["rx_packets"] == 1


def test_64k_tcp_super_segment_crosses_the_tap_in_one_write():
    with kernel_peer("tap", offload=True) as peer:
        dev = peer.dev
        before = peer.ns.counters()["Tcp"]
        payload = bytes(range(256)) * 255                # 65,280 bytes: tot_len 65,320
        skb = tcp_gso_frame(dev, payload, 1448, socket.inet_aton(peer.pynet_addr()),
                            socket.inet_aton(peer.kernel_addr), peer.kernel_hwaddr, dport=9)
        assert dev_queue_xmit(skb) == NET_XMIT_SUCCESS
        after = peer.ns.counters()["Tcp"]
    assert dev.stats.tx_packets == 1 and dev.stats.tx_bytes == 14 + 40 + len(payload)
    # The kernel took it as one segment, checksum good, and reset the unknown connection.
    assert after["InSegs"] - before["InSegs"] == 1
    assert after["InCsumErrors"] == before["InCsumErrors"] and after["InErrs"] == before["InErrs"]
    assert after["OutRsts"] - before["OutRsts"] == 1
