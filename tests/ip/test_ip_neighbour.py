"""The NUD machine, its queue and ARP, between two pynet stacks on a pipe, on a fake clock."""
import errno

from ipkit import A_ADDR, B_ADDR, Pair, fast_nud

from pynet.neighbour import (NUD_DELAY, NUD_FAILED, NUD_INCOMPLETE, NUD_NOARP, NUD_PROBE,
                             NUD_REACHABLE, NUD_STALE)
from pynet.neighbour import dst_confirm_neigh
from pynet.skbtrace import Tracer
from pynet.wire import ArpPacket, ArpRepr, EthernetPacket
from pynet.wire.arp import ARPOP_REPLY, ARPOP_REQUEST
from pynet.wire.ethernet import BROADCAST, ETH_P_ARP
from pynet.wire.ipv4 import ip_aton


def arps_sent(dev_from_tracer):
    return [f for f in dev_from_tracer if f[0] in ("arp_solicit", "arp_send")]


def capture(dev):
    """Wrap dev's ndo_start_xmit to keep a copy of every frame it sends."""
    frames = []
    orig = dev.ndo_start_xmit

    def xmit(skb):
        frames.append(skb.tobytes())
        return orig(skb)
    dev.ndo_start_xmit = xmit
    return frames


def arp_of(frame):
    e = EthernetPacket(frame)
    if e.ethertype != ETH_P_ARP:
        return None
    return e.dst, ArpRepr.parse(ArpPacket(e.payload))


def test_first_datagram_resolves_then_goes_and_the_peer_learns_us():
    p = Pair(neigh_parms=fast_nud())
    sock = p.a.udp_socket()
    server = p.b.udp_socket()
    server.bind(("", 9))
    sock.sendto(b"one", (B_ADDR, 9))
    n = p.neigh_a()
    assert n.nud_state == NUD_INCOMPLETE and len(n.arp_queue) == 1
    p.run(0.005)
    assert n.nud_state == NUD_REACHABLE and n.ha == p.db.hwaddr and not n.arp_queue
    assert server.recvfrom(10)[0] == b"one"
    # b learnt a from the request: STALE until it has reason to believe more (RFC 1122 s2.3.2.1)
    assert p.b.neighbour(p.db, A_ADDR).nud_state in (NUD_STALE, NUD_DELAY)


def test_reachable_stale_delay_probe_reachable_on_the_timers():
    p = Pair(neigh_parms=fast_nud())
    sock = p.a.udp_socket()
    sock.sendto(b"x", (B_ADDR, 9))
    p.run(0.005)
    n = p.neigh_a()
    assert n.nud_state == NUD_REACHABLE
    reach = p.a.arp_tbl.reachable_time
    assert 0.1 <= reach < 0.3             # base 0.2 randomised to [base/2, 3base/2)
    p.run(reach + 0.02)
    assert n.nud_state == NUD_STALE
    frames = capture(p.da)
    sock.sendto(b"y", (B_ADDR, 9))        # sent at once with the old address ...
    assert n.nud_state == NUD_DELAY and frames and arp_of(frames[-1]) is None
    states = [n.nud_state]
    for _ in range(150):                  # no confirmation within delay_probe_time: PROBE
        p.step(0.001)
        if states[-1] != n.nud_state:
            states.append(n.nud_state)
    assert states == [NUD_DELAY, NUD_PROBE, NUD_REACHABLE]   # b answered the probe
    probes = [arp_of(f) for f in frames if arp_of(f)]
    assert len(probes) == 1 and probes[0][0] == p.db.hwaddr  # unicast, to the old address


