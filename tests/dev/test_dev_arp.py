"""ARP against the Linux kernel in a namespace, through TAP and AF_PACKET (veth)."""
import select

import pytest

from frames import arp_request
from pynet.dev.netdevice import NET_XMIT_SUCCESS, dev_queue_xmit
from pynet.netns import kernel_peer
from pynet.skbuff import SKB
from pynet.wire import ArpPacket, ArpRepr, EthernetPacket
from pynet.wire.arp import ARPOP_REPLY
from pynet.wire.ethernet import ETH_P_ARP
from pynet.wire.ipv4 import ip_aton

pytestmark = pytest.mark.priv


def wait_frames(dev, want, timeout=2.0):
    got = []
    while len(got) < want and select.select([dev], [], [], timeout)[0]:
        got += dev.poll(64)
    return got


def arp_exchange(peer):
    dev = peer.dev
    me = peer.pynet_addr()
    skb = SKB.from_bytes(arp_request(dev.hwaddr, me, peer.kernel_addr), headroom=dev.needed_headroom)
    skb.dev = dev
    assert dev_queue_xmit(skb) == NET_XMIT_SUCCESS
    frames = [EthernetPacket(s.tobytes()) for s in wait_frames(dev, 1)]
    assert [(e.dst, e.ethertype) for e in frames] == [(dev.hwaddr, ETH_P_ARP)]
    reply = ArpRepr.parse(ArpPacket(frames[0].payload))
    assert reply.op == ARPOP_REPLY
    assert (reply.sha, reply.sip, reply.tha, reply.tip) == (peer.kernel_hwaddr, ip_aton(peer.kernel_addr),
                                                            dev.hwaddr, ip_aton(me))


def assert_counters_agree(peer):
    dev, k = peer.dev, peer.ns.link_stats(peer.ifname)
    assert (dev.stats.tx_packets, dev.stats.tx_bytes) == (k["rx_packets"], k["rx_bytes"])
    assert (dev.stats.rx_packets, dev.stats.rx_bytes) == (k["tx_packets"], k["tx_bytes"])
    assert dev.stats.rx_errors == dev.stats.tx_errors == dev.stats.tx_dropped == 0


@pytest.mark.parametrize("offload", [False, True], ids=["plain", "vnet_hdr"])
@pytest.mark.parametrize("kind", ["tap", "veth"], ids=["tap", "af_packet"])
def test_arp_request_answered_by_the_kernel_and_counters_agree(kind, offload):
    with kernel_peer(kind, offload=offload) as peer:
        arp_exchange(peer)
        assert_counters_agree(peer)
        assert peer.dev.stats.tx_packets == 1 and peer.dev.stats.rx_packets == 1
