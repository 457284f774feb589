"""The fast paths of bulk TCP: one copy out of the receive queue
(recv_into), one ACK per receive batch (immediate ACKs kept for
out-of-order data), checked segment by segment on the pipe or sans-IO."""
import hashlib
import random

import pytest

from tcpkit import A_IP, B_IP, Host, client
from kernelkit import pynet_to_kernel
from pynet._core import tcp_ack_coalesce
from pynet.netns import kernel_peer
from pynet.stack import pipe_stacks
from pynet.gro import NETIF_F_GRO
from pynet.skbuff import SKB
from pynet.tcp.tcp import TcpState
from pynet.tcp.tcp_ipv4 import tcp_v4_connect, tcp_v4_init_sock
from pynet.tcp.tcp_user import inet_accept, inet_listen, tcp_recvmsg, tcp_recvmsg_into, tcp_sendmsg
from pynet.wire.ipv4 import ip_aton, ipv4_hdr_push
from pynet.wire.tcp import tcp_hdr_push

MSS = 1448


def test_recvmsg_into_copies_across_skbs_then_eof():
    a = Host(A_IP)
    sk, peer = client(a)
    data = random.Random(1).randbytes(3 * MSS)
    for i in range(3):
        a.deliver(peer("A", seq=1 + i * MSS, payload=data[i * MSS:(i + 1) * MSS]), 1.0)
    buf = bytearray(2000)
    assert tcp_recvmsg_into(sk, buf, 1.0) == 2000          # the first skb and part of the second
    assert buf == data[:2000]
    big = bytearray(10 * MSS)
    n = tcp_recvmsg_into(sk, memoryview(big)[5:], 1.0)     # any writable buffer, at an offset
    assert n == 3 * MSS - 2000 and big[5:5 + n] == data[2000:]
    assert sk.sk_rmem_alloc == 0 and sk.copied_seq == sk.rcv_nxt
    with pytest.raises(BlockingIOError):
        tcp_recvmsg_into(sk, buf, 1.0)
    a.deliver(peer("AF", seq=1 + 3 * MSS), 1.1)
    assert tcp_recvmsg_into(sk, buf, 1.1) == 0              # EOF
    assert tcp_recvmsg(sk, 10, 1.1) == b""


def test_recvmsg_returns_bytes_that_outlive_the_skbs():
    a = Host(A_IP)
    sk, peer = client(a)
    data = random.Random(2).randbytes(2 * MSS)
    a.deliver(peer("A", seq=1, payload=data[:MSS]), 1.0)
    a.deliver(peer("A", seq=1 + MSS, payload=data[MSS:]), 1.0)
    got = tcp_recvmsg(sk, MSS + 10, 1.0)
    assert type(got) is bytes and got == data[:MSS + 10]
    # the rest of the second skb is still queued, and can be pulled and read
    assert tcp_recvmsg(sk, 1 << 20, 1.0) == data[MSS + 10:]


def _connected(a, b):
    """A connection a -> b on the pipe, handshake and ARP done; (client, server, now)."""
    ls = tcp_v4_init_sock(b)
    inet_listen(ls, ls.hashinfo, 0, 80, 8)
    c = tcp_v4_init_sock(a)
    now = 0.0
    tcp_v4_connect(c, ip_aton("198.18.0.2"), 80, now)
    s = None
    while s is None or c.state != TcpState.ESTABLISHED:
        now += 0.001
        assert now < 5, "no handshake"
        a.poll(now)
        b.poll(now)
        try:
            s = s or inet_accept(ls)
        except BlockingIOError:
            pass
    for _ in range(3):          # the last ACKs settle
        now += 0.001
        a.poll(now)
        b.poll(now)
    return c, s, now


def test_one_ack_per_receive_batch():
    a, b = pipe_stacks()
    c, s, now = _connected(a, b)
    db = next(iter(b.devices.values()))
    data = random.Random(3).randbytes(10 * MSS)
    assert tcp_sendmsg(c, data, now) == len(data)       # IW10: ten MSS frames (no TSO)
    assert len(db.rxq) == 10
    sent = db.stats.tx_packets
    b.poll(now)                                          # all ten in one batch
    assert db.stats.tx_packets - sent == 1               # quick-ACK mode, yet one ACK
    a.poll(now)
    assert c.snd_una == c.snd_nxt == s.rcv_nxt           # it acknowledged everything
    assert tcp_recvmsg(s, 1 << 20, now) == data


