"""TCP's per-segment work in Python, sans-IO (no device, no IP): segments/s
through tcp_v4_rcv for an established socket, and a send/ACK cycle of
tcp_sendmsg + tcp_write_xmit with and without TSO. Sent segments are only
counted (queue_xmit is a no-op that keeps nothing), so the figures are
TCP's own cost, the ceiling of what Python can do per segment.

Also GRO (csrc/gro.c) on a poll's worth of 1,448-byte frames, the pure-ACK
folding (csrc/tcp_fast.c) on a poll's worth of ACKs, and the one-call
header build of the transmit fast path.
"""
import dataclasses
import os
import random
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "tests", "tcp"))

from tcpkit import B_IP, Host, client, frame  # noqa: E402

from pynet._core import tcp_ack_coalesce, tcp_v4_frame_push  # noqa: E402
from pynet.gro import gro_receive  # noqa: E402
from pynet.skbuff import SKB  # noqa: E402
from pynet.tcp.tcp_ipv4 import tcp_v4_rcv  # noqa: E402
from pynet.tcp.tcp_user import tcp_recvmsg, tcp_sendmsg  # noqa: E402
from pynet.wire.ipv4 import ipv4_hdr_push  # noqa: E402
from pynet.wire.tcp import TcpRepr  # noqa: E402

MSS = 1448
BATCH = 64


def established(gso_max_size=0):
    """A socket on host A connected to a scripted peer, whose segments out
    are counted and dropped."""
    a = Host(0xC6120001, gso_max_size=gso_max_size)
    sk, peer = client(a, peer_win=65535, peer_wscale=7)
    out = [0]

    def xmit(sk, skb):
        out[0] += 1
        return 0

    sk.af_ops = dataclasses.replace(sk.af_ops, queue_xmit=xmit)
    return a, sk, peer, out


def test_tcp_input_data_segments(benchmark):
    """BATCH in-order 1,448-byte data segments into tcp_v4_rcv, then read."""
    benchmark.group = "tcp per segment"
    a, sk, peer, out = established()
    payload = bytes(MSS)
    state = {"seq": 1}
    tsval = (1001, 0)       # after the SYN-ACK's 1000: PAWS lets it in

    def frames():
        s0 = state["seq"]
        state["seq"] += BATCH * MSS
        th = [TcpRepr(80, sk.sport, (peer.iss + s0 + i * MSS) & 0xFFFFFFFF, (sk.iss + 1) & 0xFFFFFFFF,
                      0x10, 65535, timestamp=tsval) for i in range(BATCH)]
        return ([frame(B_IP, sk.saddr, t, payload) for t in th],), {}

    def run(skbs):
        for skb in skbs:
            tcp_v4_rcv(a.hashinfo, skb, 1.0)
        assert len(tcp_recvmsg(sk, 1 << 20, 1.0)) == BATCH * MSS

    benchmark.pedantic(run, setup=frames, rounds=200)
    assert sk.stats["PAWSDrop"] == 0 and sk.stats["OfoDrop"] == 0
    benchmark.extra_info["segments_per_round"] = BATCH


def _send_ack_cycle(benchmark, gso_max_size):
    a, sk, peer, out = established(gso_max_size)
    sk.snd_cwnd = 1000
    data = bytes(45 * MSS)      # whole segments: nothing waits for Nagle
    state = {"acked": 1}
    tsval = (1001, 0)       # after the SYN-ACK's 1000: PAWS lets it in

    def cycle():
        n = tcp_sendmsg(sk, data, 1.0)
        state["acked"] += n
        a.deliver(peer("A", ack=state["acked"], timestamp=tsval), 1.0)
        assert not sk.write_queue

    benchmark(cycle)
    benchmark.extra_info["segments_out"] = out[0]
    assert sk.stats["ChallengeACK"] == 0 and sk.stats["PAWSDrop"] == 0


def test_tcp_output_64k_send_ack_no_tso(benchmark):
    """45 x 1,448 B through tcp_sendmsg as single segments, then one ACK for all."""
    benchmark.group = "tcp send+ack 45 x 1448 B"
    _send_ack_cycle(benchmark, 0)


def test_tcp_output_64k_send_ack_tso(benchmark):
    """The same with TSO: one super-segment."""
    benchmark.group = "tcp send+ack 45 x 1448 B"
    _send_ack_cycle(benchmark, 65536)


def _frames(n, size=MSS):
    rnd = random.Random(1)
    out = []
    for i in range(n):
        payload = rnd.randbytes(size)
        th = TcpRepr(40000, 80, 1000 + i * size, 7, 0x10, 500, timestamp=(1, 2))
        skb = frame(0xC6120002, 0xC6120001, th, payload)
        b = skb.headroom_bytes()[-20:]
        ip = bytearray(b"\x45\x00" + struct.pack("!H", 20 + len(skb)) + b"\x00\x00\x40\x00\x40\x06"
                       + b"\x00\x00" + b[12:20])
        ip[10:12] = b"\x00\x00"
        s = sum(struct.unpack("!10H", bytes(ip)))
        s = (s & 0xFFFF) + (s >> 16)
        ip[10:12] = struct.pack("!H", 0xFFFF - ((s & 0xFFFF) + (s >> 16)))
        out.append(b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + bytes(ip) + skb.tobytes())
    return out


