"""The FIB: longest-prefix match, connected and gateway routes, genid, PMTU exceptions."""
import errno

import pytest

from pynet.dev.pipe import pipe_pair
from pynet.route import RTN_BROADCAST, RTN_LOCAL, RTN_UNICAST
from pynet.sock import __sk_dst_check
from pynet.stack import Stack
from pynet.wire.ipv4 import ip_aton, ip_ntoa


@pytest.fixture
def stack():
    s = Stack(seed=3)
    d1, _ = pipe_pair(("pynr0", "pynr0p"))
    d2, _ = pipe_pair(("pynr1", "pynr1p"), mtu=1280)
    s.add_device(d1)
    s.add_device(d2)
    s.add_address(d1, "198.18.0.2/24")
    s.add_address(d2, "198.19.5.2/24")
    s.d1, s.d2 = d1, d2
    return s


def route(s, addr):
    return s.fib.ip_route_output(ip_aton(addr))


def test_connected_routes_pick_the_device_and_source(stack):
    r = route(stack, "198.18.0.77")
    assert r.dev is stack.d1 and r.gw == 0 and ip_ntoa(r.saddr) == "198.18.0.2"
    assert r.nexthop() == ip_aton("198.18.0.77")
    r = route(stack, "198.19.5.9")
    assert r.dev is stack.d2 and r.mtu == 1280


def test_no_route_is_enetunreach_until_a_default_route(stack):
    with pytest.raises(OSError) as e:
        route(stack, "203.0.113.1")
    assert e.value.errno == errno.ENETUNREACH
    stack.add_route("0.0.0.0/0", via="198.18.0.1")
    r = route(stack, "203.0.113.1")
    assert r.dev is stack.d1 and ip_ntoa(r.nexthop()) == "198.18.0.1" and r.type == RTN_UNICAST


def test_longest_prefix_wins_over_every_shorter_one(stack):
    stack.add_route("0.0.0.0/0", via="198.18.0.1")
    stack.add_route("10.0.0.0/8", via="198.18.0.3")
    stack.add_route("10.1.0.0/16", via="198.19.5.1")
    stack.add_route("10.1.2.0/24", via="198.18.0.4")
    assert ip_ntoa(route(stack, "10.1.2.3").gw) == "198.18.0.4"
    assert ip_ntoa(route(stack, "10.1.3.3").gw) == "198.19.5.1"
    assert route(stack, "10.1.3.3").dev is stack.d2
    assert ip_ntoa(route(stack, "10.2.0.1").gw) == "198.18.0.3"
    assert ip_ntoa(route(stack, "11.0.0.1").gw) == "198.18.0.1"
    stack.del_route("10.1.2.0/24", via="198.18.0.4")
    assert ip_ntoa(route(stack, "10.1.2.3").gw) == "198.19.5.1"


def test_lower_metric_wins_within_a_prefix(stack):
    stack.add_route("10.0.0.0/8", via="198.18.0.3", metric=100)
    stack.add_route("10.0.0.0/8", via="198.19.5.1", metric=10)
    assert ip_ntoa(route(stack, "10.0.0.1").gw) == "198.19.5.1"


def test_gateway_must_be_on_link(stack):
    with pytest.raises(OSError) as e:
        stack.add_route("10.0.0.0/8", via="203.0.113.1")
    assert e.value.errno == errno.ENETUNREACH


def test_every_change_bumps_genid_and_stales_cached_dsts(stack):
    class S:
        sk_dst_cache = None
    sk = S()
    sk.sk_dst_cache = route(stack, "198.18.0.77")
    g = stack.fib.genid
    assert __sk_dst_check(sk) is sk.sk_dst_cache
    stack.add_route("198.18.0.77/32", via="198.19.5.1")
    assert stack.fib.genid == g + 1
    assert __sk_dst_check(sk) is None and sk.sk_dst_cache is None
    stack.del_route("198.18.0.77/32")
    stack.add_address(stack.d1, "198.18.1.2/24")
    stack.del_address(stack.d1, "198.18.1.2/24")
    assert stack.fib.genid == g + 4


def test_local_and_broadcast_addresses(stack):
    fib = stack.fib
    assert fib.is_local(ip_aton("198.18.0.2")) and not fib.is_local(ip_aton("198.18.0.3"))
    assert fib.is_broadcast(ip_aton("198.18.0.255")) and fib.is_broadcast(0xFFFFFFFF)
    rt = fib.ip_route_input(ip_aton("198.18.0.255"), ip_aton("198.18.0.9"), stack.d1)
    assert rt.type == RTN_BROADCAST
    assert fib.ip_route_input(ip_aton("198.18.0.255"), ip_aton("198.18.0.9"), stack.d2) is None
    assert fib.ip_route_input(ip_aton("198.18.0.9"), ip_aton("198.18.0.1"), stack.d1) is None


def test_local_input_dst_is_made_once_per_fib_generation(stack):
    fib = stack.fib
    me = ip_aton("198.18.0.2")
    rt = fib.ip_route_input(me, ip_aton("198.18.0.9"), stack.d1)
    assert rt.type == RTN_LOCAL and rt.dev is stack.d1 and rt.check() is rt
    assert fib.ip_route_input(me, ip_aton("198.18.0.7"), stack.d1) is rt   # any sender
    stack.add_route("10.0.0.0/8", via="198.18.0.1")
    again = fib.ip_route_input(me, ip_aton("198.18.0.9"), stack.d1)
    assert again is not rt and again.check() is again and rt.check() is None
    stack.del_address(stack.d1, "198.18.0.2/24")
    assert fib.ip_route_input(me, ip_aton("198.18.0.9"), stack.d1) is None

def test_pmtu_lowers_every_dst_to_the_destination_then_expires(stack):
    stack.add_route("0.0.0.0/0", via="198.18.0.1")
    old = route(stack, "203.0.113.1")
    assert old.mtu == 1500
    stack.fib.update_pmtu(ip_aton("203.0.113.1"), 1280, now=10.0)
    assert old.mtu == 1280 and route(stack, "203.0.113.1").mtu == 1280
    assert route(stack, "203.0.113.2").mtu == 1500
    stack.fib.update_pmtu(ip_aton("203.0.113.1"), 1400, now=11.0)   # RFC 1191: never raised by ICMP
    assert old.mtu == 1280
    stack.fib.update_pmtu(ip_aton("203.0.113.1"), 100, now=12.0)    # floor: min_pmtu
    assert old.mtu == 552
    stack.poll(12.0 + 599)
    assert old.mtu == 552
    stack.poll(12.0 + 601)
    assert old.mtu == 1500
