"""GRO (pynet.gro, csrc/gro.c): merged runs carry exactly the bytes the
segments carried, headers stay valid, and what Linux's tcp_gro_receive
refuses to merge stays apart. Frames are built here with struct and a
Python ones'-complement sum, independent of pynet's C."""
import hashlib
import random
import socket
import struct

import pytest

from pynet.gro import GroStats, gro_receive
from pynet.skbuff import CHECKSUM_NONE, CHECKSUM_UNNECESSARY, SKB, SKB_GSO_TCPV4

SRC, DST = bytes([198, 18, 0, 1]), bytes([198, 18, 0, 2])
MAC = b"\x02\x00\x00\x00\x00\x01" + b"\x02\x00\x00\x00\x00\x02" + b"\x08\x00"
MSS = 1448
ACK, PSH, FIN, SYN, URG, CWR = 0x10, 0x08, 0x01, 0x02, 0x20, 0x80


def ones_sum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def seg(seq, payload, *, flags=ACK, ack=7, win=500, ts=(100, 200), sport=40000, dport=80,
        src=SRC, dst=DST, ttl=64, tos=0, ip_opts=b"", bad_csum=False, ident=0):
    """An Ethernet frame with a TCP/IPv4 segment, checksums complete."""
    opts = b"\x01\x01\x08\x0a" + struct.pack("!II", *ts) if ts else b""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, (20 + len(opts)) // 4 << 4, flags,
                      win, 0, 0) + opts + payload
    check = 0xFFFF - ones_sum(src + dst + struct.pack("!HH", 6, len(tcp)) + tcp)
    if bad_csum:
        check ^= 0x0100
    tcp = tcp[:16] + struct.pack("!H", check) + tcp[18:]
    ihl = 5 + len(ip_opts) // 4
    ip = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, ihl * 4 + len(tcp), ident, 0x4000, ttl, 6,
                     0, src, dst) + ip_opts
    ip = ip[:10] + struct.pack("!H", 0xFFFF - ones_sum(ip)) + ip[12:]
    return SKB.from_bytes(MAC + ip + tcp, headroom=64)


def parse(skb):
    """(flow, seq, flags, payload) of a frame, checking the IPv4 header and
    either a valid TCP checksum or CHECKSUM_UNNECESSARY."""
    b = skb.tobytes()
    ip = b[14:]
    ihl = (ip[0] & 15) * 4
    tot = struct.unpack("!H", ip[2:4])[0]
    assert tot == len(ip) and ones_sum(ip[:ihl]) == 0xFFFF
    tcp = ip[ihl:tot]
    if skb.ip_summed != CHECKSUM_UNNECESSARY:
        assert ones_sum(ip[12:20] + struct.pack("!HH", 6, len(tcp)) + tcp) == 0xFFFF
    sport, dport, seq = struct.unpack("!HHI", tcp[:8])
    doff = (tcp[12] >> 4) * 4
    return (sport, dport), seq, tcp[13], tcp[doff:]


def stream(n, size=MSS, seq0=1000, seed=1, **kw):
    rnd = random.Random(seed)
    data = [rnd.randbytes(size) for _ in range(n)]
    return [seg(seq0 + i * size, d, **kw) for i, d in enumerate(data)], b"".join(data)


def reassemble(skbs):
    """The byte stream per flow, by sequence number, as TCP would see it."""
    flows = {}
    for skb in skbs:
        flow, seq, _, payload = parse(skb)
        flows.setdefault(flow, []).append((seq, payload))
    return {f: b"".join(p for _, p in sorted(v)) for f, v in flows.items()}


