"""skb_gso_segment (C) against the oracle: TCP and UDP over IPv4."""
import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pynet.checksum import csum_partial, csum_tcpudp_magic, ip_fast_csum, skb_checksum_help
from pynet.gso import skb_gso_segment
from pynet.skbuff import (CHECKSUM_NONE, CHECKSUM_PARTIAL, SKB, SKB_GSO_TCPV4,
                          SKB_GSO_UDP_L4)

import oracle

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80


def gso_skb(pkt, gso_size, gso_type=SKB_GSO_TCPV4, headroom=64):
    skb = SKB.from_bytes(pkt, headroom=headroom)
    skb.reset_network_header()
    if headroom + oracle.ihl(pkt) <= skb.end:        # a truncated one may have none
        skb.transport_header = headroom + oracle.ihl(pkt)
    skb.gso_size = gso_size
    skb.gso_type = gso_type
    return skb


def tcp_pkt(payload, flags=ACK | PSH, seq=1000, topts=b"", ipopts=b"", **ip):
    return oracle.ipv4_packet(6, oracle.tcp_header(seq=seq, flags=flags, options=topts) + payload,
                              options=ipopts, **ip)


def udp_pkt(payload, **ip):
    return oracle.ipv4_packet(17, oracle.udp_header(length=min(8 + len(payload), 0xffff)) + payload, **ip)


def verify(seg):
    """Every checksum in one output segment verifies; returns its payload."""
    data = bytes(seg.data)
    hl = oracle.ihl(data)
    assert ip_fast_csum(data) == 0
    f = oracle.ip_fields(data)
    assert f["tot_len"] == len(data)
    l4 = data[hl:]
    assert csum_tcpudp_magic(f["saddr"], f["daddr"], len(l4), f["proto"], csum_partial(l4)) == 0
    thl = (l4[12] >> 4) * 4 if f["proto"] == 6 else 8
    return l4[thl:]


