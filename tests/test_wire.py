"""Wire formats against frames the Linux kernel sent (tests/captures, made by
make_captures.py): deconstruct, construct, parse, emit, overlong, truncated —
the shape of smoltcp's src/wire tests."""
import io

import pytest
from wirekit import all_frames, dissect, frames, reemit

from pynet.pcapfile import PcapError, PcapWriterFile, read_pcap
from pynet.wire import (ArpPacket, ArpRepr, EthernetPacket, EthernetRepr, IcmpPacket, IcmpRepr,
                        Ipv4Packet, Ipv4Repr, TcpPacket, TcpRepr, UdpPacket, UdpRepr, WireError)
from pynet.wire import ethernet, icmp, ipv4, tcp
from pynet.wire.arp import ARPOP_REPLY, ARPOP_REQUEST
from pynet.wire.ethernet import (BROADCAST, ETH_P_8021Q, ETH_P_ARP, mac_aton,
                                 mac_ntoa)
from pynet.wire.ipv4 import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, ip_aton, ip_ntoa
from pynet.wire.tcp import (TCPHDR_ACK, TCPHDR_FIN, TCPHDR_PSH, TCPHDR_SYN, flags_str,
                            iter_options)

A, R, B = ip_aton("198.18.1.2"), ip_aton("198.18.1.1"), ip_aton("198.18.2.2")
ALL = all_frames()


def layer(frame, cls):
    return next(r for _, _, r in dissect(frame) if isinstance(r, cls))


def ip_payload(frame):
    return Ipv4Packet(EthernetPacket(frame).payload).payload


# -- every captured frame: parse and re-emit byte for byte ------------------------------

@pytest.mark.parametrize("name,i,frame", ALL, ids=[f"{n}-{i}" for n, i, _ in ALL])
def test_golden_reemit(name, i, frame):
    layers = dissect(frame)
    assert reemit(frame, layers) == frame


@pytest.mark.parametrize("name,i,frame", ALL, ids=[f"{n}-{i}" for n, i, _ in ALL])
def test_golden_truncated(name, i, frame):
    """Every cut of a frame that loses bytes a header claims is a WireError."""
    for cut in range(len(frame)):
        with pytest.raises(WireError):
            dissect(frame[:cut])


@pytest.mark.parametrize("name,i,frame", ALL, ids=[f"{n}-{i}" for n, i, _ in ALL])
def test_golden_overlong(name, i, frame):
    """Trailing bytes (Ethernet padding) change nothing a header describes."""
    long = frame + b"\xa5" * 23
    assert [r for _, _, r in dissect(long)] == [r for _, _, r in dissect(frame)]


IP_FRAMES = [(n, i, f) for n, i, f in ALL if f[12:14] == b"\x08\x00"]


@pytest.mark.parametrize("name,i,frame", IP_FRAMES, ids=[f"{n}-{i}" for n, i, _ in IP_FRAMES])
def test_golden_corrupt_checksum(name, i, frame):
    """A flipped bit in the last byte is caught by the IP, TCP, UDP or ICMP checksum."""
    layers = dissect(frame)
    off, length, _ = layers[-1]
    bad = bytearray(frame)
    bad[off + length - 1] ^= 0x10
    with pytest.raises(WireError, match="checksum"):
        dissect(bytes(bad))


# -- ethernet / ARP ------------------------------------------------------------------------

def test_arp_exchange():
    req, rep = frames("arp_icmp.pcap")[:2]
    e = EthernetPacket(req)
    assert (e.dst, e.ethertype, e.header_len, e.tagged) == (BROADCAST, ETH_P_ARP, 14, False)
    q = ArpRepr.parse(ArpPacket(e.payload))
    assert (q.op, q.sip, q.tip, q.sha, q.tha) == (ARPOP_REQUEST, A, R, e.src, bytes(6))
    r = ArpRepr.parse(ArpPacket(EthernetPacket(rep).payload))
    assert (r.op, r.sip, r.tip, r.tha) == (ARPOP_REPLY, R, A, q.sha)
    assert EthernetPacket(rep).src == r.sha and EthernetPacket(rep).dst == q.sha
    # construct the reply from values and get the kernel's bytes
    buf = bytearray(len(rep))
    EthernetRepr(src=r.sha, dst=q.sha, ethertype=ETH_P_ARP).emit(buf)
    ArpRepr(ARPOP_REPLY, r.sha, R, q.sha, A).emit(memoryview(buf)[14:])
    assert bytes(buf) == rep


