"""Seeded fuzzing of every wire parser: random, truncated, oversized and
mutated copies of the golden frames. Only WireError may escape a parser."""
import random

from wirekit import all_frames, dissect

from pynet.wire import Ipv4Packet, TcpPacket, TcpRepr, WireError
from pynet.wire.ipv4 import IPPROTO_TCP, ipv4_hdr_parse
from pynet.wire.tcp import tcp_hdr_parse

GOLDEN = [f for _, _, f in all_frames()]
TCP_GOLDEN = [f for f in GOLDEN if f[12:14] == b"\x08\x00" and f[23] == 6]
N = 100_000


def fuzz_frames(rng, n):
    """n frames: a fifth each random, truncated, oversized, mutated, and TCP with random options."""
    for i in range(n):
        kind = i % 5
        g = rng.choice(GOLDEN)
        if kind == 0:
            yield rng.randbytes(rng.randrange(0, 120))
        elif kind == 1:
            yield g[:rng.randrange(len(g))]
        elif kind == 2:
            # oversized: trailing bytes, now and then to a 64 KB frame
            extra = rng.randrange(1, 200) if i % 100 != 2 else rng.randrange(9000, 65536)
            yield g + rng.randbytes(extra)
        elif kind == 3:
            b = bytearray(g)
            for _ in range(rng.randrange(1, 5)):
                b[rng.randrange(min(len(b), 80))] = rng.randrange(256)
            yield bytes(b)
        else:
            t = bytearray(rng.choice(TCP_GOLDEN))
            doff = rng.randrange(5, 16)
            t[46] = doff << 4 | (t[46] & 0x0F)
            t[54:34 + doff * 4] = rng.randbytes(doff * 4 - 20)
            yield bytes(t)


def test_fuzz_python_views():
    rng = random.Random(0x5EED)
    ok = rejected = tcp_parsed = 0
    for frame in fuzz_frames(rng, N):
        try:
            layers = dissect(frame, verify=False)
        except WireError:
            rejected += 1
            continue
        ok += 1
        for _, _, r in layers:
            tcp_parsed += isinstance(r, TcpRepr)
    # the fuzz reached every layer and both outcomes happened often
    assert ok + rejected == N
    assert ok > N // 5 and rejected > N // 5 and tcp_parsed > N // 10


def _outcome(f, *args):
    try:
        return f(*args)
    except WireError:
        return WireError


def _view_ipv4(b):
    p = Ipv4Packet(b)
    return (p.header_len, p.tot_len, p.id, p.frag_off, p.tos, p.ttl, p.protocol, p.saddr, p.daddr)


def _view_tcp(b):
    p = TcpPacket(b)
    r = TcpRepr.parse(p)
    return (r.source, r.dest, r.seq, r.ack_seq, r.flags, r.window, p.header_len,
            len(p.payload), r.timestamp, r.sack)


def test_fuzz_c_parsers_agree_with_the_views():
    """The C fast parsers accept exactly what the views accept, and read the same values."""
    rng = random.Random(0xC0FFEE)
    tcp_ok = ip_ok = 0
    for frame in fuzz_frames(rng, N):
        dgram = frame[14:]
        ip = _outcome(ipv4_hdr_parse, dgram, False)
        assert ip == _outcome(_view_ipv4, dgram)
        # the TCP parser on the segment an IPv4 header delimits, or on raw bytes
        if ip is not WireError and ip[6] == IPPROTO_TCP and not ip[3] & 0x3FFF:
            seg = dgram[ip[0]:ip[1]]
            ip_ok += 1
        else:
            seg = frame[rng.randrange(0, 40):]
        t = _outcome(tcp_hdr_parse, seg)
        assert t == _outcome(_view_tcp, seg)
        tcp_ok += t is not WireError
    assert ip_ok > N // 10 and tcp_ok > N // 10


def test_fuzz_tcp_options_parse_or_raise():
    rng = random.Random(7)
    parsed = 0
    for _ in range(20_000):
        opts = rng.randbytes(rng.randrange(0, 11) * 4)
        hdr = bytearray(20) + opts
        TcpPacket.unchecked(hdr).doff = len(hdr) // 4
        try:
            r = TcpRepr.parse(TcpPacket(hdr))
        except WireError:
            continue
        parsed += 1
        # what parsed re-emits and parses to the same value (if it fits in 40 bytes)
        try:
            n = r.header_len
        except WireError:
            continue
        buf = bytearray(n)
        r.emit(buf)
        assert TcpRepr.parse(TcpPacket(buf)) == r
    assert parsed > 1000
