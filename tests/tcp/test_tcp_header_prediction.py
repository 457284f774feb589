"""Header prediction (tcp_input.tcp_rcv_established): a segment it takes
must end exactly as the full RFC 9293 path would leave it, and every
segment outside its narrow case must go the full path.

The oracle: two hosts get the same segments, one with the fast path, one
with it switched off; after every segment the sockets' state and what
they sent must be identical."""
import dataclasses
import hashlib
import random

import pytest

from kernelkit import kernel_to_pynet
from tcpkit import A_IP, Host, client
from pynet.dev.fault import Faults
from pynet.netns import kernel_peer
from pynet.tcp import tcp_input as inp
from pynet.tcp.tcp import TCPHDR_URG
from pynet.tcp.tcp_user import tcp_recvmsg, tcp_sendmsg

MSS = 1448
_fast = inp.tcp_rcv_established


def _slow_only(sk, skb):
    return False


class Spy:
    """Counts which segments header prediction took (True) or declined."""

    def __init__(self, monkeypatch):
        self.taken = self.declined = 0
        monkeypatch.setattr(inp, "tcp_rcv_established", self)

    def __call__(self, sk, skb):
        if _fast(sk, skb):
            self.taken += 1
            return True
        self.declined += 1
        return False


def snapshot(sk):
    """Everything of the socket a segment could change, as plain values."""
    names = set(vars(sk))
    for cls in type(sk).__mro__:        # class defaults not yet overridden count too
        names.update(vars(cls))
    state = {k: v for k, v in ((k, getattr(sk, k)) for k in names if not k.startswith("__"))
             if v is None or isinstance(v, (int, float, str, tuple, dict))}
    ro = sk.rx_opt
    state["rx_opt"] = {k: getattr(ro, k) for k in type(ro).__slots__}
    state["receive_queue"] = b"".join(bytes(s.data) for s in sk.receive_queue)
    state["ofo"] = [(s.cb.seq, s.cb.end_seq, bytes(s.data)) for s in sk.out_of_order_queue]
    state["rtx"] = [(s.cb.seq, s.cb.end_seq, s.cb.sacked) for s in sk.rtx_queue]
    state["timers"] = sorted(t.expires for t in (sk.retransmit_timer, sk.delack_timer,
                                                 sk.keepalive_timer) if t.pending)
    return state


def pair(**kw):
    """Two identical connections: (fast host, its sk, slow host, its sk, peer)."""
    hosts = []
    for _ in range(2):
        a = Host(A_IP)
        sk, peer = client(a, peer_wscale=7, **kw)
        # the SYN-ACK's window is not scaled: a window update sets the scaled one
        a.deliver(peer("A", win=65535 >> 7, timestamp=(1001, 0)), 0.2)
        assert sk.snd_wnd == 65535 >> 7 << 7 and not a.take()
        hosts.append((a, sk))
    (fa, fsk), (sa, ssk) = hosts
    assert snapshot(fsk) == snapshot(ssk)
    return fa, fsk, sa, ssk, peer


def urgent(seg):
    """seg with URG set and the urgent pointer at its first byte (tcpkit
    has no letter for it)."""
    return dataclasses.replace(seg, th=dataclasses.replace(seg.th, flags=seg.th.flags | TCPHDR_URG,
                                                           urg_ptr=1))


def read(sk, now):
    try:
        return tcp_recvmsg(sk, 1 << 20, now)
    except BlockingIOError:
        return None


def both(monkeypatch, fa, fsk, sa, ssk, seg, now):
    fa.deliver(seg, now)
    with monkeypatch.context() as m:
        m.setattr(inp, "tcp_rcv_established", _slow_only)
        sa.deliver(seg, now)
    assert [repr(s) for s in fa.take()] == [repr(s) for s in sa.take()], seg
    assert snapshot(fsk) == snapshot(ssk), seg