def test_arp_other_hardware_is_unsupported():
    buf = bytearray(EthernetPacket(frames("arp_icmp.pcap")[0]).payload)
    ArpPacket(buf).hrd = 6
    with pytest.raises(WireError, match="unsupported"):
        ArpRepr.parse(ArpPacket(buf))


def test_vlan_tag_read_and_written():
    plain = frames("arp_icmp.pcap")[0]
    tagged = plain[:12] + bytes.fromhex("8100a00a") + plain[12:]     # PCP 5, VID 10
    e = EthernetPacket(tagged)
    assert (e.type, e.tagged, e.vlan_id, e.tci, e.ethertype, e.header_len) == \
        (ETH_P_8021Q, True, 10, 0xA00A, ETH_P_ARP, 18)
    assert bytes(e.payload) == bytes(EthernetPacket(plain).payload)
    r = EthernetRepr.parse(e)
    assert r.vlan_tci == 0xA00A and r.header_len == 18
    buf = bytearray(tagged)
    buf[:18] = bytes(18)
    r.emit(buf)
    assert bytes(buf) == tagged
    with pytest.raises(WireError):
        EthernetPacket(tagged[:17])


def test_mac_and_ip_text():
    assert mac_aton("02:00:0a:FF:00:01") == bytes([2, 0, 10, 255, 0, 1])
    assert mac_ntoa(bytes([2, 0, 10, 255, 0, 1])) == "02:00:0a:ff:00:01"
    for bad in ("02:00:0a:ff:00", "02:00:0a:ff:00:0g", "02:00:0a:ff:00:001", ""):
        with pytest.raises(ValueError):
            mac_aton(bad)
    assert ip_aton("198.18.1.2") == 0xC6120102 and ip_ntoa(0xC6120102) == "198.18.1.2"
    for bad in ("198.18.1", "198.18.1.256", "1", "::1"):
        with pytest.raises(ValueError):
            ip_aton(bad)
    with pytest.raises(ValueError):
        ip_ntoa(1 << 32)
    assert ethernet.is_multicast(BROADCAST) and not ethernet.is_multicast(mac_aton("02:00:00:00:00:01"))


# -- IPv4 ------------------------------------------------------------------------------------

def test_ipv4_deconstruct_echo_request():
    f = frames("arp_icmp.pcap")[2]
    p = Ipv4Packet(EthernetPacket(f).payload)
    assert (p.version, p.ihl, p.header_len, p.tot_len, p.ttl, p.protocol) == (4, 5, 20, 45, 64, IPPROTO_ICMP)
    assert (p.saddr, p.daddr, p.df, p.mf, p.frag_offset, p.is_fragment) == (A, R, True, False, 0, False)
    assert p.verify_checksum() and p.options == b""
    assert len(p.payload) == 25


def test_ipv4_construct_matches_kernel():
    f = frames("arp_icmp.pcap")[2]
    p = Ipv4Packet(EthernetPacket(f).payload)
    r = Ipv4Repr(saddr=A, daddr=R, protocol=IPPROTO_ICMP, payload_len=25, ttl=64, id=p.id, df=True)
    buf = bytearray(20)
    r.emit(buf)
    assert bytes(buf) == bytes(p.buf[:20])


def test_ipv4_fragments_reassemble_to_the_udp_datagram():
    frags = [Ipv4Packet(EthernetPacket(f).payload) for f in frames("udp_frag.pcap")[:4]]
    assert len({p.id for p in frags}) == 1
    assert [p.mf for p in frags] == [True, True, True, False]
    assert all(p.frag_offset % 8 == 0 and p.is_fragment for p in frags)
    whole = bytearray()
    for p in sorted(frags, key=lambda p: p.frag_offset):
        assert p.frag_offset == len(whole)
        whole += p.payload
    u = UdpPacket(whole)
    assert u.verify_checksum(A, B)
    r = UdpRepr.parse(u, A, B)
    assert (r.dest, r.payload_len) == (9, 4000)
    assert bytes(u.payload) == bytes(i & 0xFF for i in range(4000))


