"""Reassembly and bad input at the receive path: counted, dropped, never raised, memory bounded."""
import os
import random

from ipkit import A_ADDR, B_ADDR, Pair, eth, inject, ipv4

from pynet.checksum import ip_fast_csum
from pynet.wire import IcmpPacket
from pynet.wire.ipv4 import IPPROTO_UDP, ip_aton
from pynet.wire.udp import UdpRepr

SRC, DST = ip_aton(A_ADDR), ip_aton(B_ADDR)


def udp_datagram(payload, sport=1000, dport=9):
    hdr = bytearray(8)
    UdpRepr(sport, dport, len(payload)).emit(hdr, SRC, DST, payload=payload)
    return bytes(hdr) + payload


def fragments(datagram, sizes, ident=7):
    """Split a transport datagram into IPv4 fragments of the given payload sizes (multiples of 8)."""
    out, off = [], 0
    for size in sizes:
        chunk = datagram[off:off + size]
        out.append((off, ipv4(SRC, DST, IPPROTO_UDP, chunk, ident=ident,
                              mf=off + size < len(datagram), offset=off)))
        off += size
    assert off >= len(datagram)
    return out


def setup():
    p = Pair()
    server = p.b.udp_socket()
    server.bind(("", 9))
    return p, server


def feed(p, frames):
    for f in frames:
        inject(p.b, p.db, eth(p.db.hwaddr, p.da.hwaddr, f))


def test_in_order_and_out_of_order_reassemble():
    p, server = setup()
    payload = os.urandom(3000)
    frags = fragments(udp_datagram(payload), [1480, 1480, 48])
    feed(p, [f for _, f in frags])
    assert server.recv(65535) == payload
    frags = fragments(udp_datagram(payload), [1000, 8, 992, 1008], ident=8)
    order = [f for _, f in frags]
    random.Random(5).shuffle(order)
    feed(p, order)
    assert server.recv(65535) == payload
    mib = p.b.mib.ip
    assert mib["ReasmOKs"] == 2 and mib["ReasmReqds"] == 7 and mib["ReasmFails"] == 0
    assert p.b.ipfrag.mem == 0 and len(p.b.ipfrag) == 0


def test_exact_duplicate_is_dropped_alone_overlap_drops_the_datagram():
    p, server = setup()
    payload = os.urandom(2000)
    frags = fragments(udp_datagram(payload), [1000, 1008])
    feed(p, [frags[0][1], frags[0][1], frags[1][1]])
    assert server.recv(65535) == payload
    d = udp_datagram(payload)
    overlapping = [ipv4(SRC, DST, IPPROTO_UDP, d[:1000], ident=9, mf=True),
                   ipv4(SRC, DST, IPPROTO_UDP, d[992:], ident=9, offset=992)]
    feed(p, overlapping)
    assert not server.readable()
    mib = p.b.mib.ip
    assert mib["ReasmOverlaps"] == 1 and mib["ReasmFails"] == 1
    assert len(p.b.ipfrag) == 0 and p.b.ipfrag.mem == 0


def test_incomplete_datagram_times_out_and_draws_time_exceeded():
    p, server = setup()
    frags = fragments(udp_datagram(os.urandom(2000)), [1000, 1008])
    feed(p, [frags[0][1]])
    assert len(p.b.ipfrag) == 1
    p.run(29.0, dt=1.0)
    assert len(p.b.ipfrag) == 1
    p.run(1.5, dt=0.1)
    mib = p.b.mib.ip
    assert len(p.b.ipfrag) == 0 and mib["ReasmTimeout"] == 1 and mib["ReasmFails"] == 1
    assert p.b.mib.icmp["OutTimeExcds"] == 1 and p.a.mib.icmp["InTimeExcds"] == 1


def test_tiny_empty_and_oversized_fragments():
    p, server = setup()
    d = udp_datagram(os.urandom(64))
    # a middle fragment with no payload: the datagram is dropped
    feed(p, [ipv4(SRC, DST, IPPROTO_UDP, d[:8], ident=20, mf=True),
             ipv4(SRC, DST, IPPROTO_UDP, b"", ident=20, mf=True, offset=8)])
    # fragments reaching past 65,535 bytes
    feed(p, [ipv4(SRC, DST, IPPROTO_UDP, b"x" * 16, ident=21, offset=65528)])
    # 8-byte fragments reassemble correctly
    feed(p, [f for _, f in fragments(d, [8] * 9, ident=22)])
    assert server.recv(100) == d[8:]
    assert p.b.mib.ip["ReasmFails"] == 2 and len(p.b.ipfrag) == 0


def test_flood_of_incomplete_fragments_stays_under_the_memory_limit():
    p, server = setup()
    limit = 256 * 1024
    p.b.ipfrag.high_thresh = limit
    rng = random.Random(1)
    peak = 0
    for ident in range(3000):
        off = rng.randrange(1, 8000) * 8
        feed(p, [ipv4(SRC, DST, IPPROTO_UDP, b"f" * 64, ident=ident, mf=True, offset=off)])
        peak = max(peak, p.b.ipfrag.mem)
    assert peak <= limit
    assert p.b.mib.ip["ReasmFails"] > 0          # the rest were refused and counted
    p.run(31.0, dt=1.0)
    assert p.b.ipfrag.mem == 0 and len(p.b.ipfrag) == 0
    # and a real datagram gets through afterwards
    payload = os.urandom(3000)
    feed(p, [f for _, f in fragments(udp_datagram(payload), [1480, 1480, 48], ident=9999)])
    assert server.recv(65535) == payload


