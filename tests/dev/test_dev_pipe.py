"""NetDevice's generic layer through the in-memory pipe and loopback (no privilege):
queueing, backpressure, and finishing checksums and GSO in software."""
import select
import struct

import pytest

from frames import ones_sum, tcp_gso_frame
from pynet.dev.loopback import LoopbackDevice
from pynet.dev.netdevice import (NET_XMIT_DROP, NET_XMIT_SUCCESS, NETIF_F_HW_CSUM, NETIF_F_SG,
                                 NETIF_F_TSO, dev_queue_xmit)
from pynet.dev.pipe import pipe_pair
from pynet.skbuff import CHECKSUM_PARTIAL, SKB, SKB_GSO_TCPV4


def frame(dev, n, size=60):
    skb = SKB.from_bytes(b"\x02" * 6 + dev.hwaddr + b"\x88\xb5" + n.to_bytes(4, "big")
                         + bytes(size - 18), headroom=16)
    skb.dev = dev
    return skb


def test_frames_arrive_on_the_peers_poll_as_private_copies():
    a, b = pipe_pair()
    skb = frame(a, 7)
    assert dev_queue_xmit(skb) == NET_XMIT_SUCCESS
    assert a.poll() == []
    got = b.poll()
    assert len(got) == 1 and got[0].tobytes() == skb.tobytes()
    assert got[0].dev is b and got[0].mac_header == got[0].data_offset
    got[0].data[0] = 0xAA           # the receiver's buffer is its own
    assert skb.data[0] == 0x02
    assert (a.stats.tx_packets, a.stats.tx_bytes) == (1, 60)
    assert (b.stats.rx_packets, b.stats.rx_bytes) == (1, 60)
    assert b.poll() == []


def test_fileno_is_readable_exactly_while_frames_wait():
    a, b = pipe_pair()
    assert select.select([b], [], [], 0)[0] == []
    dev_queue_xmit(frame(a, 1))
    assert select.select([b], [], [], 0)[0] == [b]
    b.poll()
    assert select.select([b], [], [], 0)[0] == []


def test_budget_limits_a_poll():
    a, b = pipe_pair()
    for i in range(10):
        dev_queue_xmit(frame(a, i))
    first = b.poll(budget=4)
    rest = b.poll(budget=64)
    assert [int.from_bytes(bytes(s.data[14:18]), "big") for s in first + rest] == list(range(10))


def test_busy_peer_requeues_in_order_and_loses_nothing():
    a, b = pipe_pair(rx_queue_len=4)
    for i in range(10):
        assert dev_queue_xmit(frame(a, i)) == NET_XMIT_SUCCESS
    assert a.queue_stopped and len(a.qdisc) == 6 and a.stats.tx_packets == 4
    seen = []
    while len(seen) < 10:
        seen += b.poll(budget=3)    # each receive makes room, waking the sender
        a.poll()
    assert [int.from_bytes(bytes(s.data[14:18]), "big") for s in seen] == list(range(10))
    assert a.stats.tx_dropped == 0 and not a.queue_stopped


def test_full_transmit_queue_drops_and_counts():
    a, b = pipe_pair(rx_queue_len=1)
    a.qdisc.limit = 3
    results = [dev_queue_xmit(frame(a, i)) for i in range(6)]
    assert results == [NET_XMIT_SUCCESS] * 4 + [NET_XMIT_DROP] * 2
    assert a.stats.tx_dropped == 2


def test_down_device_drops_and_stop_purges_the_queue():
    a, b = pipe_pair(rx_queue_len=1)
    for i in range(3):
        dev_queue_xmit(frame(a, i))
    a.stop()
    assert a.stats.tx_dropped == 2          # the two waiting in the qdisc
    assert dev_queue_xmit(frame(a, 9)) == NET_XMIT_DROP
    assert a.stats.tx_dropped == 3
    assert a.poll() == []
    with pytest.raises(ValueError):
        a.fileno()