def test_a_run_merges_into_one_gso_skb():
    skbs, data = stream(40)
    stats = GroStats()
    out = gro_receive(list(skbs), stats)
    # 40 x 1448 B: 45 fit below 65,535 (20 + 32 + 45 * 1448 = 65,212): one skb
    assert len(out) == 1 and out[0] is skbs[0]
    m = out[0]
    assert m.gso_size == MSS and m.gso_segs == 40 and m.gso_type == SKB_GSO_TCPV4
    assert m.ip_summed == CHECKSUM_UNNECESSARY
    _, seq, flags, payload = parse(m)
    assert seq == 1000 and flags == ACK
    assert hashlib.sha256(payload).digest() == hashlib.sha256(data).digest()
    assert stats.merged == 39 and stats.bad_csum == 0


def test_merged_and_unmerged_carry_the_same_stream():
    rnd = random.Random(4)
    frames, data = [], b""
    seq = 5000
    for i in range(300):         # sizes vary: short segments end runs
        n = MSS if rnd.random() < 0.8 else rnd.randrange(1, MSS)
        p = rnd.randbytes(n)
        frames.append((seq, p, PSH | ACK if rnd.random() < 0.05 else ACK))
        data += p
        seq += n
    plain = [seg(s, p, flags=f) for s, p, f in frames]
    merged = gro_receive([seg(s, p, flags=f) for s, p, f in frames])
    assert len(merged) < len(plain) / 4
    assert reassemble(merged) == reassemble(plain) == {(40000, 80): data}
    for skb in merged:
        _, _, flags, payload = parse(skb)
        assert len(payload) <= 65535 - 52
        if skb.gso_segs:
            assert skb.gso_size * (skb.gso_segs - 1) < len(payload) <= skb.gso_size * skb.gso_segs


def test_the_ip_length_limit_splits_long_runs():
    skbs, data = stream(100)
    out = gro_receive(skbs)
    assert [o.gso_segs for o in out] == [45, 45, 10]
    assert reassemble(out)[(40000, 80)] == data


def test_psh_ends_a_run_and_is_kept():
    a = seg(1000, b"a" * 100)
    b = seg(1100, b"b" * 100, flags=ACK | PSH)
    c = seg(1200, b"c" * 100)
    out = gro_receive([a, b, c])
    assert out == [a, c]
    _, _, flags, payload = parse(a)
    assert flags == ACK | PSH and payload == b"a" * 100 + b"b" * 100


@pytest.mark.parametrize("change", [
    dict(ack=8), dict(win=501), dict(ts=(101, 200)), dict(ts=None), dict(ttl=63), dict(tos=4),
    dict(sport=40001), dict(dst=bytes([198, 18, 0, 3])),
])
def test_headers_that_differ_are_not_merged(change):
    a = seg(1000, b"x" * MSS)
    b = seg(1000 + MSS, b"y" * MSS, **change)
    out = gro_receive([a, b])
    assert out == [a, b] and a.gso_size == 0 and len(a) == 14 + 20 + 32 + MSS


@pytest.mark.parametrize("flags", [ACK | FIN, ACK | SYN, ACK | URG, ACK | CWR, 0x04, PSH])
def test_flags_other_than_ack_and_psh_are_never_merged(flags):
    a = seg(1000, b"x" * MSS)
    b = seg(1000 + MSS, b"y" * MSS, flags=flags)
    c = seg(1000 + 2 * MSS, b"z" * MSS)
    out = gro_receive([a, b, c])
    assert out == [a, b, c]


def test_gaps_duplicates_and_reordering_are_not_merged():
    a = seg(1000, b"a" * MSS)
    gap = seg(1000 + 2 * MSS, b"c" * MSS)
    dup = seg(1000 + 2 * MSS, b"c" * MSS)
    back = seg(1000 + MSS, b"b" * MSS)
    out = gro_receive([a, gap, dup, back])
    assert out == [a, gap, dup, back]


def test_larger_than_the_first_segment_is_not_merged():
    a = seg(1000, b"a" * 536)
    b = seg(1536, b"b" * MSS)
    assert gro_receive([a, b]) == [a, b]