def test_64k_tcp_into_1448_byte_segments():
    payload = random.Random(1).randbytes(65536 - 52)
    pkt = tcp_pkt(payload, flags=ACK | PSH | FIN | CWR, topts=b"\x01\x01\x08\x0a" + bytes(8))
    skb = gso_skb(pkt, 1448)
    before = skb.tobytes()
    segs = skb_gso_segment(skb)
    assert len(segs) == -(-len(payload) // 1448)
    assert [bytes(s.data) for s in segs] == oracle.gso_segment(pkt, 1448)
    assert b"".join(verify(s) for s in segs) == payload
    assert skb.tobytes() == before                      # the input is left alone
    flags = [bytes(s.data)[20 + 13] for s in segs]
    assert flags[0] == ACK | CWR and flags[-1] == ACK | PSH | FIN
    assert set(flags[1:-1]) == {ACK}
    seqs = [struct.unpack_from("!I", bytes(s.data), 24)[0] for s in segs]
    assert seqs == [1000 + 1448 * i for i in range(len(segs))]
    ids = [oracle.ip_fields(bytes(s.data))["id"] for s in segs]
    assert ids == [0x1234 + i for i in range(len(segs))]


def test_segments_keep_the_headroom_and_the_input_metadata():
    skb = gso_skb(tcp_pkt(b"x" * 3000), 1000, headroom=78)
    skb.mark, skb.protocol = 7, 0x0800
    skb.sk, skb.dev, skb.dst, skb.cb = object(), object(), object(), object()
    segs = skb_gso_segment(skb)
    assert len(segs) == 3
    for s in segs:
        assert (s.headroom, s.network_header, s.transport_header) == (78, 78, 98)
        assert (s.mark, s.protocol, s.gso_size, s.ip_summed) == (7, 0x0800, 0, CHECKSUM_NONE)
        assert (s.sk, s.dev, s.dst, s.cb) == (skb.sk, skb.dev, skb.dst, skb.cb)
        s.push_data(b"E" * 14)                      # room for the Ethernet header
    assert segs[-1].tailroom == 0 and len(segs[-1]) == 14 + 40 + 1000


def test_sequence_numbers_wrap():
    pkt = tcp_pkt(b"y" * 300, seq=2**32 - 100, ident=0xffff)
    segs = skb_gso_segment(gso_skb(pkt, 100))
    assert [bytes(s.data) for s in segs] == oracle.gso_segment(pkt, 100)
    assert [struct.unpack_from("!I", bytes(s.data), 24)[0] for s in segs] == [2**32 - 100, 0, 100]
    assert oracle.ip_fields(bytes(segs[1].data))["id"] == 0


def test_payload_that_fits_one_segment_comes_back_as_one():
    pkt = tcp_pkt(b"z" * 100, flags=ACK | FIN)
    segs = skb_gso_segment(gso_skb(pkt, 1448))
    assert [bytes(s.data) for s in segs] == oracle.gso_segment(pkt, 1448)


def test_hw_csum_leaves_the_pseudo_header_sum_for_the_device():
    pkt = tcp_pkt(random.Random(2).randbytes(5000))
    full = skb_gso_segment(gso_skb(pkt, 1448))
    partial = skb_gso_segment(gso_skb(pkt, 1448), hw_csum=True)
    for f, p in zip(full, partial):
        assert (p.ip_summed, p.csum_start, p.csum_offset) == (CHECKSUM_PARTIAL, p.transport_header, 16)
        assert ip_fast_csum(p.data) == 0
        f_data = bytes(p.data)
        seglen = len(f_data) - 20
        pseudo = ~csum_tcpudp_magic(0xc6120001, 0xc6120002, seglen, 6) & 0xffff
        assert struct.unpack_from("!H", f_data, 36)[0] == pseudo
        skb_checksum_help(p)                        # what the device would do
        assert p.tobytes() == f.tobytes()


def test_udp_l4_gso_makes_datagrams_with_their_own_header():
    payload = random.Random(3).randbytes(4000)
    pkt = udp_pkt(payload)
    segs = skb_gso_segment(gso_skb(pkt, 1400, SKB_GSO_UDP_L4))
    assert [bytes(s.data) for s in segs] == oracle.gso_segment(pkt, 1400)
    assert [struct.unpack_from("!H", bytes(s.data), 24)[0] for s in segs] == [1408, 1408, 1208]
    assert b"".join(verify(s) for s in segs) == payload
    partial = skb_gso_segment(gso_skb(pkt, 1400, SKB_GSO_UDP_L4), hw_csum=True)
    assert partial[0].csum_offset == 6
    for p, s in zip(partial, segs):
        skb_checksum_help(p)
        assert p.tobytes() == s.tobytes()


@settings(max_examples=300, deadline=None)
@given(payload_len=st.integers(0, 20000), mss=st.integers(1, 3000),
       flags=st.integers(0, 255), seq=st.integers(0, 2**32 - 1), ident=st.integers(0, 0xffff),
       topts=st.binary(max_size=40), ipopts=st.sampled_from([b"", b"\x01\x01\x01\x00",
                                                              b"\x94\x04\x00\x00" * 2]),
       headroom=st.integers(0, 200), seed=st.integers(0, 2**32))
def test_tcp_gso_matches_the_oracle(payload_len, mss, flags, seq, ident, topts, ipopts, headroom, seed):
    topts = topts[:40 - (-len(topts) % 4)]
    payload = random.Random(seed).randbytes(payload_len)
    pkt = tcp_pkt(payload, flags=flags, seq=seq, topts=topts, ipopts=ipopts, ident=ident)
    if len(payload) > 60000 or 20 + len(ipopts) + 20 + len(topts) + mss > 0xffff:
        return
    segs = skb_gso_segment(gso_skb(pkt, mss, headroom=headroom))
    assert [bytes(s.data) for s in segs] == oracle.gso_segment(pkt, mss)
    assert b"".join(verify(s) for s in segs) == payload
    assert all(s.headroom == headroom for s in segs)


@settings(max_examples=200, deadline=None)
@given(payload_len=st.integers(0, 20000), mss=st.integers(1, 3000), seed=st.integers(0, 2**32))
def test_udp_gso_matches_the_oracle(payload_len, mss, seed):
    payload = random.Random(seed).randbytes(payload_len)
    pkt = udp_pkt(payload)
    segs = skb_gso_segment(gso_skb(pkt, mss, SKB_GSO_UDP_L4))
    assert [bytes(s.data) for s in segs] == oracle.gso_segment(pkt, mss)
    assert b"".join(verify(s) for s in segs) == payload


def _bad(pkt, mss=1000, gso_type=SKB_GSO_TCPV4, headroom=0):
    with pytest.raises(ValueError) as exc:
        skb_gso_segment(gso_skb(pkt, mss, gso_type, headroom))
    return str(exc.value)


def test_what_cannot_be_segmented_raises_valueerror():
    good = tcp_pkt(b"a" * 3000)
    assert "gso_size" in _bad(good, mss=0)
    assert "gso_type" in _bad(good, gso_type=0)
    assert "gso_type" in _bad(good, gso_type=SKB_GSO_UDP_L4)       # TCP packet, UDP type
    assert "gso_type" in _bad(udp_pkt(b"a" * 3000))                 # and the other way
    assert "IPv4 header" in _bad(b"\x60" + good[1:])                # IPv6 version
    assert "IPv4 header" in _bad(b"\x44" + good[1:])                # IHL 4
    assert "fit" in _bad(good[:19])
    assert "fit" in _bad(good[:39])                                 # TCP header cut
    assert "fit" in _bad(b"\x4f" + good[1:60])                      # IHL 60 past the data
    doff4 = bytearray(good)
    doff4[32] = 0x40
    assert "IPv4 header" in _bad(bytes(doff4))
    assert "fragment" in _bad(tcp_pkt(b"a" * 3000, mf=True))
    assert "fragment" in _bad(tcp_pkt(b"a" * 3000, frag_offset=8))
    assert "65535" in _bad(good, mss=65535 - 40 + 1)
    assert "65535 segments" in _bad(udp_pkt(b"a" * 70000), mss=1, gso_type=SKB_GSO_UDP_L4)
    far = SKB.from_bytes(good, headroom=65535 - 10)   # header offsets are 16-bit
    far.gso_size, far.gso_type = 1000, SKB_GSO_TCPV4
    with pytest.raises(ValueError, match="headroom"):
        skb_gso_segment(far)
    with pytest.raises(TypeError):
        skb_gso_segment(bytes(good))
    with pytest.raises(TypeError):
        skb_gso_segment(None)


def test_random_frames_raise_or_segment_but_never_crash():
    rng = random.Random(2026)
    base = [tcp_pkt(b"p" * 3000), udp_pkt(b"q" * 3000)]
    ok = 0
    for _ in range(3000):
        pkt = bytearray(rng.choice(base))
        for _ in range(rng.randint(1, 4)):
            pkt[rng.randrange(48)] = rng.randrange(256)
        if rng.random() < 0.3:
            del pkt[rng.randint(0, len(pkt)):]
        skb = gso_skb(bytes(pkt), rng.randint(0, 1600),
                      rng.choice([SKB_GSO_TCPV4, SKB_GSO_UDP_L4, 0]))
        try:
            segs = skb_gso_segment(skb, hw_csum=rng.random() < 0.2)
        except ValueError:
            continue
        ok += 1
        for s in segs:
            assert ip_fast_csum(s.data) == 0
    assert ok > 100


def test_the_input_is_pinned_only_while_it_is_being_read():
    skb = gso_skb(tcp_pkt(b"r" * 40000), 1448)
    skb_gso_segment(skb)
    skb.gso_size = 0
    with pytest.raises(ValueError):
        skb_gso_segment(skb)
    skb.expand_head(16)                 # no view left behind: it may reallocate
    assert skb.headroom == 80


def test_another_thread_cannot_free_the_buffer_under_a_running_split():
    # Large inputs are segmented without the GIL; a reallocation attempted
    # meanwhile must fail cleanly (BufferError), not free what C is reading.
    import threading
    payload = random.Random(5).randbytes(60000)
    pkt = tcp_pkt(payload)
    skb = gso_skb(pkt, 1448)
    stop = threading.Event()

    def reallocate():
        while not stop.is_set():
            try:
                skb.expand_head(0)
            except BufferError:
                pass

    t = threading.Thread(target=reallocate)
    t.start()
    try:
        for _ in range(200):
            segs = skb_gso_segment(skb)
            assert b"".join(verify(s) for s in segs) == payload
    finally:
        stop.set()
        t.join()