@pytest.mark.parametrize("seed", range(6))
def test_fast_path_ends_as_the_slow_path_on_random_segments(monkeypatch, seed):
    """Random mixes of in-order data, pure ACKs of our data, duplicate and
    old ACKs, out-of-order and old data, SACK blocks, old timestamps,
    window changes, URG, reads and sends, ended by a FIN."""
    rnd = random.Random(seed)
    fa, fsk, sa, ssk, peer = pair(sack_perm=True)
    spy = Spy(monkeypatch)
    acked = 1               # what the peer has acknowledged of ours
    ts = 1001
    win = 65535 >> 7
    now = 1.0
    for step in range(300):
        now += rnd.choice((0.0001, 0.001, 0.05))
        ts += rnd.randrange(0, 3)
        kind = rnd.choice(["data"] * 6 + ["ack"] * 3 + ["dupack", "oldack", "ofo", "old",
                                                         "sack", "oldts", "win", "urg",
                                                         "read", "send", "nots"])
        sent = (fsk.snd_nxt - fsk.iss) & 0xFFFFFFFF
        # the peer goes on from what was accepted (it resends what was dropped)
        rcv = (fsk.rcv_nxt - peer.iss) & 0xFFFFFFFF
        opts = {"timestamp": (ts, 0)}
        if kind == "send":
            n = rnd.randrange(1, 5 * MSS)
            data = rnd.randbytes(n)
            assert tcp_sendmsg(fsk, data, now) == tcp_sendmsg(ssk, data, now)
            assert [repr(s) for s in fa.take()] == [repr(s) for s in sa.take()]
            continue
        if kind == "read":
            assert read(fsk, now) == read(ssk, now)
            assert [repr(s) for s in fa.take()] == [repr(s) for s in sa.take()]
            continue
        if kind in ("data", "urg", "oldts", "win", "nots"):
            n = rnd.randrange(1, 3 * MSS)
            flags = rnd.choice(("A", "PA"))
            if kind == "oldts":
                opts = {"timestamp": (ts - 5, 0)}
            if kind == "win":
                win = rnd.randrange(100, 65535 >> 7)
            if kind == "nots":
                opts = {}
            if rnd.random() < 0.5 and acked != sent:
                acked = rnd.randrange(acked, sent + 1) if sent > acked else acked
            seg = peer(flags, seq=rcv, ack=acked, win=win, payload=rnd.randbytes(n), **opts)
            if kind == "urg":
                seg = urgent(seg)
            rcv += n
        elif kind == "ack":
            if sent > acked:
                acked = rnd.randrange(acked + 1, sent + 1)
            seg = peer("A", seq=rcv, ack=acked, win=win, **opts)
        elif kind == "dupack":
            seg = peer("A", seq=rcv, ack=acked, win=win, **opts)
        elif kind == "oldack":
            seg = peer("A", seq=rcv, ack=max(acked - 100, 1), win=win, **opts)
        elif kind == "ofo":
            n = rnd.randrange(1, MSS)
            seg = peer("A", seq=rcv + rnd.randrange(1, 3 * MSS), ack=acked, win=win,
                       payload=rnd.randbytes(n), **opts)
        elif kind == "old":
            seg = peer("A", seq=max(rcv - rnd.randrange(1, 2 * MSS), 1), ack=acked, win=win,
                       payload=rnd.randbytes(100), **opts)
        else:                   # sack: a block over part of what we sent
            seg = peer("A", seq=rcv, ack=acked, win=win,
                       sack=[((fsk.iss + acked + 1) & 0xFFFFFFFF,
                              (fsk.iss + acked + 2) & 0xFFFFFFFF)], **opts)
        both(monkeypatch, fa, fsk, sa, ssk, seg, now)
    rcv = (fsk.rcv_nxt - peer.iss) & 0xFFFFFFFF
    both(monkeypatch, fa, fsk, sa, ssk, peer("FA", seq=rcv, ack=acked, win=win,
                                             timestamp=(ts, 0)), now + 0.01)
    assert spy.taken > 20 and spy.declined > 20
    assert fsk.stats["InSegs"] == ssk.stats["InSegs"] > 0