def test_a_short_segment_is_merged_last():
    a = seg(1000, b"a" * MSS)
    b = seg(1000 + MSS, b"b" * 10)
    c = seg(1010 + MSS, b"c" * 10)
    out = gro_receive([a, b, c])
    assert out == [a, c] and a.gso_segs == 2


def test_ip_options_pure_acks_and_non_tcp_pass_through():
    a = seg(1000, b"a" * MSS, ip_opts=b"\x01\x01\x01\x00")
    b = seg(1000 + MSS, b"b" * MSS, ip_opts=b"\x01\x01\x01\x00")
    ack = seg(1000, b"")
    arp = SKB.from_bytes(MAC[:12] + b"\x08\x06" + bytes(28))
    out = gro_receive([a, b, ack, arp])
    assert out == [a, b, ack, arp] and all(s.gso_size == 0 for s in out)


def test_bad_checksum_is_left_for_tcp_to_drop():
    a = seg(1000, b"a" * MSS)
    bad = seg(1000 + MSS, b"b" * MSS, bad_csum=True)
    stats = GroStats()
    out = gro_receive([a, bad], stats)
    assert out == [a, bad] and stats.bad_csum == 1
    assert bad.ip_summed == CHECKSUM_NONE and a.ip_summed == CHECKSUM_UNNECESSARY


def test_interleaved_flows_merge_separately_in_order():
    f1, d1 = stream(10, sport=1, seed=1)
    f2, d2 = stream(10, sport=2, seed=2)
    mixed = [s for pair in zip(f1, f2) for s in pair]
    out = gro_receive(mixed)
    assert out == [f1[0], f2[0]]
    assert reassemble(out) == {(1, 80): d1, (2, 80): d2}


def test_a_shared_buffer_is_copied_before_it_grows():
    a, b = seg(1000, b"a" * MSS), seg(1000 + MSS, b"b" * MSS)
    clone = a.clone()
    before = clone.tobytes()
    out = gro_receive([a, b])
    assert out == [a] and a.gso_segs == 2
    assert clone.tobytes() == before


def test_an_exported_head_goes_up_unmerged():
    a, b = seg(1000, b"a" * MSS), seg(1000 + MSS, b"b" * MSS)
    view = a.data           # tailroom is too small and the buffer cannot move
    out = gro_receive([a, b])
    del view
    assert out == [a, b] and a.gso_size == 0
    assert reassemble(out)[(40000, 80)] == b"a" * MSS + b"b" * MSS


def test_truncated_and_garbage_frames_pass_through():
    rnd = random.Random(9)
    good = seg(1000, b"a" * MSS)
    frames = [SKB.from_bytes(good.tobytes()[:n]) for n in (0, 13, 14, 33, 54, 60, 100)]
    frames += [SKB.from_bytes(rnd.randbytes(rnd.randrange(0, 200))) for _ in range(200)]
    out = gro_receive(list(frames))
    assert out == frames


@pytest.mark.parametrize("seed", [1, 2])
def test_two_stacks_with_gro_over_a_lossy_pipe(seed):
    """The whole receive path with GRO on both ends of a pipe that carries
    one MSS per frame and drops, duplicates and reorders some: the stream
    arrives whole, and GRO merged most of it."""
    from pynet.benchmark import Source, Verifier
    from pynet.dev.fault import FaultInjector
    from pynet.stack import pipe_stacks
    from pynet.tcp.tcp import TcpState
    from pynet.tcp.tcp_ipv4 import tcp_v4_connect, tcp_v4_init_sock
    from pynet.tcp.tcp_user import inet_accept, inet_listen, tcp_close, tcp_recvmsg, tcp_sendmsg
    from pynet.wire.ipv4 import ip_aton

    def lossy(dev):
        return FaultInjector(dev, seed=seed, drop=0.01, duplicate=0.01, reorder=0.01)

    a, b = pipe_stacks(wraps=(lossy, lossy), gro=True)
    ls = tcp_v4_init_sock(b)
    inet_listen(ls, ls.hashinfo, 0, 80, 8)
    c = tcp_v4_init_sock(a)
    tcp_v4_connect(c, ip_aton("198.18.0.2"), 80, 0.0)
    src, ver, s, now, total = Source(seed), Verifier(seed), None, 0.0, 3 << 20
    while now < 60:
        now += 0.0005
        a.poll(now)
        b.poll(now)
        if c.state == TcpState.ESTABLISHED and src.nbytes < total:
            src.advance(tcp_sendmsg(c, src.chunk(min(1 << 18, total - src.nbytes)), now))
            if src.nbytes == total:
                tcp_close(c, now)
        if s is None:
            s = inet_accept(ls) if ls.accept_queue else None
            continue
        try:
            d = tcp_recvmsg(s, 1 << 22, now)
        except BlockingIOError:
            continue
        if not d:
            break
        ver.feed(d)
    assert ver.nbytes == total
    assert b.gro_stats.merged > total // 1448 // 2