def test_out_of_order_segments_are_acked_at_once_and_recovered():
    a, b = pipe_stacks()
    c, s, now = _connected(a, b)
    db = next(iter(b.devices.values()))
    data = random.Random(4).randbytes(200 * MSS)
    sent_bytes = tcp_sendmsg(c, data, now)
    assert len(db.rxq) == 10
    db.rxq.dequeue()                                     # the first segment is lost
    sent = db.stats.tx_packets
    b.poll(now)
    # each out-of-order segment draws its own duplicate ACK (RFC 5681 §4.2)
    assert db.stats.tx_packets - sent == 9
    assert len(s.out_of_order_queue) == 9
    got = []
    while sum(map(len, got)) < len(data):
        now += 0.001
        assert now < 20, "transfer stalled"
        a.poll(now)
        b.poll(now)
        if sent_bytes < len(data):
            sent_bytes += tcp_sendmsg(c, data[sent_bytes:], now)
        try:
            got.append(tcp_recvmsg(s, 1 << 22, now))
        except BlockingIOError:
            pass
    assert hashlib.sha256(b"".join(got)).digest() == hashlib.sha256(data).digest()
    assert c.stats["RetransSegs"] >= 1


# -- pure ACKs folded in a receive batch (csrc/tcp_fast.c) ----------------------------------
ETH = b"\x02\x00\x00\x00\x00\x01" + b"\x02\x00\x00\x00\x00\x02" + b"\x08\x00"


def ack_frame(ack, seq=1000, flags=0x10, ts=(5, 6), sack=(), sport=80, payload=b"", bad=False):
    skb = SKB(300)
    skb.reserve(300 - len(payload))
    skb.put_data(payload)
    tcp_hdr_push(skb, sport, 4000, seq, ack, flags, 500, B_IP, A_IP, ts=ts, sack=sack)
    if bad:
        skb.data[16] ^= 0xFF
    ipv4_hdr_push(skb, B_IP, A_IP, 6, 1)
    skb.push_data(ETH)
    return skb


def acks_of(skbs):
    return [int.from_bytes(bytes(s.data[14 + 20 + 8:14 + 20 + 12]), "big") for s in skbs]


def test_ack_coalesce_keeps_the_last_of_each_advancing_run():
    frames = [ack_frame(1), ack_frame(2), ack_frame(3),
              ack_frame(3),                                  # a duplicate ACK: kept
              ack_frame(4), ack_frame(5, sack=((7, 9),)),     # SACK: kept, and ends the run
              ack_frame(6), ack_frame(7, sport=81),           # another flow
              ack_frame(8, sport=81), ack_frame(9, sport=81, ts=(4, 6)),   # older TSval: kept
              ack_frame(10, payload=b"x"), ack_frame(11, flags=0x11),      # data, FIN: kept
              ack_frame(12), ack_frame(13, bad=True),          # a bad checksum: left alone
              ack_frame(14), ack_frame(15, seq=1001),          # a new seq: kept
              ack_frame(16, seq=1001), ack_frame(17, seq=1001), ack_frame(18, seq=1001)]
    out, folded = tcp_ack_coalesce(frames)
    # a run keeps its first ACK (it may duplicate what the socket has) and its last
    assert acks_of(out) == [1, 3, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 18]
    assert folded == len(frames) - len(out) == 3
    assert out[1] is frames[2] and out[-1] is frames[-1]     # the frames themselves, in order


def test_ack_coalesce_wraps_sequence_space():
    out, folded = tcp_ack_coalesce([ack_frame(0xFFFFFFF0), ack_frame(0xFFFFFFFF),
                                     ack_frame(0x10)])
    assert acks_of(out) == [0xFFFFFFF0, 0x10] and folded == 1


@pytest.mark.priv
@pytest.mark.parametrize("sack", [True, False], ids=["sack", "reno"])
def test_kernel_acks_folded_through_loss(sack):
    """pynet sends to the kernel with GRO on its device, so runs of the
    kernel's ACKs are folded; with SACK and without (NewReno's partial
    ACKs), through 1 % loss each way, the kernel reads every byte."""
    data = random.Random(7).randbytes(16 << 20)
    with kernel_peer("tap", offload=True) as peer:
        peer.ns.run(["sysctl", "-qw", f"net.ipv4.tcp_sack={int(sack)}"], check=True)
        peer.dev.features |= NETIF_F_GRO
        stacks = []
        sink, c = pynet_to_kernel(peer, data, watch=lambda now, c, k: stacks.append(c.net),
                                  drop=0.01)
    assert sink.n == len(data) and sink.sha.digest() == hashlib.sha256(data).digest()
    assert stacks[0].stats["tcp_acks_folded"] > 0
    assert c.rx_opt.sack_ok == sack and c.stats["RetransSegs"] > 0
