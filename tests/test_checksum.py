"""pynet.checksum (C) against RFC vectors and the Python oracle."""
import array
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pynet.checksum import (csum_fold, csum_partial, csum_replace2, csum_replace4,
                            csum_tcpudp_magic, csum_tcpudp_nofold, ip_fast_csum,
                            skb_checksum, skb_checksum_help)
from pynet.skbuff import CHECKSUM_NONE, CHECKSUM_PARTIAL, SKB

import oracle

RFC1071_BYTES = bytes([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7])


def folded(s):
    """A 32-bit unfolded sum folded to 16 bits, not inverted."""
    return ~csum_fold(s) & 0xffff


def test_rfc1071_example_sum():
    # RFC 1071 section 3: the words sum to 2ddf0, which folds to ddf2.
    assert folded(csum_partial(RFC1071_BYTES)) == 0xddf2
    assert csum_fold(csum_partial(RFC1071_BYTES)) == 0x220d


def test_odd_length_pads_the_last_byte_as_a_high_byte():
    assert folded(csum_partial(b"\x12")) == 0x1200
    assert folded(csum_partial(b"\x12\x34\x56")) == 0x1234 + 0x5600


def test_empty_buffer_sums_to_the_start_value():
    assert csum_partial(b"") == 0
    assert csum_partial(b"", 0x1234) == 0x1234


def test_a_captured_ipv4_header_verifies_and_its_checksum_is_recomputed():
    # An ICMP echo from 192.168.1.1 to 192.168.1.2, checksum b761 (Wikipedia's
    # IPv4 header checksum example).
    hdr = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert ip_fast_csum(hdr) == 0xb861
    good = hdr[:10] + struct.pack("!H", 0xb861) + hdr[12:]
    assert ip_fast_csum(good) == 0
    assert ip_fast_csum(good + b"payload is ignored") == 0


def test_ip_fast_csum_covers_the_options():
    hdr = bytearray(oracle.with_ip_checksum(
        bytes.fromhex("46000020abcd00004006000001020304050607089404000000000000")[:24]))
    assert len(hdr) == 24 and ip_fast_csum(hdr) == 0
    hdr[22] ^= 1
    assert ip_fast_csum(hdr) != 0


def test_tcp_pseudo_header_checksum_matches_a_hand_computed_value():
    saddr, daddr = 0xc6120001, 0xc6120002       # 198.18.0.1 -> 198.18.0.2
    seg = bytearray(struct.pack("!HHIIBBHHH", 1234, 80, 1, 0, 0x50, 0x02, 65535, 0, 0))
    check = csum_tcpudp_magic(saddr, daddr, len(seg), 6, csum_partial(seg))
    assert check == oracle.transport_checksum(saddr, daddr, 6, seg)
    seg[16:18] = struct.pack("!H", check)
    assert csum_tcpudp_magic(saddr, daddr, len(seg), 6, csum_partial(seg)) == 0


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=3000), st.integers(0, 0xffffffff), st.integers(0, 7))
def test_csum_partial_matches_the_oracle_at_any_length_and_offset(data, start, skip):
    view = memoryview(data)[min(skip, len(data)):]
    assert folded(csum_partial(view, start)) == oracle.ones_sum(view, folded(start))


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=400), st.binary(max_size=400))
def test_sums_of_even_length_pieces_add_up(a, b):
    a = a[:len(a) // 2 * 2]
    assert folded(csum_partial(a + b)) == folded(csum_partial(b, csum_partial(a)))


def test_large_buffer_sums_without_the_gil_and_matches_the_oracle():
    data = bytes(range(256)) * 257 + b"\x5a"        # 65,793 bytes, odd
    assert folded(csum_partial(data)) == oracle.ones_sum(data)


def test_any_bytes_like_object_is_accepted():
    data = RFC1071_BYTES
    expect = csum_partial(data)
    assert csum_partial(bytearray(data)) == expect
    assert csum_partial(memoryview(data)) == expect
    assert csum_partial(array.array("B", data)) == expect
    skb = SKB.from_bytes(data, headroom=3)
    assert csum_partial(skb) == expect


def test_a_big_tcp_length_enters_the_pseudo_header_as_two_words():
    # 0x1_0005 bytes sums as 0x0001 + 0x0005, as Linux's csum_tcpudp_nofold adds a u32 length
    assert csum_fold(csum_tcpudp_nofold(0xc6120001, 0xc6120002, 0x10005, 6)) == \
        csum_fold(csum_tcpudp_nofold(0xc6120001, 0xc6120002, 6, 6))


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 0xffffffff), st.integers(0, 0xffffffff), st.integers(0, 0xffff),
       st.sampled_from([6, 17, 1, 255]), st.integers(0, 0xffffffff))
def test_pseudo_header_matches_the_oracle(saddr, daddr, length, proto, start):
    ph = oracle.pseudo_header(saddr, daddr, proto, length)
    nofold = csum_tcpudp_nofold(saddr, daddr, length, proto, start)
    assert 0 <= nofold <= 0xffffffff
    assert folded(nofold) == oracle.ones_sum(ph, folded(start))
    assert csum_tcpudp_magic(saddr, daddr, length, proto, start) == oracle.checksum(ph, folded(start))


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=2, max_size=64).filter(lambda b: len(b) % 2 == 0),
       st.data())