def test_vanished_peer_fails_queued_skbs_dropped_counted_and_sender_told():
    p = Pair(neigh_parms=fast_nud())
    server = p.b.udp_socket()
    server.bind(("", 9))
    sock = p.a.udp_socket()
    sock.connect((B_ADDR, 9))
    errors = []
    sock.sk_error_report = lambda sk: errors.append(sk.sk_err)
    sock.send(b"x")
    p.run(0.005)
    n = p.neigh_a()
    p.b.del_address(p.db, B_ADDR + "/24")  # b stops answering for that address
    p.run(0.35)
    assert n.nud_state == NUD_STALE
    sock.send(b"y")
    states = []
    for _ in range(400):
        p.step(0.001)
        if not states or states[-1] != n.nud_state:
            states.append(n.nud_state)
    assert states == [NUD_DELAY, NUD_PROBE, NUD_FAILED]
    stats = p.a.arp_tbl.stats
    assert stats["res_failed"] == 1
    # the next datagrams wait for a new resolution, which fails too: dropped, counted, reported
    for i in range(3):
        sock.send(b"z%d" % i)
    assert n.nud_state == NUD_INCOMPLETE and len(n.arp_queue) == 3
    before = stats["failed_discards"]
    p.run(0.3)
    assert n.nud_state == NUD_FAILED and not n.arp_queue
    assert stats["failed_discards"] == before + 3
    assert errors == [errno.EHOSTUNREACH] * 3
    try:
        sock.send(b"again")
    except OSError as e:
        assert e.errno == errno.EHOSTUNREACH
    else:
        raise AssertionError("the pending EHOSTUNREACH was not raised")


def test_incomplete_sends_three_broadcasts_then_fails():
    p = Pair(neigh_parms=fast_nud())
    frames = capture(p.da)
    sock = p.a.udp_socket()
    sock.sendto(b"x", ("198.18.0.99", 9))
    p.run(0.5)
    reqs = [arp_of(f) for f in frames if arp_of(f)]
    assert len(reqs) == 3                   # mcast_probes
    assert all(dst == BROADCAST and a.op == ARPOP_REQUEST and a.tip == ip_aton("198.18.0.99")
               and a.sip == ip_aton(A_ADDR) for dst, a in reqs)
    assert p.a.neighbour(p.da, "198.18.0.99").nud_state == NUD_FAILED


def test_incomplete_probes_every_retrans_time_from_the_first():
    """__neigh_event_send: the first request now, the timer at now + retrans_time
    (not half of it), so requests go at 0, r, 2r and the entry fails at 3r."""
    p = Pair(neigh_parms=fast_nud(retrans_time=0.05))
    sent = []
    orig = p.da.ndo_start_xmit

    def xmit(skb):
        if arp_of(skb.tobytes()):
            sent.append(round(p.now - start, 3))
        return orig(skb)
    p.da.ndo_start_xmit = xmit
    sock = p.a.udp_socket()
    start = p.now
    sock.sendto(b"x", ("198.18.0.99", 9))
    n = p.a.neighbour(p.da, "198.18.0.99")
    failed_at = None
    while failed_at is None and p.now - start < 0.5:
        p.step(0.001)
        if n.nud_state == NUD_FAILED:
            failed_at = round(p.now - start, 3)
    assert sent == [0.0, 0.05, 0.1] and failed_at == 0.15


def test_queue_overflow_drops_the_oldest_and_counts():
    p = Pair(neigh_parms=fast_nud(unres_qlen=3))
    server = p.b.udp_socket()
    server.bind(("", 9))
    sock = p.a.udp_socket()
    for i in range(10):
        sock.sendto(b"%d" % i, (B_ADDR, 9))
    assert p.a.arp_tbl.stats["unres_discards"] == 7
    p.run(0.01)
    got = []
    while server.readable():
        got.append(server.recv(10))
    assert got == [b"7", b"8", b"9"]


def test_skbs_waiting_on_a_released_entry_are_counted():
    p = Pair(neigh_parms=fast_nud())
    sock = p.a.udp_socket()
    for i in range(4):
        sock.sendto(b"%d" % i, ("198.18.0.99", 9))          # nobody answers: they wait
    assert len(p.a.neighbour(p.da, "198.18.0.99").arp_queue) == 4
    p.a.arp_tbl.flush_dev(p.da)                               # the device goes away
    assert p.a.arp_tbl.stats["unres_discards"] == 4


