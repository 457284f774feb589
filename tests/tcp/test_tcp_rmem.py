"""Receive memory is charged by skb truesize (buffer and metadata), as
Linux does, and small segments that arrive in big buffers (a TAP with
offloads reads every frame into 64 KB) are copied and coalesced, so a peer
sending tiny segments cannot make a bounded receive buffer hold gigabytes."""
import random

from tcpkit import A_IP, Host, client, frame
from pynet.skbuff import SKB
from pynet.tcp.tcp_ipv4 import tcp_v4_rcv
from pynet.tcp.tcp_user import tcp_recvmsg

BIG = 65536 + 256         # what TapDevice gives each frame with offloads on


def deliver_big(host, seg, now):
    """Hand a segment in as a TAP with offloads does: in a 64 KB buffer."""
    tcp = frame(seg.saddr, seg.daddr, seg.th, seg.payload)
    skb = SKB(BIG)
    skb.put_data(bytes(12) + seg.saddr.to_bytes(4, "big") + seg.daddr.to_bytes(4, "big"))
    skb.put_data(tcp.data)
    skb.network_header = 0
    skb.pull(20)
    host.now = now
    tcp_v4_rcv(host.hashinfo, skb, now)


def memory(sk):
    return sum(s.truesize for s in sk.receive_queue) + sum(s.truesize for s in sk.out_of_order_queue)


def test_one_byte_segments_in_big_buffers_stay_within_rcvbuf():
    a = Host(A_IP)
    sk, peer = client(a, sack_perm=True)
    sk.sk_rcvbuf = 256 << 10
    n = 20000
    for i in range(n):
        deliver_big(a, peer("A", seq=1 + i, payload=bytes([i & 0xFF])), 1.0 + i * 1e-4)
    assert sk.stats["RcvDrop"] == 0                 # the window told the truth
    # coalesced: about one 2 KB buffer per 2 KB of payload, not 64 KB per byte
    assert len(sk.receive_queue) <= n // 2048 + 1
    assert sk.sk_rmem_alloc == memory(sk) <= 4 * n
    assert tcp_recvmsg(sk, n, 3.0) == bytes(i & 0xFF for i in range(n))
    assert sk.sk_rmem_alloc == 0


def test_tiny_out_of_order_segments_are_bounded_by_rcvbuf():
    a = Host(A_IP)
    sk, peer = client(a, sack_perm=True)
    sk.sk_rcvbuf = 64 << 10
    for i in range(1, 2000):                        # byte 0 missing
        deliver_big(a, peer("A", seq=1 + i, payload=b"x"), 1.0)
    # as Linux: a buffer under its limit takes one more skb (a small one here)
    assert sk.sk_rmem_alloc == memory(sk) <= sk.sk_rcvbuf + max(s.truesize for s in sk.out_of_order_queue)
    assert sk.ofo_drops > 0                         # the rest was refused, counted
    held = len(sk.out_of_order_queue)
    deliver_big(a, peer("A", seq=1, payload=b"y"), 1.1)
    # the hole's byte needs room: the highest out-of-order data gives it up
    kept = held - sk.stats["RcvPruned"]
    assert 0 < sk.stats["RcvPruned"] < held
    assert sk.rcv_nxt == (peer.iss + 2 + kept) & 0xFFFFFFFF
    assert tcp_recvmsg(sk, 4000, 1.2) == b"y" + b"x" * kept
    assert sk.sk_rmem_alloc == 0


def test_window_follows_truesize():
    """The advertised window is free buffer space at the measured payload
    ratio: full segments in 64 KB buffers would cost far more than their
    bytes, so after right-sizing the window still shrinks with the charge."""
    a = Host(A_IP)
    sk, peer = client(a, sk_rcvbuf=1 << 20)
    deliver_big(a, peer("A", seq=1, payload=bytes(1448)), 1.0)
    ack, = a.take()
    free = sk.sk_rcvbuf - sk.sk_rmem_alloc
    assert sk.sk_rmem_alloc > 1448                   # metadata and buffer are charged
    assert abs((ack.win << sk.rx_opt.rcv_wscale) - free * sk.scaling_ratio) <= 2 << sk.rx_opt.rcv_wscale


def test_a_lagging_reader_is_sent_the_whole_window_without_drops():
    """Frames shorter than the 64 KB buffers they were read into, after a
    full one set the payload ratio near 1: with nobody reading, the queue
    is compacted (tcp_collapse) rather than in-window data dropped, and
    memory stays within rcvbuf and one skb."""
    a = Host(A_IP)
    sk, peer = client(a, sk_rcvbuf=1 << 20)
    rnd = random.Random(5)
    sent = bytearray()
    for _ in range(100):                            # ~1 MB of window in 40 KB frames
        if not sk.receive_window():
            break
        size = 65000 if not sent else min(40000, sk.receive_window())
        payload = rnd.randbytes(size)
        deliver_big(a, peer("A", seq=1 + len(sent), payload=payload), 1.0 + len(sent) * 1e-9)
        sent += payload
    assert sk.stats["RcvDrop"] == 0 and sk.receive_window() == 0 and len(sent) > 900_000
    assert sk.sk_rmem_alloc == memory(sk) <= sk.sk_rcvbuf + BIG
    assert tcp_recvmsg(sk, len(sent) + 1, 2.0) == sent
