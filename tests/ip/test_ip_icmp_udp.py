"""ICMP and UDP between two pynet stacks on a pipe (fake clock)."""
import errno
import hashlib
import os
import socket

import pytest
from ipkit import A_ADDR, B_ADDR, Pair, eth, inject, ipv4

from pynet.dev.pipe import pipe_pair
from pynet.sock import IP_PMTUDISC_DO
from pynet.udp import UDP_MAX_PAYLOAD
from pynet.wire import IcmpPacket
from pynet.wire.icmp import ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED
from pynet.wire.ipv4 import IPPROTO_ICMP, ip_aton


def test_ping_every_reply_with_its_rtt():
    p = Pair()
    ping = p.a.ping(B_ADDR)
    for _ in range(20):
        ping.send(p.now)
        p.run(0.01)
    assert [s for s, _, _ in ping.replies] == list(range(20))
    assert all(0 < rtt < 0.01 for _, rtt, _ in ping.replies)
    assert p.b.mib.icmp["InEchos"] == 20 and p.b.mib.icmp["OutEchoReps"] == 20


def test_udp_echo_and_the_largest_datagram_both_ways():
    p = Pair()
    sa, sb = p.a.udp_socket(), p.b.udp_socket()
    sa.bind(("", 5000))
    sb.bind((B_ADDR, 6000))
    for size in (0, 1, 1472, 1473, 60000, UDP_MAX_PAYLOAD):
        data = os.urandom(size)
        sa.sendto(data, (B_ADDR, 6000))
        p.run(0.02)
        got, addr = sb.recvfrom(70000)
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
        assert addr == (A_ADDR, 5000)
        sb.sendto(got, addr)
        p.run(0.02)
        assert sa.recvfrom(70000) == (data, (B_ADDR, 6000))
    with pytest.raises(OSError) as e:
        sa.sendto(b"x" * (UDP_MAX_PAYLOAD + 1), (B_ADDR, 6000))
    assert e.value.errno == errno.EMSGSIZE
    assert p.a.mib.ip["FragCreates"] > 0 and p.b.mib.ip["ReasmOKs"] > 0


def test_port_unreachable_refuses_a_connected_socket_only():
    p = Pair()
    loose, conn = p.a.udp_socket(), p.a.udp_socket()
    loose.sendto(b"x", (B_ADDR, 4444))
    conn.connect((B_ADDR, 4444))
    conn.send(b"x")
    p.run(0.02)
    assert p.b.mib.udp["NoPorts"] == 2 and p.b.mib.icmp["OutDestUnreachs"] == 2
    with pytest.raises(BlockingIOError):
        loose.recvfrom(10)
    with pytest.raises(ConnectionRefusedError):
        conn.recv(10)


def test_icmp_errors_are_rate_limited_per_destination():
    p = Pair()
    s = p.a.udp_socket()
    for _ in range(20):
        s.sendto(b"x", (B_ADDR, 4444))
    p.run(0.01)
    icmp = p.b.mib.icmp
    assert icmp["OutDestUnreachs"] == 6 and icmp["OutRateLimitHost"] == 14   # burst of 6
    p.run(2.0, dt=0.1)
    for _ in range(5):
        s.sendto(b"x", (B_ADDR, 4444))
    p.run(0.01)
    assert icmp["OutDestUnreachs"] == 8                                      # 1 per second


def test_frag_needed_lowers_pmtu_and_tells_a_df_socket():
    p = Pair()
    s = p.a.udp_socket()
    s.setsockopt(socket.IPPROTO_IP, 10, IP_PMTUDISC_DO)      # IP_MTU_DISCOVER
    s.connect((B_ADDR, 9))
    assert s.getsockopt(socket.IPPROTO_IP, 14) == 1500       # IP_MTU
    frames = []
    orig = p.da.ndo_start_xmit
    p.da.ndo_start_xmit = lambda skb: (frames.append(skb.tobytes()), orig(skb))[1]
    s.send(b"d" * 1400)
    p.run(0.01)
    sent_ip = [f for f in frames if f[12:14] == b"\x08\x00"][0][14:]
    assert sent_ip[6] & 0x40                                 # DF
    quoted = sent_ip[:28]
    icmp = bytearray(8 + len(quoted))
    pk = IcmpPacket.unchecked(icmp)
    pk.type, pk.code, pk.mtu = ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, 1280
    icmp[8:] = quoted
    pk.fill_checksum()
    inject(p.a, p.da, eth(p.da.hwaddr, p.db.hwaddr,
                          ipv4(ip_aton(B_ADDR), ip_aton(A_ADDR), IPPROTO_ICMP, bytes(icmp))))
    assert s.getsockopt(socket.IPPROTO_IP, 14) == 1280
    with pytest.raises(OSError) as e:
        s.send(b"d")
    assert e.value.errno == errno.EMSGSIZE
    with pytest.raises(OSError) as e:
        s.send(b"d" * 1400)                                  # too big for the new PMTU under DO
    assert e.value.errno == errno.EMSGSIZE


def test_more_specific_route_applies_to_the_next_packet_of_a_connected_socket():
    p = Pair()
    s = p.a.udp_socket()
    p.a.add_route("203.0.113.0/24", via=B_ADDR)
    s.connect(("203.0.113.5", 9))
    first = s.sk_dst_cache
    assert first.gw == ip_aton(B_ADDR)
    p.a.add_route("203.0.113.5/32", via="198.18.0.3")
    s.send(b"x")
    assert s.sk_dst_cache is not first and s.sk_dst_cache.gw == ip_aton("198.18.0.3")
    assert p.a.neighbour(p.da, "198.18.0.3").arp_queue      # the datagram waits for the new gateway


