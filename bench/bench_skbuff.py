"""The packet buffer's per-packet cycle: alloc, reserve, put, push, pull."""
from pynet.skbuff import SKB


def cycle():
    skb = SKB(2048)
    skb.reserve(128)
    skb.put(1448)
    skb.push(32)        # TCP header
    skb.push(20)        # IPv4 header
    skb.push(14)        # Ethernet header
    skb.pull(14)
    return skb


def test_skb_alloc_reserve_push_pull(benchmark):
    benchmark.group = "skb"
    skb = benchmark(cycle)
    assert len(skb) == 1448 + 32 + 20
