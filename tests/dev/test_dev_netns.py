"""TAP and namespace life cycle: nothing outlives its context manager."""
import os
import sys

import pytest

from pynet.netns import NetNamespace, kernel_peer, live_links

pytestmark = pytest.mark.priv


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


def test_veth_pair_goes_when_the_body_raises():
    with pytest.raises(KeyError):
        with kernel_peer("veth") as peer:
            outer, name = peer.outer_ifname, peer.ns.name
            assert outer in os.listdir("/sys/class/net") and peer.ifname in peer.ns.links()
            assert outer in live_links()         # what conftest's leak check watches
            assert peer.ifname not in os.listdir("/sys/class/net")
            raise KeyError
    assert outer not in os.listdir("/sys/class/net") and outer not in live_links()
    assert name not in os.listdir("/var/run/netns")


def test_commands_and_counters_inside_the_namespace():
    send = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            "s.sendto(b'x', ('{}', 9))")
    with kernel_peer("tap") as peer:
        assert peer.ns.counters()["Udp"]["NoPorts"] == 0
        for n in (1, 2):       # a datagram to a closed port, sent by a process inside
            peer.ns.run([sys.executable, "-c", send.format(peer.kernel_addr)], check=True)
            assert peer.ns.counters()["Udp"]["NoPorts"] == n


def test_bad_arguments_raise_what_the_socket_module_would():
    from pynet import _core
    from pynet.dev.packet import PacketDevice
    with pytest.raises(ValueError):
        _core.tap_open_fd("pyn" + "x" * 20, False)      # longer than IFNAMSIZ
    with pytest.raises(OSError):
        PacketDevice("pynnosuchif0").open()             # if_nametoindex fails


def test_gso_ipv4_max_size_is_set_where_the_kernel_allows_and_refused_where_not():
    from pynet.netns import set_gso_ipv4_max_size
    with kernel_peer("veth", offload=True) as peer:
        set_gso_ipv4_max_size(peer.ifname, 131072, peer.ns.name)     # a veth: up to 524280
        with pytest.raises(OSError, match="kept gso_ipv4_max_size 131072"):
            set_gso_ipv4_max_size(peer.ifname, 1 << 30, peer.ns.name)
        with pytest.raises(OSError):
            set_gso_ipv4_max_size("pynnosuchdev", 131072, peer.ns.name)
    with kernel_peer("tap", offload=True) as peer:                  # a TAP's tso_max_size: 64 KB
        with pytest.raises(OSError, match="kept gso_ipv4_max_size 65536"):
            set_gso_ipv4_max_size(peer.ifname, 131072, peer.ns.name)
