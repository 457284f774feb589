"""The C header fast paths (csrc/hdr.c) against the Python views (the
reference) and the kernel's own frames."""
import random

import pytest
from wirekit import all_frames, frames

from pynet import _core
from pynet.checksum import skb_checksum_help
from pynet.skbuff import CHECKSUM_NONE, CHECKSUM_PARTIAL, SKB, SKB_GSO_TCPV4, SKBError
from pynet.wire import EthernetPacket, Ipv4Packet, Ipv4Repr, TcpPacket, TcpRepr, UdpPacket, WireError
from pynet.wire.ipv4 import (IPPROTO_TCP, IPPROTO_UDP, ip_aton, ipv4_hdr_parse, ipv4_hdr_push,
                             l4_partial_check)
from pynet.wire.tcp import TCPHDR_ACK, TCPHDR_SYN, tcp_hdr_parse, tcp_hdr_push
from pynet.wire.udp import udp_hdr_push

A, B = ip_aton("198.18.1.2"), ip_aton("198.18.2.2")
IP_DGRAMS = [bytes(EthernetPacket(f).payload) for _, _, f in all_frames() if f[12:14] == b"\x08\x00"]
TCP_DGRAMS = [d for d in IP_DGRAMS if d[9] == IPPROTO_TCP]


def expected_hot(seg):
    """What tcp_hdr_parse must return, computed by the Python view."""
    p = TcpPacket(seg)
    r = TcpRepr.parse(p)
    return (r.source, r.dest, r.seq, r.ack_seq, r.flags, r.window, p.header_len,
            len(p.payload), r.timestamp, r.sack)


@pytest.mark.parametrize("dgram", TCP_DGRAMS)
def test_tcp_parse_matches_the_view(dgram):
    seg = bytes(Ipv4Packet(dgram).payload)
    assert tcp_hdr_parse(seg) == expected_hot(seg)
    assert tcp_hdr_parse(SKB.from_bytes(seg, headroom=34)) == expected_hot(seg)
    assert tcp_hdr_parse(memoryview(bytearray(seg))) == expected_hot(seg)


@pytest.mark.parametrize("dgram", IP_DGRAMS)
def test_ipv4_parse_matches_the_view(dgram):
    p = Ipv4Packet(dgram)
    want = (p.header_len, p.tot_len, p.id, p.frag_off, p.tos, p.ttl, p.protocol, p.saddr, p.daddr)
    assert ipv4_hdr_parse(dgram) == want
    assert ipv4_hdr_parse(SKB.from_bytes(dgram + b"\0" * 6)) == want      # padding is allowed
    bad = bytearray(dgram)
    bad[10] ^= 1
    with pytest.raises(WireError, match="checksum"):
        ipv4_hdr_parse(bad)
    assert ipv4_hdr_parse(bad, verify=False)[1] == p.tot_len
    for cut in (0, 19, p.header_len - 1, p.tot_len - 1):
        if cut < len(dgram) and cut < p.tot_len:
            with pytest.raises(WireError):
                ipv4_hdr_parse(dgram[:cut])


def push_like_kernel(dgram, partial=False):
    """Rebuild a captured TCP/IPv4 datagram with the C builders from its parsed values."""
    ip = Ipv4Repr.parse(Ipv4Packet(dgram))
    p = TcpPacket(Ipv4Packet(dgram).payload)
    r = TcpRepr.parse(p)
    skb = SKB.from_bytes(bytes(p.payload), headroom=128)
    hl = tcp_hdr_push(skb, r.source, r.dest, r.seq, r.ack_seq, r.flags, r.window, ip.saddr,
                      ip.daddr, ts=r.timestamp, sack=r.sack, mss=r.mss or 0,
                      wscale=-1 if r.wscale is None else r.wscale, sack_perm=r.sack_perm,
                      fastopen=r.fastopen, fastopen_exp=r.fastopen_exp, urg_ptr=r.urg_ptr,
                      partial=partial)
    assert hl == p.header_len and skb.transport_header == skb.data_offset
    assert ipv4_hdr_push(skb, ip.saddr, ip.daddr, ip.protocol, ip.id, ttl=ip.ttl, tos=ip.tos,
                         df=ip.df) == 20
    assert skb.network_header == skb.data_offset == 128 - hl - 20
    assert skb.protocol == 0x0800
    return skb


@pytest.mark.parametrize("dgram", TCP_DGRAMS)
def test_tcp_ipv4_push_rebuilds_the_kernels_bytes(dgram):
    skb = push_like_kernel(dgram)
    assert skb.tobytes() == dgram and skb.ip_summed == CHECKSUM_NONE