def test_gro_64_frames(benchmark):
    """One NAPI poll's worth (64 frames of 1,448 B) merged: checksums
    verified in C, payloads copied into two heads."""
    benchmark.group = "gro"
    raw = _frames(BATCH)

    def setup():
        return ([SKB.from_bytes(f, headroom=64, tailroom=0) for f in raw],), {}

    def run(skbs):
        assert len(gro_receive(skbs)) == 2

    benchmark.pedantic(run, setup=setup, rounds=300)
    benchmark.extra_info["segments_per_round"] = BATCH


def test_tcp_ack_coalesce_64_pure_acks(benchmark):
    """A poll's worth of a bulk receiver's pure ACKs (each acknowledging one
    more super-segment) folded in C into the first and the last."""
    benchmark.group = "gro"
    raw = []
    for i in range(BATCH):
        th = TcpRepr(40000, 80, 1000, 7 + i * 65160, 0x10, 500, timestamp=(1 + i, 2))
        skb = frame(0xC6120002, 0xC6120001, th)
        ack = SKB(64 + len(skb))
        ack.reserve(64)
        ack.put_data(skb.data)
        ipv4_hdr_push(ack, 0xC6120002, 0xC6120001, 6, i)
        raw.append(b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ack.tobytes())

    def setup():
        return ([SKB.from_bytes(f, headroom=64, tailroom=0) for f in raw],), {}

    def run(skbs):
        out, folded = tcp_ack_coalesce(skbs)
        assert len(out) == 2 and folded == BATCH - 2

    benchmark.pedantic(run, setup=setup, rounds=300)
    benchmark.extra_info["acks_per_round"] = BATCH


def test_tcp_v4_frame_push(benchmark):
    """The transmit fast path's TCP, IPv4 and Ethernet headers in one C call,
    onto a 64 KB super-segment's payload (timestamps, partial checksum)."""
    benchmark.group = "tcp headers"
    hh = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00"

    def setup():
        skb = SKB(160 + 45 * MSS)
        skb.reserve(160)
        skb.put(45 * MSS)
        return (skb,), {}

    def run(skb):
        tcp_v4_frame_push(skb, hh, 0xC6120002, 0xC6120001, 40000, 80, 1, 2, 0x18, 500,
                          (1, 2), (), 7, 64, 0, True, True)

    benchmark.pedantic(run, setup=setup, rounds=2000)


def test_stack_receive_64k_skb(benchmark):
    """One 64 KB super-segment (what a vnet_hdr TAP hands up) from the
    device's receive queue through netif_receive_skb, ip_rcv, tcp_v4_rcv and
    header prediction to the receive queue, then read: the receive side's
    Python per super-segment, the ACK included."""
    from pynet.dev.netdevice import NETIF_F_HW_CSUM, NETIF_F_RXCSUM, NETIF_F_SG, NETIF_F_TSO
    from pynet.stack import pipe_stacks
    from pynet.tcp.tcp import TcpState
    from pynet.tcp.tcp_ipv4 import tcp_v4_connect, tcp_v4_init_sock
    from pynet.tcp.tcp_user import inet_accept, inet_listen
    from pynet.wire.ipv4 import ip_aton
    benchmark.group = "stack receive"
    a, b = pipe_stacks(features=NETIF_F_SG | NETIF_F_HW_CSUM | NETIF_F_RXCSUM | NETIF_F_TSO)
    ls = tcp_v4_init_sock(b)
    inet_listen(ls, ls.hashinfo, 0, 80, 8)
    c = tcp_v4_init_sock(a)
    now = 0.0
    tcp_v4_connect(c, ip_aton("198.18.0.2"), 80, now)
    s = None
    while s is None or c.state != TcpState.ESTABLISHED:
        now += 0.001
        a.poll(now)
        b.poll(now)
        try:
            s = s or inet_accept(ls)
        except BlockingIOError:
            pass
    db = next(iter(b.devices.values()))
    data = bytes(45 * MSS)
    for _ in range(20):                     # out of slow start: cwnd over one super-segment
        now += 0.001
        a.poll(now)
        tcp_sendmsg(c, data, now)
        b.poll(now)
        tcp_recvmsg(s, 1 << 20, now)
    now += 0.001
    a.poll(now)
    assert not c.write_queue and c.snd_cwnd > 2 * 45
    state = {"now": now}

    def setup():
        state["now"] += 0.001
        a.poll(state["now"])                # our ACKs: the window and cwnd open
        assert tcp_sendmsg(c, data, state["now"]) == len(data) and len(db.rxq) == 1
        return (), {}

    def run():
        b.poll(state["now"])
        assert len(tcp_recvmsg(s, 1 << 20, state["now"])) == len(data)

    benchmark.pedantic(run, setup=setup, rounds=500)
    assert s.stats["OfoDrop"] == 0 and s.stats["RcvDrop"] == 0
