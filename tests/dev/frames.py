"""Plain-bytes frames for the device tests and benchmarks (ARP, RFC 826; IPv4
and UDP with RFC 1071 checksums from tests/oracle.py), independent of
pynet.wire and pynet.checksum so they can check those."""
import socket
import struct

from oracle import ones_sum
from pynet.skbuff import SKB, SKB_GSO_TCPV4 as _SKB_GSO_TCPV4, SKB_GSO_UDP_L4

ETH_P_ARP = 0x0806
BROADCAST = b"\xff" * 6


def arp_request(src_mac, src_ip, target_ip):
    """An Ethernet frame asking who has target_ip (dotted strings)."""
    return (BROADCAST + src_mac + struct.pack("!H", ETH_P_ARP)
            + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
            + src_mac + socket.inet_aton(src_ip) + b"\x00" * 6 + socket.inet_aton(target_ip))


def ipv4_header(tos, total_len, proto, src, dst, ident=0, flags_frag=0x4000):
    """A 20-byte IPv4 header with a valid checksum (src/dst: 4 bytes)."""
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, tos, total_len, ident, flags_frag, 64, proto, 0, src, dst)
    return ip[:10] + struct.pack("!H", 0xFFFF - ones_sum(ip)) + ip[12:]


def udp_frame(dev, peer, dport, payload, *, partial=False, gso_size=0):
    """A UDP datagram from pynet (peer.pynet_addr(), port 5555) to the kernel
    of a pynet.netns KernelPeer, in an Ethernet frame on dev. partial=True
    leaves the pseudo-header sum for the device; gso_size makes it a UDP GSO
    skb (partial as well)."""
    src, dst = socket.inet_aton(peer.pynet_addr()), socket.inet_aton(peer.kernel_addr)
    ulen = 8 + len(payload)
    partial = partial or bool(gso_size)
    if partial:
        check = ones_sum(src + dst + struct.pack("!HH", 17, ulen))
    else:
        check = 0xFFFF - ones_sum(src + dst + struct.pack("!HHHHHH", 17, ulen, 5555, dport, ulen, 0)
                                  + payload) or 0xFFFF
    skb = SKB.from_bytes(peer.kernel_hwaddr + dev.hwaddr + b"\x08\x00"
                         + ipv4_header(0, 20 + ulen, 17, src, dst)
                         + struct.pack("!HHHH", 5555, dport, ulen, check) + payload)
    if partial:
        skb.set_partial(skb.data_offset + 34, 6)
    if gso_size:
        skb.gso_size, skb.gso_type = gso_size, SKB_GSO_UDP_L4
    skb.dev = dev
    return skb


def tcp_gso_frame(dev, payload, mss, src=bytes([198, 18, 0, 2]), dst=bytes([198, 18, 0, 1]),
                  dst_mac=b"\x02" * 6, dport=80):
    """A TCP super-segment as the stack hands it down: CHECKSUM_PARTIAL, the
    pseudo-header sum (not inverted) in the checksum field, gso_size = mss."""
    tlen = 20 + len(payload)
    pseudo = ones_sum(src + dst + struct.pack("!HH", 6, tlen))
    tcp = struct.pack("!HHIIBBHHH", 40000, dport, 1000, 1, 5 << 4, 0x18, 65535, pseudo, 0)
    skb = SKB.from_bytes(dst_mac + dev.hwaddr + b"\x08\x00"
                         + ipv4_header(0, 20 + tlen, 6, src, dst) + tcp + payload, headroom=32)
    skb.set_partial(skb.data_offset + 34, 16)
    skb.network_header = skb.data_offset + 14
    skb.transport_header = skb.data_offset + 34
    skb.gso_size, skb.gso_type = (mss, _SKB_GSO_TCPV4) if mss else (0, 0)
    skb.protocol = 0x0800
    skb.dev = dev
    return skb