@pytest.mark.parametrize("dgram", TCP_DGRAMS[:4])
def test_tcp_push_partial_is_finished_by_skb_checksum_help(dgram):
    skb = push_like_kernel(dgram, partial=True)
    ip = Ipv4Packet(dgram)
    assert skb.ip_summed == CHECKSUM_PARTIAL
    assert (skb.csum_start, skb.csum_offset) == (skb.transport_header, 16)
    seg = TcpPacket(skb.tobytes()[20:])
    assert seg.check == l4_partial_check(ip.saddr, ip.daddr, IPPROTO_TCP, len(ip.payload))
    skb_checksum_help(skb)
    assert skb.tobytes() == dgram


def test_udp_push_rebuilds_the_kernels_datagram():
    dgram = bytes(EthernetPacket(frames("icmp_errors.pcap")[4]).payload)
    ip = Ipv4Repr.parse(Ipv4Packet(dgram))
    u = UdpPacket(Ipv4Packet(dgram).payload)
    skb = SKB.from_bytes(bytes(u.payload), headroom=64)
    assert udp_hdr_push(skb, u.source, u.dest, ip.saddr, ip.daddr) == 8
    ipv4_hdr_push(skb, ip.saddr, ip.daddr, IPPROTO_UDP, ip.id, ttl=ip.ttl, df=ip.df)
    assert skb.tobytes() == dgram
    skb = SKB.from_bytes(bytes(u.payload), headroom=64)
    udp_hdr_push(skb, u.source, u.dest, ip.saddr, ip.daddr, partial=True)
    assert skb.ip_summed == CHECKSUM_PARTIAL and skb.csum_offset == 6
    skb_checksum_help(skb)
    assert skb.tobytes() == bytes(u.buf)


def random_repr(rng):
    return TcpRepr(
        rng.randrange(1 << 16), rng.randrange(1 << 16), rng.randrange(1 << 32),
        rng.randrange(1 << 32), rng.randrange(1 << 12), rng.randrange(1 << 16),
        urg_ptr=rng.randrange(1 << 16),
        mss=rng.choice([None, rng.randrange(1, 1 << 16)]),
        wscale=rng.choice([None, rng.randrange(15)]),
        sack_perm=rng.random() < 0.5,
        timestamp=rng.choice([None, (rng.randrange(1 << 32), rng.randrange(1 << 32))]),
        sack=tuple((rng.randrange(1 << 32), rng.randrange(1 << 32)) for _ in range(rng.randrange(4))),
        fastopen=rng.choice([None, b"", rng.randbytes(rng.choice([4, 6, 8, 16]))]),
        fastopen_exp=rng.random() < 0.5)


def test_tcp_push_matches_tcprepr_emit_on_random_headers():
    rng = random.Random(1)
    built = too_big = 0
    for _ in range(3000):
        r = random_repr(rng)
        payload = rng.randbytes(rng.randrange(0, 100))
        try:
            hl = r.header_len
        except WireError:
            skb = SKB.from_bytes(payload, headroom=80)
            with pytest.raises(WireError):
                tcp_hdr_push(skb, r.source, r.dest, r.seq, r.ack_seq, r.flags, r.window, A, B,
                             ts=r.timestamp, sack=r.sack, mss=r.mss or 0,
                             wscale=-1 if r.wscale is None else r.wscale,
                             sack_perm=r.sack_perm, fastopen=r.fastopen,
                             fastopen_exp=r.fastopen_exp, urg_ptr=r.urg_ptr)
            assert skb.tobytes() == payload          # nothing pushed on failure
            too_big += 1
            continue
        want = bytearray(hl)
        r.emit(want, A, B, payload=payload)
        skb = SKB.from_bytes(payload, headroom=80)
        tcp_hdr_push(skb, r.source, r.dest, r.seq, r.ack_seq, r.flags, r.window, A, B,
                     ts=r.timestamp, sack=r.sack, mss=r.mss or 0,
                     wscale=-1 if r.wscale is None else r.wscale, sack_perm=r.sack_perm,
                     fastopen=r.fastopen, fastopen_exp=r.fastopen_exp, urg_ptr=r.urg_ptr)
        assert skb.tobytes() == bytes(want) + payload
        assert tcp_hdr_parse(skb)[:8] == (r.source, r.dest, r.seq, r.ack_seq, r.flags, r.window,
                                           hl, len(payload))
        built += 1
    assert built > 1000 and too_big > 100


def test_push_errors():
    skb = SKB.from_bytes(b"x", headroom=30)
    with pytest.raises(SKBError):
        tcp_hdr_push(skb, 1, 2, 3, 4, TCPHDR_SYN, 5, A, B, mss=1460, ts=(1, 2))   # 32 > 30
    assert skb.tobytes() == b"x" and skb.transport_header == -1
    with pytest.raises(WireError):
        tcp_hdr_push(skb, 1, 2, 3, 4, TCPHDR_ACK, 5, A, B, sack=((1, 2),) * 5)
    with pytest.raises(WireError):
        tcp_hdr_push(skb, 1, 2, 3, 4, TCPHDR_SYN, 5, A, B, fastopen=b"abc")
    with pytest.raises(ValueError):
        tcp_hdr_push(skb, 1, 2, 3, 4, TCPHDR_SYN, 5, A, B, wscale=15)
    with pytest.raises(OverflowError):
        tcp_hdr_push(skb, 1 << 16, 2, 3, 4, TCPHDR_SYN, 5, A, B)
    big = SKB.from_bytes(bytes(65535 - 19), headroom=40)      # 65,536 with the header
    with pytest.raises(WireError):
        ipv4_hdr_push(big, A, B, IPPROTO_TCP, 0)
    with pytest.raises(WireError):
        udp_hdr_push(SKB.from_bytes(bytes(65535 - 7), headroom=8), 1, 2, A, B)