def test_incremental_updates_agree_with_recomputing(data, draw):
    # RFC 1624: updating the checksum for a changed field gives the checksum
    # of the changed data (up to 0 / 0xffff, equal in ones' complement).
    buf = bytearray(data)
    check = oracle.checksum(buf)
    i = draw.draw(st.integers(0, len(buf) // 2 - 1)) * 2
    new = draw.draw(st.integers(0, 0xffff))
    old = struct.unpack_from("!H", buf, i)[0]
    struct.pack_into("!H", buf, i, new)
    got = csum_replace2(check, old, new)
    assert got % 0xffff == oracle.checksum(buf) % 0xffff
    if len(buf) >= 4:
        j = draw.draw(st.integers(0, len(buf) // 2 - 2)) * 2
        new4 = draw.draw(st.integers(0, 0xffffffff))
        old4 = struct.unpack_from("!I", buf, j)[0]
        before = oracle.checksum(buf)
        struct.pack_into("!I", buf, j, new4)
        assert csum_replace4(before, old4, new4) % 0xffff == oracle.checksum(buf) % 0xffff


def test_replace4_on_an_address_keeps_an_ip_header_valid():
    hdr = bytearray(oracle.with_ip_checksum(bytes.fromhex("4500001c0001000040110000c6120001c6120002")))
    old = struct.unpack_from("!I", hdr, 16)[0]
    struct.pack_into("!I", hdr, 16, 0xc6130063)
    struct.pack_into("!H", hdr, 10, csum_replace4(struct.unpack_from("!H", hdr, 10)[0], old, 0xc6130063))
    assert ip_fast_csum(hdr) == 0


def test_skb_checksum_covers_a_range_of_the_data():
    data = bytes(range(100))
    skb = SKB.from_bytes(data, headroom=16)
    for off, n in [(0, 100), (1, 33), (17, 0), (99, 1), (100, 0)]:
        assert folded(skb_checksum(skb, off, n)) == oracle.ones_sum(data[off:off + n])
    assert skb_checksum(skb, 4, 10, 0x1234) == csum_partial(data[4:14], 0x1234)


def _partial_udp_skb(payload, headroom=32):
    saddr, daddr = 0xc6120001, 0xc6120002
    udp = bytearray(struct.pack("!HHHH", 5000, 53, 8 + len(payload), 0)) + payload
    skb = SKB.from_bytes(bytes(udp), headroom=headroom)
    # The stack leaves the pseudo-header sum in the field for the device.
    pseudo = ~csum_tcpudp_magic(saddr, daddr, len(udp), 17, 0) & 0xffff
    skb.data[6:8] = struct.pack("!H", pseudo)
    skb.set_partial(headroom, 6)
    return skb, saddr, daddr, udp


def test_skb_checksum_help_finishes_a_partial_checksum():
    skb, saddr, daddr, udp = _partial_udp_skb(b"hello, world")
    skb_checksum_help(skb)
    assert skb.ip_summed == CHECKSUM_NONE
    check = struct.unpack("!H", bytes(skb.data[6:8]))[0]
    assert check == oracle.transport_checksum(saddr, daddr, 17, udp)
    assert csum_tcpudp_magic(saddr, daddr, len(skb), 17, csum_partial(skb)) == 0


def test_skb_checksum_help_copies_a_shared_header_before_writing():
    skb, *_ = _partial_udp_skb(b"x" * 40)
    clone = skb.clone()
    before = clone.tobytes()
    skb_checksum_help(skb)
    assert clone.tobytes() == before
    assert skb.tobytes() != before


def test_skb_checksum_help_refuses_what_it_cannot_finish():
    skb = SKB.from_bytes(b"\0" * 20, headroom=8, tailroom=8)
    with pytest.raises(ValueError, match="CHECKSUM_PARTIAL"):
        skb_checksum_help(skb)
    skb.set_partial(2, 0)                       # before the data
    with pytest.raises(ValueError, match="outside the data"):
        skb_checksum_help(skb)
    skb.set_partial(8, 19)                      # the field runs past the tail
    with pytest.raises(ValueError, match="outside the data"):
        skb_checksum_help(skb)
    assert skb.ip_summed == CHECKSUM_PARTIAL


@pytest.mark.parametrize("call, exc", [
    (lambda: csum_partial("text"), TypeError),
    (lambda: csum_partial(12), TypeError),
    (lambda: csum_partial(None), TypeError),
    (lambda: csum_partial(b"", -1), ValueError),
    (lambda: csum_partial(b"", 2**32), ValueError),
    (lambda: csum_partial(b"", 1.5), TypeError),
    (lambda: csum_fold(2**64), ValueError),
    (lambda: csum_fold("1"), TypeError),
    (lambda: ip_fast_csum(b"\x45" * 19), ValueError),
    (lambda: ip_fast_csum(b"\x44" + b"\0" * 19), ValueError),
    (lambda: ip_fast_csum(b"\x46" + b"\0" * 19), ValueError),
    (lambda: csum_tcpudp_nofold(-1, 0, 0, 6), ValueError),
    (lambda: csum_tcpudp_nofold(0, 0, 2**32, 6), ValueError),
    (lambda: csum_tcpudp_magic(0, 0, 0, 256), ValueError),
    (lambda: csum_replace2(0x10000, 0, 0), ValueError),
    (lambda: csum_replace4(0, 2**32, 0), ValueError),
    (lambda: skb_checksum(SKB.from_bytes(b"abc"), 2, 2), ValueError),
    (lambda: skb_checksum(SKB.from_bytes(b"abc"), 4, 0), ValueError),
    (lambda: skb_checksum(SKB.from_bytes(b"abc"), -1, 1), ValueError),
    (lambda: skb_checksum(b"abc", 0, 1), TypeError),
    (lambda: skb_checksum_help(None), TypeError),
])
def test_bad_arguments_raise_instead_of_wrapping(call, exc):
    with pytest.raises(exc):
        call()