# -- GRO in the driver: the frame reader (csrc/frame_read.c, gro_run_*) -------------------------
# Frames reach frame_read_skbs through a datagram socketpair, which keeps their
# boundaries as a TAP or an AF_PACKET socket does, each behind a virtio_net_hdr
# written here. sock=False reads them with readv as from a TAP, sock=True with
# recvmsg as from AF_PACKET.
VNET_HDR = struct.Struct("=BBHHHH")    # flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
VIRTIO_NEEDS_CSUM, VIRTIO_DATA_VALID, VIRTIO_GSO_TCPV4, VIRTIO_GSO_UDP_L4 = 1, 2, 1, 5
BIG = 256 << 10


def vnet(gso_size=0, flags=None, gso_type=None):
    """A frame's virtio header: a TCP GSO one (partial checksum), else DATA_VALID."""
    if gso_size:
        return VNET_HDR.pack(VIRTIO_NEEDS_CSUM, gso_type or VIRTIO_GSO_TCPV4, 66, gso_size, 34, 16)
    return VNET_HDR.pack(VIRTIO_DATA_VALID if flags is None else flags, gso_type or 0, 0, 0, 0, 0)


def gso_frame(seq, nseg, seed, **kw):
    """(virtio header, frame) of a TCP GSO frame of nseg full segments, and its payload."""
    payload = random.Random(seed).randbytes(nseg * MSS)
    return (vnet(MSS), seg(seq, payload, **kw).tobytes()), payload


def driver_read(frames, gro_max_len, room=BIG, sock=False):
    """Feed (virtio header, frame) pairs to the frame reader with GRO up to
    gro_max_len, its skbs sized as BatchDevice sizes them for `room`:
    (skbs filled, malformed, merged)."""
    from pynet import _core
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with a, b:
        b.setblocking(False)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        for hdr, frame in frames:
            a.send(hdr + frame)
        skbs = []
        for _ in frames:
            skb = SKB(64 + _core.RX_FRAME_MAX + max(0, room - 65536))
            skb.reserve(64)
            skbs.append(skb)
        got, bad, merged = _core.frame_read_skbs(b.fileno(), skbs, True, 0, gro_max_len, sock)
    return skbs[:got], bad, merged


def big_parse(skb):
    """parse() for skbs that may be over 64 KB (IPv4 tot_len 0: the length is the frame's)."""
    b = skb.tobytes()
    if len(b) - 14 <= 65535:
        return parse(skb)
    assert b[16:18] == b"\0\0" and ones_sum(b[14:34]) == 0xFFFF
    sport, dport, seq = struct.unpack("!HHI", b[34:42])
    return (sport, dport), seq, b[47], b[34 + (b[46] >> 4) * 4:]