def test_ipv4_options_pass_through():
    r = Ipv4Repr(A, B, IPPROTO_UDP, 8, options=bytes.fromhex("94040000"))   # router alert
    buf = bytearray(r.header_len + 8)
    r.emit(buf)
    p = Ipv4Packet(buf)
    assert (p.ihl, p.options, p.verify_checksum()) == (6, bytes.fromhex("94040000"), True)
    assert Ipv4Repr.parse(p) == r
    with pytest.raises(WireError):
        Ipv4Repr(A, B, IPPROTO_UDP, 0, options=b"\x01\x01\x01").emit(bytearray(60))
    with pytest.raises(WireError):
        Ipv4Repr(A, B, IPPROTO_UDP, 0xFFFF).emit(bytearray(60))


@pytest.mark.parametrize("mutate,match", [
    (lambda b: b.__setitem__(0, 0x65), "version"),
    (lambda b: b.__setitem__(0, 0x44), "ihl"),
    (lambda b: b.__setitem__(0, 0x4F), "options"),
    (lambda b: b.__setitem__(slice(2, 4), (19).to_bytes(2, "big")), "tot_len"),
    (lambda b: b.__setitem__(slice(2, 4), (999).to_bytes(2, "big")), "tot_len"),
])
def test_ipv4_malformed(mutate, match):
    buf = bytearray(EthernetPacket(frames("arp_icmp.pcap")[2]).payload)
    mutate(buf)
    with pytest.raises(WireError, match=match):
        Ipv4Packet(buf)


def test_views_write_in_place():
    buf = bytearray(EthernetPacket(frames("arp_icmp.pcap")[2]).payload)
    p = Ipv4Packet(buf)
    p.ttl = 1
    p.df = False
    p.frag_offset = 1480
    p.mf = True
    assert (buf[8], p.frag_off) == (1, ipv4.IP_MF | 185)
    assert not p.verify_checksum()
    p.fill_checksum()
    assert p.verify_checksum()
    with pytest.raises(WireError):
        p.ttl = 256
    with pytest.raises(WireError):
        p.frag_offset = 3
    with pytest.raises(TypeError):
        Ipv4Packet(bytes(buf)).ttl = 2     # a read-only buffer stays read-only


# -- ICMP --------------------------------------------------------------------------------------

def test_icmp_echo():
    req, rep = (layer(f, IcmpRepr) for f in frames("arp_icmp.pcap")[2:4])
    assert (req.type, rep.type) == (icmp.ICMP_ECHO, icmp.ICMP_ECHOREPLY)
    assert (req.id, req.seq, req.data) == (rep.id, 1, b"pynet golden ping")
    assert rep.data == req.data
    buf = bytearray(req.header_len)
    req.emit(buf)
    assert bytes(buf) == bytes(ip_payload(frames("arp_icmp.pcap")[2]))


def test_icmp_time_exceeded_quotes_the_echo():
    sent, err = frames("icmp_errors.pcap")[:2]
    r = layer(err, IcmpRepr)
    assert (r.type, r.code) == (icmp.ICMP_TIME_EXCEEDED, icmp.ICMP_EXC_TTL)
    assert layer(err, Ipv4Repr).saddr == R
    q = layer(sent, Ipv4Repr)
    assert r.header == Ipv4Repr(**{**q.__dict__, "ttl": 1})
    assert r.data == bytes(ip_payload(sent))


def test_icmp_frag_needed_carries_the_next_hop_mtu():
    sent, err = frames("icmp_errors.pcap")[2:4]
    p = IcmpPacket(ip_payload(err))
    r = IcmpRepr.parse(p)
    assert (r.type, r.code, r.mtu, p.mtu) == (icmp.ICMP_DEST_UNREACH, icmp.ICMP_FRAG_NEEDED, 1280, 1280)
    assert r.header.protocol == IPPROTO_UDP and r.header.df and r.header.payload_len == 1408
    # Linux quotes up to 576 bytes of ICMP datagram: the quote is cut, the header says 1428
    assert 0 < len(r.data) < 1408 and r.data == bytes(ip_payload(sent))[:len(r.data)]
    assert UdpPacket.unchecked(r.data).dest == 9


