"""The TAP driver against the Linux kernel in a namespace."""
import os
import select

import pytest

from arp import arp_request, parse_arp_reply
from pynet.dev.netdevice import NET_XMIT_SUCCESS, dev_queue_xmit
from pynet.netns import NetNamespace, kernel_peer
from pynet.skbuff import SKB

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
    replies = [parse_arp_reply(s.data) for s in wait_frames(dev, 1)]
    assert replies == [(peer.kernel_hwaddr, peer.kernel_addr, dev.hwaddr, me)]


def assert_counters_agree(peer):
    dev, k = peer.dev, peer.ns.link_stats(peer.ifname)
    assert (dev.stats.tx_packets, dev.stats.tx_bytes) == (k["rx_packets"], k["rx_bytes"])
    assert (dev.stats.rx_packets, dev.stats.rx_bytes) == (k["tx_packets"], k["tx_bytes"])
    assert dev.stats.rx_errors == dev.stats.tx_errors == dev.stats.tx_dropped == 0


@pytest.mark.parametrize("offload", [False, True], ids=["plain", "vnet_hdr"])
def test_arp_through_tap_and_counters_agree(offload):
    with kernel_peer("tap", offload=offload) as peer:
        arp_exchange(peer)
        assert_counters_agree(peer)
        assert peer.dev.stats.tx_packets == 1 and peer.dev.stats.rx_packets == 1


def test_tap_lives_in_the_namespace_and_everything_goes_on_exit():
    class Boom(Exception):
        pass
    with pytest.raises(Boom):
        with kernel_peer("tap") as peer:
            name, ifname, fd = peer.ns.name, peer.ifname, peer.dev.fd
            assert ifname not in os.listdir("/sys/class/net")     # not in the root namespace
            assert ifname in peer.ns.links()
            raise Boom
    assert name not in os.listdir("/var/run/netns")
    with pytest.raises(OSError):
        os.fstat(fd)
    assert peer.dev.up is False


def test_persistent_tap_can_be_attached_again():
    with NetNamespace() as ns:
        from pynet.dev.tap import TapDevice
        first = TapDevice("pyn" + ns.name[3:], persist=True, netns=ns.name).open()
        name = first.name
        first.stop()
        assert name in ns.links()           # outlives its descriptor
        again = TapDevice(name, persist=False, netns=ns.name).open()  # attach, then drop persistence
        assert again.name == name
        again.stop()
        assert name not in ns.links()
