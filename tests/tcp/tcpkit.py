"""A small vocabulary for sans-IO TCP tests: hosts whose segments go to a
list, a `Seg` to hand a segment in, `recv_nothing`, and a two-host link that
moves segments between stacks with chosen drops.

Every segment a socket sends is parsed from its bytes with pynet.wire.tcp
and its checksum finished and verified, so the tests see what the wire would.
"""
import random
from dataclasses import dataclass

from pynet.checksum import skb_checksum_help
from pynet.skbuff import CHECKSUM_PARTIAL, SKB
from pynet.snmp import Snmp
from pynet.tcp.sock import TcpSock
from pynet.tcp.tcp import TCPHDR_ACK, TCPHDR_FIN, TCPHDR_PSH, TCPHDR_RST, TCPHDR_SYN
from pynet.tcp.tcp_ipv4 import TcpHashinfo, ipv4_af_ops, tcp_v4_rcv
from pynet.timer import TimerBase
from pynet.wire.ipv4 import ip_aton
from pynet.wire.tcp import TcpPacket, TcpRepr

A_IP = ip_aton("198.18.0.1")
B_IP = ip_aton("198.18.0.2")

FLAGS = {"S": TCPHDR_SYN, "A": TCPHDR_ACK, "F": TCPHDR_FIN, "R": TCPHDR_RST, "P": TCPHDR_PSH}


def flags_of(s):
    f = 0
    for c in s:
        f |= FLAGS[c]
    return f


def flag_str(f):
    return "".join(c for c in "SFRPA" if f & FLAGS[c])


@dataclass
class Out:
    """A sent segment as the peer would read it."""
    saddr: int
    daddr: int
    th: TcpRepr
    payload: bytes
    gso_size: int

    @property
    def flags(self):
        return flag_str(self.th.flags)

    @property
    def seq(self):
        return self.th.seq

    @property
    def ack(self):
        return self.th.ack_seq

    @property
    def win(self):
        return self.th.window

    def __repr__(self):
        return (f"<{self.flags} seq={self.seq} ack={self.ack} win={self.win} "
                f"len={len(self.payload)} ts={self.th.timestamp}>")


def decode(sk, skb):
    if skb.ip_summed == CHECKSUM_PARTIAL:
        skb_checksum_help(skb)
    pkt = TcpPacket(bytes(skb.data))
    th = TcpRepr.parse(pkt, sk.saddr, sk.daddr)   # verifies the checksum
    return Out(sk.saddr, sk.daddr, th, bytes(pkt.payload), skb.gso_size)


class Host:
    """One stack's TCP: tables, timers, and what it sent."""

    def __init__(self, addr, pmtu=1500, gso_max_size=0):
        self.addr = addr
        self.timers = TimerBase()       # with rng: what a TcpSock needs of its stack
        self.rng = random.Random(addr)
        self.mib = Snmp()
        self.sent = []
        self.pmtu = pmtu
        self.gso_max_size = gso_max_size
        self.af = ipv4_af_ops(self._xmit, self._route)
        self.hashinfo = TcpHashinfo(self, self.af)
        self.now = 0.0

    def _xmit(self, sk, skb):
        self.sent.append(decode(sk, skb))
        return 0

    def _route(self, sk):
        sk.saddr = self.addr
        sk.pmtu = self.pmtu

    def sock(self, **attrs):
        sk = TcpSock(self, self.af)
        sk.hashinfo = self.hashinfo
        sk.gso_max_size = self.gso_max_size
        for k, v in attrs.items():
            setattr(sk, k, v)
        return sk

    def tw(self, sk):
        """The TIME_WAIT sock that took sk's place in the tables, or None."""
        return self.hashinfo.ehash.get((sk.saddr, sk.sport, sk.daddr, sk.dport))

    def take(self):
        """Everything sent since the last take()."""
        s, self.sent = self.sent, []
        return s

    def run(self, now):
        self.now = now
        self.timers.run(now)

    def deliver(self, seg, now):
        """Hand a segment (an Out from a peer, or a Seg) to this stack."""
        self.now = now
        tcp_v4_rcv(self.hashinfo, frame(seg.saddr, seg.daddr, seg.th, seg.payload), now)


def frame(saddr, daddr, th, payload=b""):
    """An skb as the IP layer hands it up: data at the TCP header, the
    IPv4 header (only its addresses matter here) before it."""
    hl = th.header_len
    buf = bytearray(hl + len(payload))
    buf[hl:] = payload
    th.emit(buf, saddr, daddr)
    ip = bytes(12) + saddr.to_bytes(4, "big") + daddr.to_bytes(4, "big")
    skb = SKB.from_bytes(ip + bytes(buf))
    skb.network_header = 0
    skb.pull(20)
    return skb


def Seg(flags, seq, ack=0, win=65535, payload=b"", sport=4000, dport=80, saddr=B_IP,
        daddr=A_IP, **opts):
    """A segment from the remote peer (B) to the host under test (A)."""
    return Out(saddr, daddr, TcpRepr(sport, dport, seq, ack, flags_of(flags), win, **opts),
               payload, 0)


def link(a, b, now, drop=lambda seg: False, rounds=100000):
    """Move segments both ways until neither host sends more; `drop`
    decides per segment. Returns the number of segments moved."""
    moved = 0
    for _ in range(rounds):
        sa, sb = a.take(), b.take()
        if not sa and not sb:
            return moved
        for seg in sa:
            moved += 1
            if not drop(seg):
                b.deliver(seg, now)
        for seg in sb:
            moved += 1
            if not drop(seg):
                a.deliver(seg, now)
    raise AssertionError("link did not settle")


def client(a, peer_iss=5000, rtt=0.1, peer_win=65535, peer_wscale=0, ts=True, dport=80,
           t0=0.0, sack_perm=False, **attrs):
    """A socket on `a` connected to a scripted peer: returns (sk, peer) where
    peer(flags, seq_off, ack_off, ...) builds the peer's next segment with
    sequence numbers relative to both ISNs."""
    from pynet.tcp.tcp_ipv4 import tcp_v4_connect
    sk = a.sock(**attrs)
    tcp_v4_connect(sk, B_IP, dport, t0)
    syn, = a.take()
    opts = {"mss": 1460, "wscale": peer_wscale, "sack_perm": sack_perm}
    if ts:
        opts["timestamp"] = (1000, syn.th.timestamp[0])

    def peer(flags, seq=1, ack=1, win=peer_win, payload=b"", **kw):
        return Seg(flags, (peer_iss + seq) & 0xFFFFFFFF, (sk.iss + ack) & 0xFFFFFFFF, win,
                   payload, sport=dport, dport=sk.sport, **kw)

    a.deliver(peer("SA", seq=0, ack=1, **opts), t0 + rtt)
    ack, = a.take()
    assert ack.flags == "A"
    peer.iss = peer_iss
    return sk, peer


def run_until(host, end):
    """Fire the host's timers one expiry at a time up to `end`; returns
    [(time, segment)] for everything sent, at the exact expiry times."""
    sent = []
    while True:
        t = host.timers.next_expiry()
        if t is None or t > end:
            host.run(end)
            sent += [(end, s) for s in host.take()]
            return sent
        host.run(t)
        sent += [(t, s) for s in host.take()]