def test_icmp_port_unreachable_of_a_fragmented_datagram():
    err = frames("udp_frag.pcap")[4]
    r = layer(err, IcmpRepr)
    assert (r.type, r.code) == (icmp.ICMP_DEST_UNREACH, icmp.ICMP_PORT_UNREACH)
    assert (r.header.payload_len, r.header.saddr, r.header.daddr, r.mtu) == (4008, A, B, 0)
    with pytest.raises(WireError):
        Ipv4Packet(ip_payload(err)[8:])          # the quote is cut short: only .quoted() takes it


def test_icmp_unsupported_type_and_short():
    with pytest.raises(WireError, match="unsupported"):
        IcmpRepr.parse(IcmpPacket(bytes([13, 0, 0xF2, 0xFF, 0, 0, 0, 0])))    # timestamp
    with pytest.raises(WireError):
        IcmpPacket(bytes(7))


# -- UDP ---------------------------------------------------------------------------------------

def test_udp_deconstruct_construct():
    f = frames("icmp_errors.pcap")[4]
    u = UdpPacket(ip_payload(f))
    assert (u.dest, u.len, len(u.payload)) == (9, 108, 100)
    r = UdpRepr.parse(u, A, B)
    payload = bytes(u.payload)
    hdr = bytearray(8)
    r.emit(hdr, A, B, payload=payload)
    assert bytes(hdr) == bytes(u.buf[:8])
    whole = bytearray(8) + payload
    r.emit(whole, A, B)
    assert bytes(whole) == bytes(u.buf)


def test_udp_checksum_rules():
    r = UdpRepr(1000, 2000, 3)
    buf = bytearray(11)
    buf[8:] = b"abc"
    r.emit(buf)                       # no addresses: no checksum (RFC 768)
    assert UdpPacket(buf).check == 0 and UdpPacket(buf).verify_checksum(A, B)
    r.emit(buf, A, B, partial=True)
    p = UdpPacket(buf)
    assert p.check == ipv4.l4_partial_check(A, B, IPPROTO_UDP, 11)
    p.fill_checksum(A, B)
    assert p.verify_checksum(A, B) and p.check != 0
    with pytest.raises(WireError):
        UdpPacket(buf[:10])           # len says 11
    with pytest.raises(WireError):
        UdpPacket(bytes.fromhex("0001000200070000"))   # len 7 < 8


def test_udp_zero_sum_goes_out_as_all_ones():
    hdr = bytearray(10)
    UdpRepr(7, 7, 2).emit(hdr)
    # the payload word that makes the whole sum 0xffff, so the checksum computes to 0
    hdr[8:] = ipv4.l4_checksum(A, B, IPPROTO_UDP, hdr).to_bytes(2, "big")
    assert ipv4.l4_checksum(A, B, IPPROTO_UDP, hdr) == 0
    UdpRepr(7, 7, 2).emit(hdr, A, B)
    assert UdpPacket(hdr).check == 0xFFFF          # RFC 768: a computed 0 is sent as all ones
    assert UdpPacket(hdr).verify_checksum(A, B)


# -- TCP ---------------------------------------------------------------------------------------

def tcp_frames(name="tcp.pcap"):
    return [(TcpPacket(ip_payload(f)), layer(f, TcpRepr)) for f in frames(name)]


def test_tcp_handshake_options():
    (syn_p, syn), (sa_p, synack), (ack_p, ack) = tcp_frames()[:3]
    assert syn.flags == TCPHDR_SYN and flags_str(synack.flags) == "SYN|ACK"
    # MSS 1240: A learned the 1280-byte path MTU from icmp_errors.pcap's "fragmentation needed"
    assert (syn.mss, syn.sack_perm, syn.timestamp[1]) == (1240, True, 0)
    assert syn.wscale is not None and syn.fastopen is None and syn.unknown == ()
    assert synack.ack_seq == syn.seq + 1 and synack.timestamp[1] == syn.timestamp[0]
    assert (synack.mss, synack.sack_perm) == (1240, True) and synack.wscale is not None
    assert ack.ack_seq == synack.seq + 1 and ack.flags == TCPHDR_ACK
    assert ack.mss is None and ack.timestamp is not None and ack.sack == ()
    assert (syn_p.header_len, ack_p.header_len, syn_p.syn, syn_p.ack) == (40, 32, True, False)
    assert syn_p.segment_len == 1 and ack_p.segment_len == 0
    # SYN option bytes exactly as Linux lays them out
    assert bytes(syn_p.options[:4]) == bytes.fromhex("020404d8") and \
        bytes(syn_p.options[4:8]) == bytes.fromhex("0402080a") and \
        bytes(syn_p.options[16:19]) == bytes.fromhex("010303")