def test_per_datagram_memory_limit():
    p, server = setup()
    p.b.ipfrag.max_queue_mem = 64 * 1024
    d = udp_datagram(os.urandom(60000))
    peak = 0
    for _, f in fragments(d, [8] * (len(d) // 8 + 1), ident=30):
        feed(p, [f])
        peak = max(peak, p.b.ipfrag.mem)
    assert peak <= 64 * 1024
    assert p.b.mib.ip["ReasmFails"] >= 1 and p.b.mib.ip["ReasmOKs"] == 0
    assert not server.readable()


def test_bad_headers_are_counted_never_raised():
    p, server = setup()
    good = ipv4(SRC, DST, IPPROTO_UDP, udp_datagram(b"ok"))
    mib = p.b.mib.ip
    bad_version = bytes([0x65]) + good[1:]
    bad_ihl = bytes([0x44]) + good[1:]
    bad_csum = good[:10] + bytes([good[10] ^ 0xFF]) + good[11:]
    too_long = bytearray(good[:2] + (len(good) + 10).to_bytes(2, "big") + good[4:])
    too_long[10:12] = b"\0\0"
    too_long[10:12] = ip_fast_csum(too_long[:20]).to_bytes(2, "big")
    too_long = bytes(too_long)
    feed(p, [good[:10], bad_version, bad_ihl, bad_csum, too_long, good + b"\0" * 20])
    assert mib["InHdrErrors"] == 4 and mib["InCsumErrors"] == 1 and mib["InTruncatedPkts"] == 1
    assert server.recv(10) == b"ok"          # padding trimmed, delivered
    not_ours = ipv4(SRC, ip_aton("198.18.0.77"), IPPROTO_UDP, udp_datagram(b"x"))
    feed(p, [not_ours])
    assert mib["InAddrErrors"] == 1
    unknown = ipv4(SRC, DST, 200, b"zzzzzzzz")
    feed(p, [unknown])
    assert mib["InUnknownProtos"] == 1 and p.b.mib.icmp["OutDestUnreachs"] == 1


def test_random_garbage_never_raises_out_of_poll():
    p, server = setup()
    conn = p.b.udp_socket()
    conn.connect((A_ADDR, 5))
    udp = udp_datagram(b"payload!", sport=5)
    quoted = ipv4(DST, SRC, IPPROTO_UDP, udp_datagram(b"abcd", sport=conn.sport, dport=5))
    err = bytearray(8) + quoted
    pk = IcmpPacket.unchecked(err)
    pk.type, pk.code, pk.mtu = 3, 4, 600
    pk.fill_checksum()
    echo = bytearray(24)
    pk = IcmpPacket.unchecked(echo)
    pk.type = 8
    pk.fill_checksum()
    del pk
    bases = [ipv4(SRC, DST, IPPROTO_UDP, udp), ipv4(SRC, DST, IPPROTO_UDP, udp[:8], ident=5, mf=True),
             ipv4(SRC, DST, 1, bytes(err)), ipv4(SRC, DST, 1, bytes(echo)),
             bytes.fromhex("0001080006040001") + p.da.hwaddr + SRC.to_bytes(4, "big") + bytes(6)
             + DST.to_bytes(4, "big")]
    rng = random.Random(7)
    for i in range(4000):
        base = rng.choice(bases)
        b = bytearray(base)
        for _ in range(rng.randrange(0, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        if rng.random() < 0.5:
            b = b[:rng.randrange(0, len(b) + 1)]
        is_arp = base is bases[-1]
        if not is_arp and len(b) >= 20 and rng.random() < 0.7:
            ihl = (b[0] & 15) * 4               # a valid header checksum reaches deeper layers
            if 20 <= ihl <= len(b):
                b[10:12] = b"\0\0"
                b[10:12] = ip_fast_csum(bytes(b[:ihl])).to_bytes(2, "big")
        dst = rng.choice([p.db.hwaddr, b"\xff" * 6, b"\x02\x00\x00\x00\x00\x77"])
        p.db.rxq.enqueue(_skb(eth(dst, p.da.hwaddr, bytes(b), 0x0806 if is_arp else 0x0800)))
        if i % 32 == 0:
            p.step()
    p.run(40.0, dt=1.0)
    assert p.b.ipfrag.mem == 0 and len(p.b.ipfrag) == 0
    mib = p.b.mib
    assert mib.ip["InHdrErrors"] > 0 and mib.icmp["InCsumErrors"] > 0 and mib.ip["ReasmTimeout"] > 0
    assert p.b.stats["arp_invalid"] > 0


def _skb(frame):
    from pynet.skbuff import SKB
    skb = SKB.from_bytes(frame, headroom=64)
    skb.reset_mac_header()
    return skb
