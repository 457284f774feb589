"""Plain-bytes frames for the device tests (ARP, RFC 826; IPv4 checksums, RFC 1071),
independent of pynet.wire and pynet.checksum so they can check those."""
import socket
import struct

from pynet.skbuff import SKB, SKB_GSO_TCPV4 as _SKB_GSO_TCPV4

ETH_P_ARP = 0x0806
BROADCAST = b"\xff" * 6


def arp_request(src_mac, src_ip, target_ip):
    """An Ethernet frame asking who has target_ip (dotted strings)."""
    return (BROADCAST + src_mac + struct.pack("!H", ETH_P_ARP)
            + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
            + src_mac + socket.inet_aton(src_ip) + b"\x00" * 6 + socket.inet_aton(target_ip))


def parse_arp_reply(frame):
    """(sender_mac, sender_ip, target_mac, target_ip) of an ARP reply frame, or None."""
    frame = bytes(frame)
    if len(frame) < 42 or struct.unpack("!H", frame[12:14])[0] != ETH_P_ARP:
        return None
    htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", frame[14:22])
    if (htype, ptype, hlen, plen, op) != (1, 0x0800, 6, 4, 2):
        return None
    return (frame[22:28], socket.inet_ntoa(frame[28:32]), frame[32:38], socket.inet_ntoa(frame[38:42]))


def ones_sum(b):
    """RFC 1071 ones'-complement sum of b, folded to 16 bits."""
    b = bytes(b)
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def ipv4_header(tos, total_len, proto, src, dst, ident=0, flags_frag=0x4000):
    """A 20-byte IPv4 header with a valid checksum (src/dst: 4 bytes)."""
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, tos, total_len, ident, flags_frag, 64, proto, 0, src, dst)
    return ip[:10] + struct.pack("!H", 0xFFFF - ones_sum(ip)) + ip[12:]


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