def test_tcp_data_and_fin():
    segs = tcp_frames()
    data = [(p, r) for p, r in segs if len(p.payload)]
    assert bytes(data[0][0].payload) == b"pynet golden data segment"
    assert data[0][1].flags == TCPHDR_PSH | TCPHDR_ACK
    assert bytes(data[1][0].payload).startswith(b"pynet golden reply: ")
    fins = [p for p, r in segs if r.flags & TCPHDR_FIN]
    assert len(fins) == 2 and all(p.segment_len == 1 for p in fins)


def test_tcp_construct_data_segment():
    f = frames("tcp.pcap")[3]
    p = TcpPacket(ip_payload(f))
    r = TcpRepr.parse(p, A, B)
    hdr = bytearray(r.header_len)
    r.emit(hdr, A, B, payload=bytes(p.payload))
    assert bytes(hdr) == bytes(p.buf[:32])
    r.emit(hdr, A, B, payload=bytes(p.payload), partial=True)
    assert TcpPacket(hdr).check == ipv4.l4_partial_check(A, B, IPPROTO_TCP, len(p.buf))


def test_tcp_fastopen_cookie_and_sack_block():
    segs = tcp_frames("tcp_fastopen.pcap")
    syns = [r for p, r in segs if r.flags == TCPHDR_SYN]
    assert syns[0].fastopen == b"" and not syns[0].fastopen_exp          # cookie request
    cookie = next(r.fastopen for p, r in segs if r.flags == TCPHDR_SYN | TCPHDR_ACK and r.fastopen)
    assert len(cookie) == 8
    assert syns[1].fastopen == cookie                                     # SYN with data
    syn_data = next(p for p, r in segs if r is syns[1])
    assert bytes(syn_data.payload) == b"pynet golden data segment"
    assert syn_data.segment_len == 1 + 25
    sacked = [r for p, r in segs if r.sack]
    assert len(sacked) == 1 and len(sacked[0].sack) == 1
    start, end = sacked[0].sack[0]
    assert end - start == 1                   # the FIN that came twice: a D-SACK (RFC 2883)


def test_tcp_experimental_fastopen_and_unknown_options_round_trip():
    r = TcpRepr(1, 2, 3, 4, TCPHDR_SYN, 5, mss=1460, fastopen=bytes(range(8)), fastopen_exp=True,
                unknown=((30, b"\x01\x02"),))
    buf = bytearray(r.header_len)
    r.emit(buf, A, B)
    opts = bytes(TcpPacket(buf).options)
    assert opts[4:8] == bytes.fromhex("fe0cf989") and opts[16:20] == bytes.fromhex("1e040102")
    assert TcpRepr.parse(TcpPacket(buf), A, B) == r
    # kind 254 without the Fast Open magic is an unknown option, kept
    other = TcpRepr(1, 2, 3, 4, TCPHDR_ACK, 5, unknown=((254, b"\x12\x34\x56\x78"),))
    buf = bytearray(other.header_len)
    other.emit(buf, A, B)
    assert TcpRepr.parse(TcpPacket(buf)).unknown == ((254, b"\x12\x34\x56\x78"),)
    # a cookie request: kind 34, length 2, NOPs to the next word (as the kernel's SYN above)
    req = TcpRepr(1, 2, 3, 4, TCPHDR_SYN, 5, fastopen=b"")
    assert req.options_bytes() == bytes.fromhex("22020101")