def test_frames_still_waiting_to_be_received_at_stop_are_counted():
    a, b = pipe_pair()
    for i in range(3):
        dev_queue_xmit(frame(a, i))
    b.stop()
    assert b.stats.rx_dropped == 3 and not b.rxq
    with LoopbackDevice(rx_queue_len=2) as lo:
        for i in range(3):
            dev_queue_xmit(frame(lo, i))
        assert lo.stats.rx_dropped == 1              # the backlog holds two
    assert lo.stats.rx_dropped == 3                  # and those two went at stop


def test_peer_down_is_a_wire_drop():
    a, b = pipe_pair()
    b.stop()
    assert dev_queue_xmit(frame(a, 1)) == NET_XMIT_SUCCESS
    assert a.stats.tx_dropped == 1 and a.stats.tx_packets == 0


def test_loopback_returns_what_it_sends():
    with LoopbackDevice() as lo:
        skbs = [frame(lo, i) for i in range(3)]
        for s in skbs:
            dev_queue_xmit(s)
        got = lo.poll()
        assert [s.tobytes() for s in got] == [s.tobytes() for s in skbs]
        assert lo.stats.tx_packets == lo.stats.rx_packets == 3


def tcp_valid(frame):
    f = bytes(frame)
    ip, tcp = f[14:34], f[34:]
    pseudo = ip[12:20] + struct.pack("!HH", 6, len(tcp))
    return ones_sum(ip) == 0xFFFF and ones_sum(pseudo + tcp) == 0xFFFF


PAYLOAD = bytes(range(256)) * 40


def test_gso_skb_is_segmented_in_software_for_a_plain_device():
    a, b = pipe_pair()
    assert dev_queue_xmit(tcp_gso_frame(a, PAYLOAD, 1448)) == NET_XMIT_SUCCESS
    got = b.poll()
    assert len(got) == -(-len(PAYLOAD) // 1448) and a.stats.tx_packets == len(got)
    assert all(len(s) <= 1514 and tcp_valid(s.data) for s in got)
    assert all(s.ip_summed != CHECKSUM_PARTIAL and not s.gso_size for s in got)
    assert b"".join(bytes(s.data[54:]) for s in got) == PAYLOAD
    seqs = [struct.unpack("!I", bytes(s.data[38:42]))[0] for s in got]
    assert seqs == [1000 + 1448 * i for i in range(len(got))]


def test_partial_checksum_is_finished_for_a_device_without_csum_offload():
    a, b = pipe_pair()
    skb = tcp_gso_frame(a, PAYLOAD[:1000], 0)
    dev_queue_xmit(skb)
    (got,) = b.poll()
    assert tcp_valid(got.data) and bytes(got.data[54:]) == PAYLOAD[:1000]


def test_offloading_device_gets_the_gso_skb_whole():
    a, b = pipe_pair(features=NETIF_F_HW_CSUM | NETIF_F_SG | NETIF_F_TSO)
    dev_queue_xmit(tcp_gso_frame(a, PAYLOAD, 1448))
    (got,) = b.poll()
    assert len(got) == 14 + 40 + len(PAYLOAD)
    assert (got.gso_size, got.gso_type, got.ip_summed) == (1448, SKB_GSO_TCPV4, CHECKSUM_PARTIAL)


def test_csum_only_device_gets_partial_segments():
    a, b = pipe_pair(features=NETIF_F_HW_CSUM)
    dev_queue_xmit(tcp_gso_frame(a, PAYLOAD, 1448))
    got = b.poll()
    assert len(got) == 8 and all(s.ip_summed == CHECKSUM_PARTIAL and not s.gso_size for s in got)


def test_frames_the_stack_cannot_finish_are_dropped_and_counted():
    a, b = pipe_pair()
    skb = tcp_gso_frame(a, PAYLOAD, 1448)
    skb.gso_type = 1 << 12                 # a GSO type nobody segments
    assert dev_queue_xmit(skb) == NET_XMIT_DROP
    assert a.stats.tx_dropped == 1 and b.poll() == []
