"""Plain-bytes ARP (RFC 826) for the device tests, independent of pynet.wire."""
import socket
import struct

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
