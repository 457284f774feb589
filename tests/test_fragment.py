"""ip_fragment_skb (C) against the oracle (RFC 791 section 3.2)."""
import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pynet.checksum import csum_partial, csum_tcpudp_magic, ip_fast_csum
from pynet.gso import ip_fragment_skb
from pynet.skbuff import CHECKSUM_NONE, SKB

import oracle
import wirekit

# Options: security (type 130, copied), record route (7, not copied),
# timestamp (68, not copied), a NOP, and stream id (136, copied).
SECURITY = bytes([130, 11]) + bytes(9)
RECORD_ROUTE = bytes([7, 7, 4]) + bytes(4)
TIMESTAMP = bytes([68, 8, 5, 0]) + bytes(4)
STREAM_ID = bytes([136, 4, 0x12, 0x34])


def pad(opts):
    return opts + b"\0" * (-len(opts) % 4)


def frag_skb(pkt, headroom=32):
    skb = SKB.from_bytes(pkt, headroom=headroom)
    skb.reset_network_header()
    return skb


def reassemble(frags):
    """The datagram's data from its fragments, checking offsets and MF on the way."""
    data = b""
    for i, f in enumerate(frags):
        b = bytes(f.data)
        assert ip_fast_csum(b) == 0
        fl = oracle.ip_fields(b)
        assert fl["tot_len"] == len(b) and fl["frag_offset"] == len(data)
        assert fl["mf"] == (i < len(frags) - 1)
        data += b[oracle.ihl(b):]
    return data


def test_a_4k_udp_datagram_over_a_1500_byte_mtu():
    payload = random.Random(4).randbytes(4000)
    udp = bytearray(oracle.udp_header(length=8 + len(payload)) + payload)
    udp[6:8] = struct.pack("!H", oracle.transport_checksum(0xc6120001, 0xc6120002, 17, udp))
    pkt = oracle.ipv4_packet(17, udp, ident=0xbeef)
    frags = ip_fragment_skb(frag_skb(pkt), 1500)
    assert [len(f) for f in frags] == [1500, 1500, 20 + 4008 - 2960]
    assert [oracle.ip_fields(bytes(f.data))["frag_offset"] for f in frags] == [0, 1480, 2960]
    assert {oracle.ip_fields(bytes(f.data))["id"] for f in frags} == {0xbeef}
    assert [bytes(f.data) for f in frags] == oracle.fragment(pkt, 1500)
    data = reassemble(frags)
    assert data == bytes(udp)
    assert csum_tcpudp_magic(0xc6120001, 0xc6120002, len(data), 17, csum_partial(data)) == 0
    for f in frags:
        assert (f.headroom, f.network_header, f.transport_header) == (32, 32, 52)
        assert f.ip_summed == CHECKSUM_NONE


def test_the_kernels_fragments_of_a_4k_udp_datagram_come_out_byte_for_byte():
    # tests/captures/udp_frag.pcap: Linux fragmenting a 4 KB UDP datagram on
    # a 1280-byte MTU link. Put it back together, split it again, compare.
    kernel = [f[14:] for f in wirekit.frames("udp_frag.pcap")
              if oracle.ip_fields(f[14:])["proto"] == 17]
    data = b"".join(f[20:] for f in kernel)
    header = bytearray(kernel[0][:20])
    header[2:4] = struct.pack("!H", 20 + len(data))
    header[6:8] = b"\0\0"                                 # offset 0, MF clear
    datagram = oracle.with_ip_checksum(header) + data
    frags = ip_fragment_skb(frag_skb(datagram, headroom=14), 1280)
    assert [bytes(f.data) for f in frags] == kernel


def test_later_fragments_carry_only_the_copied_options():
    opts = pad(SECURITY + RECORD_ROUTE + b"\x01" + TIMESTAMP + STREAM_ID)
    pkt = oracle.ipv4_packet(17, bytes(range(256)) * 4, options=opts)
    frags = ip_fragment_skb(frag_skb(pkt), 576)
    first, later = bytes(frags[0].data), bytes(frags[1].data)
    assert first[20:oracle.ihl(first)] == opts
    assert later[20:oracle.ihl(later)] == pad(SECURITY + STREAM_ID)
    assert [bytes(f.data) for f in frags] == oracle.fragment(pkt, 576)
    assert reassemble(frags) == bytes(range(256)) * 4
    assert all(len(f) <= 576 for f in frags)


def test_a_datagram_that_fits_comes_back_as_one_copy():
    pkt = oracle.ipv4_packet(17, b"small", df=True)
    skb = frag_skb(pkt)
    (only,) = ip_fragment_skb(skb, 1500)
    assert only.tobytes() == pkt and only is not skb