def test_big_tcp_gso_skb_carries_tot_len_0_and_parses_to_its_length():
    """Over 65535 bytes only a TCP GSO skb may go (BIG TCP): its IPv4 tot_len
    is 0 and the parser reads its length from the skb, as Linux's
    iph_set_totlen and iph_totlen do; anything else that long is refused."""
    payload = bytes(200_000)
    skb = SKB.from_bytes(payload, headroom=60)
    skb.gso_size, skb.gso_type = 1448, SKB_GSO_TCPV4
    tcp_hdr_push(skb, 1, 2, 3, 4, TCPHDR_ACK, 5, A, B, partial=True)
    ipv4_hdr_push(skb, A, B, IPPROTO_TCP, 7)
    assert skb.tobytes()[2:4] == b"\0\0"
    assert ipv4_hdr_parse(skb)[:2] == (20, 20 + 20 + len(payload))
    skb.gso_size = 0                       # the same bytes, not GSO: a broken header
    with pytest.raises(WireError):
        ipv4_hdr_parse(skb)
    with pytest.raises(WireError):
        ipv4_hdr_parse(skb.tobytes())
    small = SKB.from_bytes(bytes(1000), headroom=60)
    small.gso_size, small.gso_type = 1448, SKB_GSO_TCPV4
    ipv4_hdr_push(small, A, B, IPPROTO_TCP, 7)   # within 64 KB: a real tot_len
    assert ipv4_hdr_parse(small)[1] == 1020


def test_push_refuses_a_header_beyond_the_16_bit_offsets():
    """network/transport_header and csum_start are 16-bit offsets from head
    (0xffff: unset): a header further in must fail, not wrap."""
    for push in (lambda s: tcp_hdr_push(s, 1, 2, 3, 4, TCPHDR_ACK, 5, A, B, partial=True),
                 lambda s: udp_hdr_push(s, 1, 2, A, B, partial=True),
                 lambda s: ipv4_hdr_push(s, A, B, IPPROTO_UDP, 0)):
        skb = SKB.from_bytes(b"x", headroom=0xFFFF + 20)
        with pytest.raises(SKBError):
            push(skb)
        assert skb.tobytes() == b"x" and skb.network_header == -1 and skb.transport_header == -1
    skb = SKB.from_bytes(b"x", headroom=0xFFFE + 8)      # the header lands at 0xfffe: fine
    udp_hdr_push(skb, 1, 2, A, B, partial=True)
    assert skb.transport_header == 0xFFFE and skb.ip_summed == CHECKSUM_PARTIAL


def test_push_copies_a_shared_header_first():
    """A clone's push never writes into the buffer its original still reads."""
    orig = SKB.from_bytes(b"payload", headroom=64)
    before = orig.headroom_bytes()
    clone = orig.clone()
    tcp_hdr_push(clone, 1, 2, 3, 4, TCPHDR_ACK, 5, A, B)
    assert orig.headroom_bytes() == before and orig.tobytes() == b"payload"
    assert clone.tobytes()[20:] == b"payload" and tcp_hdr_parse(clone)[0] == 1


def test_parse_errors():
    with pytest.raises(WireError, match="shorter"):
        tcp_hdr_parse(bytes(19))
    hdr = bytearray(24)
    hdr[12] = 0x40
    with pytest.raises(WireError, match="doff"):
        tcp_hdr_parse(hdr)
    hdr[12] = 0x60
    hdr[20:24] = bytes.fromhex("02050000")
    with pytest.raises(WireError, match="option"):
        tcp_hdr_parse(hdr)
    with pytest.raises(TypeError):
        tcp_hdr_parse(12)
    with pytest.raises(WireError, match="version"):
        ipv4_hdr_parse(bytes([0x65]) + bytes(19))


def test_receive_buffers_past_the_16_bit_offsets_are_refused():
    """mac_header of a received frame is a 16-bit offset: the driver's buffers
    are checked before any read (fd -1: a read would fail with EBADF instead)."""
    skb = SKB(0xFFFF + 100)
    skb.reserve(0xFFFF)
    with pytest.raises(SKBError):
        _core.frame_read_skbs(-1, [skb], False)
    skb = SKB(200)
    skb.reserve(64)
    with pytest.raises(OSError):
        _core.frame_read_skbs(-1, [skb], False)