SLOW = {
    "out of order": dict(seq=1 + MSS, payload=b"x" * 100),
    "old data": dict(seq=1 - 50, payload=b"x" * 100),
    "SACK block": dict(ack=1 + MSS),       # with a block over later data, below
    "old timestamp": dict(timestamp=(999, 0), payload=b"x" * 100),
    "no timestamp": dict(payload=b"x" * 100),
    "window change": dict(win=100, payload=b"x" * 100),
    "FIN": dict(flags="FA", payload=b"x" * 100),
    "URG": dict(payload=b"x" * 100),
    "RST": dict(flags="R"),
    "duplicate ACK": dict(),
    "ACK of unsent data": dict(ack=10 ** 6, payload=b"x" * 100),
}


@pytest.mark.parametrize("kind", SLOW)
def test_segments_outside_the_prediction_take_the_slow_path(monkeypatch, kind):
    fa, fsk, sa, ssk, peer = pair(sack_perm=True)
    if kind in ("duplicate ACK", "SACK block"):
        data = bytes(3 * MSS)
        tcp_sendmsg(fsk, data, 0.5)
        tcp_sendmsg(ssk, data, 0.5)
        fa.take(), sa.take()
    spy = Spy(monkeypatch)
    kw = dict(SLOW[kind])
    flags = kw.pop("flags", "A")
    if kind == "SACK block":
        kw["sack"] = [((fsk.iss + 1 + 2 * MSS) & 0xFFFFFFFF, (fsk.iss + 1 + 3 * MSS) & 0xFFFFFFFF)]
    kw.setdefault("seq", 1)
    kw.setdefault("win", 65535 >> 7)
    if "timestamp" not in kw and kind != "no timestamp":
        kw["timestamp"] = (1001, 0)
    seg = peer(flags, **kw)
    both(monkeypatch, fa, fsk, sa, ssk, urgent(seg) if kind == "URG" else seg, 1.0)
    assert (spy.taken, spy.declined) == (0, 1)


def test_in_order_data_and_new_acks_take_the_fast_path(monkeypatch):
    fa, fsk, sa, ssk, peer = pair()
    data = bytes(2 * MSS)
    tcp_sendmsg(fsk, data, 0.5)
    tcp_sendmsg(ssk, data, 0.5)
    fa.take(), sa.take()
    spy = Spy(monkeypatch)
    payload = random.Random(3).randbytes(MSS)
    both(monkeypatch, fa, fsk, sa, ssk, peer("PA", seq=1, payload=payload,
                                             win=65535 >> 7, timestamp=(1001, 0)), 1.0)
    both(monkeypatch, fa, fsk, sa, ssk, peer("A", seq=1 + MSS, ack=1 + MSS,
                                             win=65535 >> 7, timestamp=(1002, 0)), 1.1)
    both(monkeypatch, fa, fsk, sa, ssk, peer("A", seq=1 + MSS, ack=1 + 2 * MSS,
                                             win=65535 >> 7, timestamp=(1002, 0)), 1.2)
    assert (spy.taken, spy.declined) == (3, 0)
    assert fsk.snd_una == fsk.snd_nxt and tcp_recvmsg(fsk, 1 << 20, 1.3) == payload


@pytest.mark.priv
def test_kernel_to_pynet_through_loss_and_reordering(monkeypatch):
    """Data integrity against the kernel while segments are dropped and
    reordered: both paths run, and every byte arrives intact."""
    spy = Spy(monkeypatch)
    data = random.Random(5).randbytes(8 << 20)
    with kernel_peer("tap", offload=True) as peer:
        sink, sk = kernel_to_pynet(peer, data, rx=Faults(drop=0.01, reorder=0.01))
    assert sink.n == len(data) and sink.sha.hexdigest() == hashlib.sha256(data).hexdigest()
    assert spy.taken > 0 and spy.declined > 0