def test_driver_gro_merges_a_run_of_gso_frames_past_64k_in_place():
    """The kernel's 64 KB GSO frames of one run, PSH on each as a kernel
    sender sets it, become one BIG TCP skb of up to gro_max_len."""
    frames, data = [], b""
    for i in range(5):
        f, p = gso_frame(1000 + i * 45 * MSS, 45, i, flags=ACK | PSH)
        frames.append(f)
        data += p
    skbs, bad, merged = driver_read(frames, BIG)
    assert bad == 0 and merged == 3 and len(skbs) == 2
    head, last = skbs
    # 20 + 32 + 4 * 45 * 1448 = 260,692 <= 256 KB; a fifth frame would pass it
    assert len(head) == 14 + 20 + 32 + 4 * 45 * MSS
    assert head.gso_size == MSS and head.gso_segs == 180 and head.gso_type == SKB_GSO_TCPV4
    assert head.ip_summed == CHECKSUM_UNNECESSARY
    _, seq, flags, payload = big_parse(head)
    assert seq == 1000 and flags == ACK | PSH
    assert last.tobytes() == frames[4][1] and last.gso_size == MSS and last.gso_segs == 0
    assert payload + big_parse(last)[3] == data


def test_driver_gro_below_64k_keeps_an_ip_length():
    frames = [gso_frame(1000 + i * 4 * MSS, 4, i)[0] for i in range(3)]
    frames.append((vnet(), seg(1000 + 12 * MSS, b"z" * 700).tobytes()))
    skbs, bad, merged = driver_read(frames, 65535)
    assert merged == 3 and len(skbs) == 1
    m = skbs[0]
    assert m.gso_segs == 13 and m.gso_size == MSS
    _, seq, _, payload = parse(m)       # tot_len is the datagram's, header checksum valid
    assert seq == 1000 and len(payload) == 12 * MSS + 700


def _run_breakers():
    """(name, frame that must not join a run at seq 1000 + 2 * MSS)."""
    nxt = 1000 + 2 * MSS
    p = b"n" * MSS
    udp = bytearray(seg(nxt, p).tobytes())
    udp[23] = 17
    return [
        ("seq-gap", (vnet(), seg(nxt + 1, p).tobytes())),
        ("other-flow", (vnet(), seg(nxt, p, sport=40001).tobytes())),
        ("timestamp", (vnet(), seg(nxt, p, ts=(101, 200)).tobytes())),
        ("ack", (vnet(), seg(nxt, p, ack=8).tobytes())),
        ("fin", (vnet(), seg(nxt, p, flags=ACK | FIN).tobytes())),
        ("larger", (vnet(), seg(nxt, p + b"n").tobytes())),
        ("no-csum-verdict", (vnet(flags=0), seg(nxt, p).tobytes())),
        ("other-gso-size", (VNET_HDR.pack(VIRTIO_NEEDS_CSUM, VIRTIO_GSO_TCPV4, 66, 1000, 34, 16),
                            seg(nxt, p).tobytes())),
        ("udp-gso", (VNET_HDR.pack(VIRTIO_NEEDS_CSUM, VIRTIO_GSO_UDP_L4, 42, 1000, 34, 6),
                     bytes(udp))),
        ("arp", (vnet(flags=0), MAC[:12] + b"\x08\x06" + bytes(28))),
    ]


@pytest.mark.parametrize("name,breaker", _run_breakers(), ids=[n for n, _ in _run_breakers()])
def test_driver_gro_sends_up_what_does_not_continue_the_run_intact(name, breaker):
    """Whatever does not continue the run goes up as it came, and ends the
    run: the frame after it is not merged behind the old head either."""
    head, _ = gso_frame(1000, 2, 1)
    after = (vnet(), seg(1000 + 2 * MSS, b"a" * MSS).tobytes())
    skbs, bad, merged = driver_read([head, breaker, after], BIG)
    assert bad == 0 and merged == 0
    assert [s.tobytes() for s in skbs] == [head[1], breaker[1], after[1]]


