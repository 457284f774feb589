"""Test helpers for the wire formats: walk a frame through every layer, and
write every layer's header back over a copy of it."""
import os

from pynet.pcapfile import read_pcap
from pynet.wire import (ArpPacket, ArpRepr, EthernetPacket, EthernetRepr, IcmpPacket, IcmpRepr,
                        Ipv4Packet, Ipv4Repr, TcpPacket, TcpRepr, UdpPacket, UdpRepr)
from pynet.wire.ethernet import ETH_P_ARP, ETH_P_IP
from pynet.wire.ipv4 import IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP

CAPTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "captures")


def frames(name):
    """The frames of tests/captures/<name>, as bytes."""
    return [f for _, f in read_pcap(os.path.join(CAPTURES, name))]


def all_frames():
    return [(name, i, f) for name in sorted(os.listdir(CAPTURES)) if name.endswith(".pcap")
            for i, f in enumerate(frames(name))]


def dissect(frame, verify=True):
    """[(offset, length, repr), ...] for each layer of an Ethernet frame: Ethernet, then ARP or
    IPv4 and (unless it is a fragment) TCP, UDP or ICMP. Checksums verified when verify.
    Raises WireError on anything malformed."""
    eth = EthernetPacket(frame)
    out = [(0, eth.header_len, EthernetRepr.parse(eth))]
    off = eth.header_len
    if eth.ethertype == ETH_P_ARP:
        out.append((off, ArpRepr.header_len, ArpRepr.parse(ArpPacket(eth.payload))))
    elif eth.ethertype == ETH_P_IP:
        ip = Ipv4Packet(eth.payload)
        ipr = Ipv4Repr.parse(ip, verify_checksum=verify)
        out.append((off, ip.header_len, ipr))
        if ip.is_fragment:
            return out
        off += ip.header_len
        seg = ip.payload
        addrs = (ip.saddr, ip.daddr) if verify else (None, None)
        if ip.protocol == IPPROTO_TCP:
            out.append((off, len(seg), TcpRepr.parse(TcpPacket(seg), *addrs)))
        elif ip.protocol == IPPROTO_UDP:
            out.append((off, len(seg), UdpRepr.parse(UdpPacket(seg), *addrs)))
        elif ip.protocol == IPPROTO_ICMP:
            out.append((off, len(seg), IcmpRepr.parse(IcmpPacket(seg), verify_checksum=verify)))
    return out


def reemit(frame, layers):
    """A copy of frame with each layer's header zeroed and then emitted from its repr
    (the ICMP message whole, quote included), checksums recomputed."""
    buf = bytearray(frame)
    mv = memoryview(buf)
    ip = None
    for off, length, r in layers:
        if isinstance(r, IcmpRepr):
            mv[off:off + length] = bytes(length)
            r.emit(mv[off:off + length])
            continue
        hl = r.header_len
        mv[off:off + hl] = bytes(hl)
        if isinstance(r, Ipv4Repr):
            ip = r
            r.emit(mv[off:])
        elif isinstance(r, (TcpRepr, UdpRepr)):
            r.emit(mv[off:off + length], ip.saddr, ip.daddr)
        else:
            r.emit(mv[off:])
    return bytes(buf)
