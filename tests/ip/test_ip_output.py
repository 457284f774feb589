"""The output path's choices: GSO, fragmentation, IP id/TTL/TOS/DF, broadcast, the TCP contract."""
import errno
import os
import socket

from ipkit import A_ADDR, B_ADDR, Pair

from pynet.ip_output import ip_alloc_skb, ip_queue_xmit
from pynet.skbtrace import Tracer
from pynet.skbuff import SKB_GSO_TCPV4
from pynet.sock import TCP_ESTABLISHED, Sock
from pynet.wire.ipv4 import IPPROTO_TCP, Ipv4Packet, ip_aton
from pynet.wire.tcp import tcp_hdr_push


def capture_ip(dev):
    """IPv4 headers of every frame dev sends, as Ipv4Packet views of copies."""
    out = []
    orig = dev.ndo_start_xmit

    def xmit(skb):
        f = skb.tobytes()
        if f[12:14] == b"\x08\x00":
            out.append(Ipv4Packet(bytearray(f[14:])))
        return orig(skb)
    dev.ndo_start_xmit = xmit
    return out


class TcpLike(Sock):
    """What the TCP room's socket gives ip_queue_xmit: a connected inet sock."""

    def __init__(self, net, saddr, daddr):
        super().__init__(net, IPPROTO_TCP, socket.SOCK_STREAM)
        self.saddr, self.daddr, self.sport, self.dport = saddr, daddr, 40000, 80
        self.state = TCP_ESTABLISHED


def tcp_gso_skb(net, sk, payload, mss):
    skb = ip_alloc_skb(net, None, len(payload) + 60)
    skb.put_data(payload)
    tcp_hdr_push(skb, sk.sport, sk.dport, 1000, 1, 0x18, 65535, sk.saddr, sk.daddr, partial=True)
    skb.gso_size = mss
    skb.gso_type = SKB_GSO_TCPV4
    skb.gso_segs = -(-len(payload) // mss)
    return skb


def tcp_receiver(stack):
    got = []
    stack.inet_add_protocol(IPPROTO_TCP, lambda skb: got.append(bytes(skb.data[20:])), None)
    return got


def test_gso_skb_goes_whole_when_segments_fit_and_is_segmented_then_fragmented_when_not():
    p = Pair()
    got = tcp_receiver(p.b)
    sk = TcpLike(p.a, ip_aton(A_ADDR), ip_aton(B_ADDR))
    payload = os.urandom(20000)
    with Tracer() as t:
        assert ip_queue_xmit(sk, tcp_gso_skb(p.a, sk, payload, 1448)) == 0
    assert "ip_finish_output_gso" in t.functions() and "ip_fragment" not in t.functions()
    p.run(0.01)
    assert b"".join(got) == payload and len(got) == 14
    # the path MTU falls under the segment size: segment here and fragment each segment
    p.a.fib.update_pmtu(ip_aton(B_ADDR), 1000, p.now)
    got.clear()
    seen = capture_ip(p.da)
    with Tracer() as t:
        assert ip_queue_xmit(sk, tcp_gso_skb(p.a, sk, payload, 1448)) == -errno.EMSGSIZE   # DF
    assert "ip_fragment" in t.functions() and p.a.mib.ip["FragFails"] == 14
    assert seen == []            # TCP sets DF: nothing is fragmented, the sender is told
    sk.pmtudisc = 0              # IP_PMTUDISC_DONT: fragments allowed
    assert ip_queue_xmit(sk, tcp_gso_skb(p.a, sk, payload, 1448)) == 0
    p.run(0.01)
    assert b"".join(got) == payload and p.b.mib.ip["ReasmOKs"] == 14
    assert all(len(h.buf) <= 1000 for h in seen) and len(seen) == 28


def test_ip_id_ttl_tos_df():
    p = Pair()
    seen = capture_ip(p.da)
    s = p.a.udp_socket()
    s.connect((B_ADDR, 9))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 7)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0x10)
    for _ in range(3):
        s.send(b"x")                         # DF, connected: the socket's own id counter
    s.send(b"y" * 3000)                      # too big for DF: per-destination id, fragmented
    u = p.a.udp_socket()
    u.sendto(b"z", (B_ADDR, 9))              # DF, not connected: id 0
    p.run(0.01)
    small = seen[:3]
    assert all(h.df and h.ttl == 7 and h.tos == 0x10 for h in small)
    assert [h.id for h in small] == [(small[0].id + i) & 0xFFFF for i in range(3)]
    frags = seen[3:6]
    assert len({h.id for h in frags}) == 1 and not any(h.df for h in frags)
    assert frags[0].mf and frags[-1].frag_offset > 0
    assert seen[6].df and seen[6].id == 0 and seen[6].ttl == 64


def test_broadcast_is_delivered_and_draws_no_port_unreachable():
    p = Pair()
    srv = p.b.udp_socket()
    srv.bind(("", 9))
    c = p.a.udp_socket()
    c.bind((A_ADDR, 0))          # 255.255.255.255 goes out of the source's device (no default route)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    c.sendto(b"to all", ("198.18.0.255", 9))
    c.sendto(b"to all, no one home", ("198.18.0.255", 10))
    c.sendto(b"limited", ("255.255.255.255", 9))
    p.run(0.01)
    assert srv.recv(100) == b"to all" and srv.recv(100) == b"limited"
    assert p.b.mib.udp["NoPorts"] == 1 and p.b.mib.icmp["OutMsgs"] == 0
    ping = p.a.ping("198.18.0.255")
    ping.send()
    p.run(0.01)
    assert p.b.mib.icmp["InEchos"] == 1 and p.b.mib.icmp["OutEchoReps"] == 0   # ignored