def test_driver_gro_a_short_segment_joins_and_ends_the_run():
    head, _ = gso_frame(1000, 2, 1)
    short = (vnet(), seg(1000 + 2 * MSS, b"s" * 500).tobytes())
    after = (vnet(), seg(1000 + 2 * MSS + 500, b"a" * MSS).tobytes())
    skbs, bad, merged = driver_read([head, short, after], BIG)
    assert merged == 1 and [len(s) for s in skbs] == [66 + 2 * MSS + 500, len(after[1])]
    assert skbs[1].tobytes() == after[1]


def test_driver_gro_counts_garbage_in_a_run_and_keeps_the_head():
    head, _ = gso_frame(1000, 2, 1)
    after = (vnet(), seg(1000 + 2 * MSS, b"a" * MSS).tobytes())
    rnd = random.Random(3)
    garbage = [(vnet(), b"\x01" * 5), (VNET_HDR.pack(0, 99, 0, 0, 0, 0), after[1]),
               (vnet(), head[1][:40])] + [(vnet(), rnd.randbytes(rnd.randrange(14, 3000)))
                                          for _ in range(5)]
    skbs, bad, merged = driver_read([head] + garbage + [after], BIG)
    # the bad virtio header and the 5-byte frame are malformed; the rest go up as they came
    assert bad == 2 and merged == 0
    assert skbs[0].tobytes() == head[1] and skbs[-1].tobytes() == after[1]
    assert [s.tobytes() for s in skbs[1:-1]] == [f for _, f in garbage[2:]]


@pytest.mark.parametrize("gro_max_len,room", [(0, BIG), (BIG, 65536)], ids=["off", "no-room"])
def test_driver_gro_merges_nothing_when_off_or_without_room(gro_max_len, room):
    frames = [gso_frame(1000 + i * 20 * MSS, 20, i)[0] for i in range(4)]
    skbs, bad, merged = driver_read(frames, gro_max_len, room)
    assert merged == 0 and [s.tobytes() for s in skbs] == [f for _, f in frames]