def test_fragmenting_a_fragment_keeps_its_offset_and_its_mf():
    pkt = oracle.ipv4_packet(6, bytes(3000), mf=True, frag_offset=1480)
    frags = ip_fragment_skb(frag_skb(pkt), 1000)
    fields = [oracle.ip_fields(bytes(f.data)) for f in frags]
    assert [f["frag_offset"] for f in fields] == [1480, 2456, 3432, 4408]
    assert all(f["mf"] for f in fields)
    assert [bytes(f.data) for f in frags] == oracle.fragment(pkt, 1000)


def test_df_and_a_too_small_mtu_raise_valueerror():
    big = oracle.ipv4_packet(17, bytes(2000), df=True)
    with pytest.raises(ValueError, match="DF"):
        ip_fragment_skb(frag_skb(big), 1500)
    pkt = oracle.ipv4_packet(17, bytes(2000), options=pad(SECURITY))
    with pytest.raises(ValueError, match="8 bytes"):
        ip_fragment_skb(frag_skb(pkt), 20 + 12 + 7)
    assert len(ip_fragment_skb(frag_skb(pkt), 20 + 12 + 8)) == 250


def test_malformed_input_raises_valueerror():
    pkt = oracle.ipv4_packet(17, bytes(2000))
    cases = [
        pkt[:19],                                            # short header
        b"\x65" + pkt[1:],                                   # version 6
        pkt[:2] + struct.pack("!H", 1000) + pkt[4:],         # tot_len disagrees
        pkt + b"\0",                                         # trailing bytes
        oracle.ipv4_packet(17, bytes(2000), options=bytes([130, 1, 0, 0])),   # option length 1
        oracle.ipv4_packet(17, bytes(2000), options=bytes([130, 9, 0, 0])),   # runs past IHL
        oracle.ipv4_packet(17, bytes(2000), options=bytes([1, 1, 1, 7])),     # no length byte
        oracle.ipv4_packet(17, bytes(2000), frag_offset=65528 - 1000),        # offsets past 65528
    ]
    for bad in cases:
        with pytest.raises(ValueError):
            ip_fragment_skb(frag_skb(bad), 576)
    gso = frag_skb(pkt)
    gso.gso_size = 1000
    with pytest.raises(ValueError, match="GSO"):
        ip_fragment_skb(gso, 576)
    for mtu, exc in [(-1, ValueError), (2**32, ValueError), (576.0, TypeError), (None, TypeError)]:
        with pytest.raises(exc):
            ip_fragment_skb(frag_skb(pkt), mtu)
    with pytest.raises(TypeError):
        ip_fragment_skb(pkt, 576)


def test_a_partial_checksum_is_finished_before_splitting():
    payload = bytes(range(200)) * 10
    udp = bytearray(oracle.udp_header(length=8 + len(payload)) + payload)
    expect = oracle.transport_checksum(0xc6120001, 0xc6120002, 17, udp)
    udp[6:8] = struct.pack("!H", ~csum_tcpudp_magic(0xc6120001, 0xc6120002, len(udp), 17) & 0xffff)
    skb = frag_skb(oracle.ipv4_packet(17, udp))
    skb.set_partial(32 + 20, 6)
    data = reassemble(ip_fragment_skb(skb, 1000))
    assert struct.unpack_from("!H", data, 6)[0] == expect


@settings(max_examples=300, deadline=None)
@given(data_len=st.integers(0, 9000), mtu=st.integers(68, 9100),
       opts=st.lists(st.sampled_from([SECURITY, RECORD_ROUTE, TIMESTAMP, STREAM_ID, b"\x01"]),
                     max_size=3),
       ident=st.integers(0, 0xffff), headroom=st.integers(0, 128), seed=st.integers(0, 2**32))
def test_fragmentation_matches_the_oracle(data_len, mtu, opts, ident, headroom, seed):
    options = pad(b"".join(opts))
    if len(options) > 40:
        return
    data = random.Random(seed).randbytes(data_len)
    pkt = oracle.ipv4_packet(17, data, options=options, ident=ident)
    frags = ip_fragment_skb(frag_skb(pkt, headroom), mtu)
    assert [bytes(f.data) for f in frags] == oracle.fragment(pkt, mtu)
    assert all(len(f) <= max(mtu, len(pkt)) and f.headroom == headroom for f in frags)
    if len(frags) > 1:
        assert reassemble(frags) == data


def test_random_headers_raise_or_fragment_but_never_crash():
    rng = random.Random(791)
    base = oracle.ipv4_packet(17, bytes(3000), options=pad(SECURITY + RECORD_ROUTE))
    ok = 0
    for _ in range(3000):
        pkt = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            pkt[rng.randrange(40)] = rng.randrange(256)
        if rng.random() < 0.2:
            del pkt[rng.randint(0, len(pkt)):]
        try:
            frags = ip_fragment_skb(frag_skb(bytes(pkt)), rng.randint(0, 1600))
        except ValueError:
            continue
        ok += 1
        assert all(ip_fast_csum(f.data) == 0 for f in frags)
    assert ok > 50