def test_tcp_sack_blocks_round_trip():
    r = TcpRepr(1, 2, 3, 4, TCPHDR_ACK, 5, timestamp=(7, 8), sack=((10, 20), (30, 40), (50, 60)))
    assert r.header_len == 20 + 12 + 4 + 24
    buf = bytearray(r.header_len)
    r.emit(buf, A, B)
    assert TcpRepr.parse(TcpPacket(buf), A, B) == r
    with pytest.raises(WireError):
        TcpRepr(1, 2, 3, 4, TCPHDR_ACK, 5, timestamp=(7, 8),
                sack=((1, 2),) * 4).options_bytes()      # 44 bytes of options
    with pytest.raises(WireError):
        TcpRepr(1, 2, 3, 4, TCPHDR_SYN, 5, fastopen=b"ab").options_bytes()


@pytest.mark.parametrize("opts,match", [
    ("01010102", "no length byte"),             # MSS kind in the header's last byte
    ("0200", "length 0"),
    ("0201000000000000", "length 1"),
    ("0205000000000000", "need 4"),             # MSS of length 5
    ("03020000", "need 3"),                     # window scale of length 2
    ("04030000", "need 2"),                     # SACK-permitted with a byte
    ("080900000000000000000000", "need 10"),
    ("050b0000000000000000000000000000", "SACK"),   # 9 bytes of blocks
    ("0502", "SACK"),
    ("22040000", "cookie"),                     # Fast Open cookie of 2 bytes
    ("fe04f98900000000", None),                 # experimental, empty cookie: a request
    ("1e0c000000", "length 12"),                # runs past the header
])
def test_tcp_malformed_options(opts, match):
    raw = bytes.fromhex(opts)
    raw += bytes(-len(raw) % 4)
    hdr = bytearray(20) + raw
    TcpPacket.unchecked(hdr).doff = len(hdr) // 4
    if match is None:
        assert TcpRepr.parse(TcpPacket(hdr)).fastopen == b""
        return
    with pytest.raises(WireError, match=match):
        TcpRepr.parse(TcpPacket(hdr))


def test_tcp_options_stop_at_eol():
    assert list(iter_options(bytes.fromhex("01010000ffff"))) == []
    assert list(iter_options(bytes.fromhex("020405b400"))) == [(2, bytes.fromhex("05b4"))]


def test_tcp_bad_doff():
    hdr = bytearray(frames("tcp.pcap")[2][34:])
    TcpPacket.unchecked(hdr).doff = 4
    with pytest.raises(WireError, match="doff"):
        TcpPacket(hdr)
    TcpPacket.unchecked(hdr).doff = 15
    with pytest.raises(WireError):
        TcpPacket(hdr)


def test_tcp_flag_properties_write_in_place():
    hdr = bytearray(20)
    p = TcpPacket.unchecked(hdr)
    p.doff = 5
    p.syn = True
    p.ece = True
    assert p.flags == tcp.TCPHDR_SYN | tcp.TCPHDR_ECE and p.doff == 5
    p.flags = TCPHDR_ACK
    assert (p.syn, p.ack, p.doff) == (False, True, 5)


# -- pcap files ---------------------------------------------------------------------------------

def test_pcap_write_read(tmp_path):
    fs = frames("arp_icmp.pcap")
    path = tmp_path / "x.pcap"
    with PcapWriterFile(path) as w:
        for i, f in enumerate(fs):
            w.write(f, ts=1000 + i / 4)
    assert list(read_pcap(path)) == [(1000 + i / 4, f) for i, f in enumerate(fs)]
    bio = io.BytesIO()
    w = PcapWriterFile(bio, snaplen=30)
    w.write(fs[2], ts=1.5)
    w.close()
    (tmp_path / "y.pcap").write_bytes(bio.getvalue())
    assert list(read_pcap(tmp_path / "y.pcap")) == [(1.5, fs[2][:30])]


def test_pcap_rejects_garbage(tmp_path):
    (tmp_path / "bad.pcap").write_bytes(b"\x00" * 40)
    with pytest.raises(PcapError, match="magic"):
        list(read_pcap(tmp_path / "bad.pcap"))
    good = (tmp_path / "good.pcap")
    with PcapWriterFile(good) as w:
        w.write(b"abcdef" * 10, ts=1)
    good.write_bytes(good.read_bytes()[:-3])
    with pytest.raises(PcapError, match="truncated"):
        list(read_pcap(good))