# -- differential fuzzing of the TAP reader's GRO --------------------------------------------
def _canonical(skbs):
    """What the stack above can tell from skbs: TCP data segments as (flow and
    header fields, seq, PSH, payload), consecutive ones of a flow that continue
    each other folded into one; anything else as its bytes. The same frames
    read with and without GRO must give the same list."""
    out = []
    for skb in skbs:
        b = skb.tobytes()
        ip = b[14:]
        tot = struct.unpack("!H", ip[2:4])[0] if len(ip) >= 20 else -1
        big = tot == 0 and len(ip) > 65535
        tcp_data = (b[12:14] == b"\x08\x00" and len(ip) >= 40 and ip[0] == 0x45 and ip[9] == 6
                    and (tot == len(ip) or big) and ones_sum(ip[:20]) == 0xFFFF
                    and not ip[6] & 0x3F and not ip[7])
        if tcp_data:
            doff = (ip[32] >> 4) * 4
            flags = ip[33]
            tcp_data = doff >= 20 and 20 + doff < len(ip) and flags & ~PSH == ACK and not ip[32] & 15
        if not tcp_data:
            out.append(("raw", b))
            continue
        if skb.gso_segs:
            assert skb.gso_segs == -(-(len(ip) - 20 - doff) // skb.gso_size)
        vouched = skb.ip_summed != CHECKSUM_NONE
        # TOS, DF, TTL, addresses, ports, ACK, window and options: what GRO must match
        key = (ip[1], ip[6] & 0x40, ip[8], ip[12:20], ip[20:24], ip[28:32], ip[34:36],
               ip[40:20 + doff], vouched)
        seq = struct.unpack("!I", ip[24:28])[0]
        payload = ip[20 + doff:]
        last = out[-1] if out else None
        if last and last[0] == key and (last[1] + len(last[3])) & 0xFFFFFFFF == seq:
            out[-1] = (key, last[1], last[2] | flags & PSH, last[3] + payload)
        else:
            out.append((key, seq, flags & PSH, payload))
    return out


def _fuzz_batch(rnd, seqs):
    """Ten (virtio header, frame) pairs: runs of the kernel's GSO frames and
    single segments over two flows, with gaps, short segments, new
    timestamps, pure ACKs, other verdicts, truncation, flipped header bytes
    and garbage mixed in."""
    frames = []
    for _ in range(10):
        flow = rnd.randrange(2)
        kw = {"sport": 40000 + flow, "flags": ACK | PSH if rnd.random() < 0.5 else ACK,
              "ts": (100 + (rnd.random() < 0.1), 200)}
        what = rnd.random()
        if what < 0.05:
            seqs[flow] += rnd.randrange(1, 5000)
        if what < 0.55:
            nseg = rnd.randrange(1, 46)
            hdr, frame = vnet(MSS), seg(seqs[flow], rnd.randbytes(nseg * MSS), **kw).tobytes()
        else:
            size = MSS if what < 0.8 else rnd.randrange(0, MSS)
            flags = VIRTIO_DATA_VALID if rnd.random() < 0.9 else rnd.choice([0, VIRTIO_NEEDS_CSUM])
            hdr, frame = vnet(flags=flags), seg(seqs[flow], rnd.randbytes(size), **kw).tobytes()
        if rnd.random() < 0.85:
            seqs[flow] += len(frame) - 66
        mangle = rnd.random()
        if mangle < 0.05:
            frame = frame[:rnd.randrange(len(frame))]
        elif mangle < 0.15:
            b = bytearray(hdr + frame)
            for _ in range(rnd.randrange(1, 4)):
                b[rnd.randrange(10 + 66)] = rnd.randrange(256)
            hdr, frame = bytes(b[:10]), bytes(b[10:])
        elif mangle < 0.18:
            frame = rnd.randbytes(rnd.randrange(0, 200))
        frames.append((hdr, frame))
    return frames


@pytest.mark.parametrize("sock", [False, True], ids=["readv", "recvmsg"])
@pytest.mark.parametrize("seed", range(4))
def test_driver_gro_changes_nothing_the_stack_can_see(seed, sock):
    """Random batches read with GRO and without: the same malformed count and
    the same segments, byte for byte, once consecutive ones are folded."""
    rnd = random.Random(seed)
    seqs = [1000, 5000]
    total_merged = 0
    for _ in range(150):
        frames = _fuzz_batch(rnd, seqs)
        plain, plain_bad, plain_merged = driver_read(frames, 0, sock=sock)
        merged, bad, n_merged = driver_read(frames, BIG, sock=sock)
        assert plain_merged == 0 and bad == plain_bad
        assert len(merged) + n_merged == len(plain)
        assert _canonical(merged) == _canonical(plain)
        total_merged += n_merged
    assert total_merged > 100       # the batches did exercise the runs


@pytest.mark.parametrize("gro_max_len", [0, BIG], ids=["gro-off", "gro-on"])
def test_recvmsg_counts_a_frame_longer_than_an_skb_and_reads_on(gro_max_len):
    """An AF_PACKET read (recvmsg) learns that a frame did not fit (MSG_TRUNC):
    it is counted malformed, never handed up cut, and the frames around it
    arrive whole -- in a run or not."""
    first, p1 = gso_frame(1000, 45, 1)
    # not TCP: it would go up as it is, were it not cut
    too_long = (vnet(), MAC[:12] + b"\x88\xb5" + bytes(BIG + 20000))
    last, p3 = gso_frame(1000 + 45 * MSS, 45, 3)
    skbs, bad, merged = driver_read([first, too_long, last], gro_max_len, sock=True)
    assert bad == 1
    assert b"".join(big_parse(skb)[3] for skb in skbs) == p1 + p3
    assert len(skbs) + merged == 2 and merged == (1 if gro_max_len else 0)
