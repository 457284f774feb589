"""Header fast paths (csrc/hdr.c) against the Python views they mirror:
parse the hot fields of a data segment, and build TCP+IPv4 headers for one."""
from wirekit import frames

from pynet.skbuff import SKB
from pynet.wire import EthernetPacket, Ipv4Packet, Ipv4Repr, TcpPacket, TcpRepr
from pynet.wire.ipv4 import IPPROTO_TCP, ipv4_hdr_push
from pynet.wire.tcp import TCPHDR_ACK, tcp_hdr_parse, tcp_hdr_push

SEG = bytes(Ipv4Packet(EthernetPacket(frames("tcp.pcap")[3]).payload).payload)   # kernel data segment
PAYLOAD = bytes(1448)
SADDR, DADDR = 0xC6120102, 0xC6120202


def test_tcp_parse_c(benchmark):
    benchmark.group = "tcp parse"
    benchmark(tcp_hdr_parse, SEG)


def test_tcp_parse_view(benchmark):
    benchmark.group = "tcp parse"
    benchmark(lambda: TcpRepr.parse(TcpPacket(SEG)))


def _build_c(partial):
    skb = SKB.from_bytes(PAYLOAD, headroom=128)
    tcp_hdr_push(skb, 5001, 45410, 1, 2, TCPHDR_ACK, 64, SADDR, DADDR, ts=(3, 4), partial=partial)
    ipv4_hdr_push(skb, SADDR, DADDR, IPPROTO_TCP, 7)
    return skb


def _build_view():
    skb = SKB.from_bytes(PAYLOAD, headroom=128)
    r = TcpRepr(5001, 45410, 1, 2, TCPHDR_ACK, 64, timestamp=(3, 4))
    r.emit(skb.push(r.header_len), SADDR, DADDR, payload=PAYLOAD)
    Ipv4Repr(SADDR, DADDR, IPPROTO_TCP, len(skb), id=7, df=True).emit(skb.push(20))
    return skb


def test_tcp_ipv4_build_c_partial(benchmark):
    benchmark.group = "tcp+ipv4 build, 1448 B payload"
    benchmark(_build_c, True)


def test_tcp_ipv4_build_c_full_csum(benchmark):
    benchmark.group = "tcp+ipv4 build, 1448 B payload"
    assert _build_c(False).tobytes() == _build_view().tobytes()
    benchmark(_build_c, False)


def test_tcp_ipv4_build_view(benchmark):
    benchmark.group = "tcp+ipv4 build, 1448 B payload"
    benchmark(_build_view)