def test_reuseaddr_ephemeral_ports_and_bind_errors():
    p = Pair()
    a1, a2 = p.a.udp_socket(), p.a.udp_socket()
    a1.bind(("", 7000))
    with pytest.raises(OSError) as e:
        a2.bind(("", 7000))
    assert e.value.errno == errno.EADDRINUSE
    r1, r2 = p.a.udp_socket(), p.a.udp_socket()
    for r in (r1, r2):
        r.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        r.bind(("", 7100))
    with pytest.raises(OSError) as e:
        p.a.udp_socket().bind(("198.18.9.9", 0))
    assert e.value.errno == errno.EADDRNOTAVAIL
    ports = set()
    for _ in range(50):
        s = p.a.udp_socket()
        s.sendto(b"", (B_ADDR, 9))
        ports.add(s.getsockname()[1])
    assert len(ports) == 50 and all(32768 <= x <= 60999 for x in ports)
    with pytest.raises(TypeError):
        a1.sendto(b"x", B_ADDR)
    with pytest.raises(OverflowError):
        a1.sendto(b"x", (B_ADDR, 70000))
    b = p.a.udp_socket()
    with pytest.raises(PermissionError):
        b.sendto(b"x", ("198.18.0.255", 9))                  # SO_BROADCAST not set


def test_receive_buffer_is_bounded_with_a_drop_counter():
    p = Pair()
    srv = p.b.udp_socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    srv.bind(("", 9))
    c = p.a.udp_socket()
    for _ in range(100):
        c.sendto(b"z" * 1000, (B_ADDR, 9))
    p.run(0.05)
    assert srv.sk_drops > 0 and p.b.mib.udp["RcvbufErrors"] == srv.sk_drops
    assert srv.sk_rmem_alloc <= srv.sk_rcvbuf
    n = 0
    while srv.readable():
        srv.recv(2000)
        n += 1
    assert n + srv.sk_drops == 100 and srv.sk_rmem_alloc == 0


def test_ip_ttl_accepts_minus_one_and_1_to_255_as_the_kernel_does():
    p = Pair()
    s = p.a.udp_socket()
    for bad in (0, 256, 300, -2):
        with pytest.raises(OSError) as e:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, bad)
        assert e.value.errno == errno.EINVAL
    got, poll = [], p.db.ndo_poll

    def tap(budget, now):           # b's driver, recording each frame as it arrives
        skbs = poll(budget, now)
        got.extend(f.tobytes() for f in skbs)
        return skbs
    p.db.ndo_poll = tap
    for ttl, wire in ((1, 1), (255, 255), (-1, 64)):       # -1: net.ipv4.ip_default_ttl
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        s.sendto(b"x", (B_ADDR, 9))
        p.run(0.01)
        udp = [f for f in got if f[12:14] == b"\x08\x00" and f[23] == 17]
        assert udp[-1][14 + 8] == wire
        got.clear()
    # IP_TOS takes any int and keeps its low byte, as Linux's inet->tos (a u8) does
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 300)
    assert s.tos == 300 & 0xFF


def test_a_device_that_fails_is_counted_and_stopped_and_the_others_go_on():
    """A descriptor gone bad (EBADFD once its namespace is removed) must not
    escape Stack.poll: that device stops, the rest of the stack keeps running."""
    p = Pair()
    bad, _ = pipe_pair(("pynx0", "pynx1"))
    p.a.add_device(bad)

    def gone(budget, now):
        raise OSError(errno.EBADFD, os.strerror(errno.EBADFD))
    bad.ndo_poll = gone
    p.step()
    assert bad.stats.rx_errors == 1 and not bad.up
    ping = p.a.ping(B_ADDR)
    ping.send(p.now)
    p.run(0.02)
    assert len(ping.replies) == 1
    assert bad.stats.rx_errors == 1            # a stopped device is not polled again


def test_out_datagrams_counts_only_what_ip_took():
    p = Pair()
    s = p.a.udp_socket()
    s.sendto(b"x", (B_ADDR, 9))
    p.run(0.01)
    assert p.a.mib.udp["OutDatagrams"] == 1
    tbl = p.a.arp_tbl
    tbl.entries.clear()
    tbl.gc_thresh2 = tbl.gc_thresh3 = 0          # no room for a neighbour: ENOBUFS
    s.sendto(b"x", (B_ADDR, 9))
    assert p.a.mib.udp["SndbufErrors"] == 1 and p.a.mib.udp["OutDatagrams"] == 1


def test_ping_idents_all_in_use_is_eaddrinuse_and_extra_replies_are_counted():
    p = Pair()
    table = p.a.icmp.ping_socks
    for i in range(0xFFFF):
        table[i] = None
    last = p.a.ping(B_ADDR)                      # the one free ident is found
    assert last.ident == 0xFFFF
    with pytest.raises(OSError) as e:
        p.a.ping(B_ADDR)
    assert e.value.errno == errno.EADDRINUSE
    table.clear()
    ping = p.a.ping(B_ADDR, max_replies=2)
    for _ in range(3):
        ping.send(p.now)
        p.run(0.01)
    assert len(ping.replies) == 2 and ping.sk_drops == 1