def test_connected_neighbour_uses_the_cached_header():
    p = Pair(neigh_parms=fast_nud())
    sock = p.a.udp_socket()
    sock.sendto(b"x", (B_ADDR, 9))
    p.run(0.005)
    with Tracer() as t:
        sock.sendto(b"y", (B_ADDR, 9))
    fs = t.functions()
    assert fs[fs.index("neigh_output") + 1] == "neigh_hh_output"
    assert "neigh_resolve_output" not in fs


def test_gratuitous_arp_on_address_add_and_broadcast_needs_no_resolution():
    p = Pair(neigh_parms=fast_nud())
    frames = capture(p.da)
    p.a.add_address(p.da, "198.18.7.1/24")
    dst, arp = arp_of(frames[0])
    assert dst == BROADCAST and arp.op == ARPOP_REQUEST and arp.sip == arp.tip == ip_aton("198.18.7.1")
    sock = p.a.udp_socket()
    sock.setsockopt(1, 6, 1)               # SOL_SOCKET, SO_BROADCAST
    sock.sendto(b"all", ("198.18.0.255", 9))
    assert p.a.neighbour(p.da, "198.18.0.255").nud_state == NUD_NOARP
    assert EthernetPacket(frames[-1]).dst == BROADCAST


def test_arp_reply_for_our_address_only():
    p = Pair(neigh_parms=fast_nud())
    frames = capture(p.db)
    from ipkit import inject
    from pynet.wire.ethernet import ETH_P_ARP as P
    req = bytearray(28)
    ArpRepr(ARPOP_REQUEST, b"\x02\x00\x00\x00\x00\x09", ip_aton("198.18.0.9"), b"\0" * 6,
            ip_aton(B_ADDR)).emit(req)
    other = bytearray(28)
    ArpRepr(ARPOP_REQUEST, b"\x02\x00\x00\x00\x00\x09", ip_aton("198.18.0.9"), b"\0" * 6,
            ip_aton("198.18.0.50")).emit(other)
    inject(p.b, p.db, BROADCAST + b"\x02\x00\x00\x00\x00\x09" + P.to_bytes(2, "big") + bytes(other))
    assert frames == []
    inject(p.b, p.db, BROADCAST + b"\x02\x00\x00\x00\x00\x09" + P.to_bytes(2, "big") + bytes(req))
    dst, arp = arp_of(frames[0])
    assert arp.op == ARPOP_REPLY and dst == b"\x02\x00\x00\x00\x00\x09"
    assert arp.sip == ip_aton(B_ADDR) and arp.sha == p.db.hwaddr and arp.tip == ip_aton("198.18.0.9")
    assert p.b.neighbour(p.db, "198.18.0.9").nud_state == NUD_STALE


def test_table_is_bounded_and_gc_removes_failed_entries():
    p = Pair(neigh_parms=fast_nud(), neigh_gc_thresh=(4, 8, 16))
    sock = p.a.udp_socket()
    for i in range(40):
        sock.sock_error()                   # forget earlier resolutions' EHOSTUNREACH
        sock.sendto(b"x", ("198.18.0.%d" % (100 + i), 9))
        p.run(0.01)
    tbl = p.a.arp_tbl
    assert len(tbl) <= 16
    assert tbl.stats["forced_gc_runs"] > 0
    p.run(2.0)                              # all failed: periodic GC clears them
    assert len(tbl) < 4 + 1


def test_upper_layer_confirmation_keeps_the_entry_reachable():
    p = Pair(neigh_parms=fast_nud())
    p.b.udp_socket().bind(("", 9))
    sock = p.a.udp_socket()
    sock.connect((B_ADDR, 9))
    sock.send(b"x")
    p.run(0.005)
    n = p.neigh_a()
    frames = capture(p.da)
    for _ in range(10):                    # 1 s: several reachable_times
        dst_confirm_neigh(p.a, sock.sk_dst_cache)
        sock.send(b"y")
        p.run(0.1)
        assert n.nud_state == NUD_REACHABLE
    assert not [f for f in frames if arp_of(f)]        # never asked again
