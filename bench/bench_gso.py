"""GSO of a 64 KB TCP/IPv4 super-segment into 1448-byte segments."""
import random

import oracle
from pynet.gso import skb_gso_segment
from pynet.skbuff import SKB, SKB_GSO_TCPV4

PAYLOAD = 65536 - 52


def super_segment():
    payload = random.Random(64).randbytes(PAYLOAD)
    pkt = oracle.ipv4_packet(6, oracle.tcp_header(flags=0x18, options=b"\x01\x01\x08\x0a" + bytes(8))
                             + payload)
    skb = SKB.from_bytes(pkt, headroom=64)
    skb.gso_size, skb.gso_type = 1448, SKB_GSO_TCPV4
    return pkt, skb


def test_gso_tcp_64k_c(benchmark):
    benchmark.group = "gso 64 KB"
    _, skb = super_segment()
    segs = benchmark(skb_gso_segment, skb)
    assert len(segs) == -(-PAYLOAD // 1448)


def test_gso_tcp_64k_oracle(benchmark):
    benchmark.group = "gso 64 KB"
    pkt, _ = super_segment()
    benchmark.pedantic(oracle.gso_segment, (pkt, 1448), rounds=5)
