"""Plain-Python references for the C kernels: the Internet checksum, TCP/IPv4
GSO segmentation and IPv4 fragmentation.

Written to be obviously right, not fast: the tests compare pynet's C with
these, and the benchmarks show the ratio. Packets are bytes starting at the
IPv4 header; addresses are ints in host order.
"""
import struct


# -- the Internet checksum (RFC 1071) ----------------------------------------------
def ones_sum(data, start=0):
    """The ones'-complement sum of data's big-endian 16-bit words (a lone last
    byte padded with zero) plus start, folded to 16 bits, not inverted."""
    if len(data) % 2:
        data = bytes(data) + b"\0"
    total = start
    for i in range(0, len(data), 2):
        total += data[i] << 8 | data[i + 1]
    while total > 0xffff:
        total = (total & 0xffff) + (total >> 16)
    return total


def checksum(data, start=0):
    """The checksum field value: the inverted ones'-complement sum."""
    return ~ones_sum(data, start) & 0xffff


def pseudo_header(saddr, daddr, proto, length):
    """The IPv4 pseudo-header that TCP and UDP checksums cover (RFC 793 3.1)."""
    return struct.pack("!IIBBH", saddr, daddr, 0, proto, length)


def transport_checksum(saddr, daddr, proto, segment):
    """The TCP/UDP checksum of segment (its checksum field must be zero)."""
    return checksum(pseudo_header(saddr, daddr, proto, len(segment)) + bytes(segment))


# -- IPv4 header fields ----------------------------------------------------------------
def ihl(pkt):
    return (pkt[0] & 0x0f) * 4


def with_ip_checksum(header):
    """header with its checksum field recomputed."""
    header = bytearray(header)
    header[10:12] = b"\0\0"
    header[10:12] = struct.pack("!H", checksum(header))
    return bytes(header)


def ip_fields(pkt):
    ver_ihl, tos, tot_len, ident, frag, ttl, proto, check, saddr, daddr = \
        struct.unpack("!BBHHHBBHII", pkt[:20])
    return dict(tot_len=tot_len, id=ident, df=bool(frag & 0x4000), mf=bool(frag & 0x2000),
                frag_offset=(frag & 0x1fff) * 8, proto=proto, saddr=saddr, daddr=daddr)


# -- GSO (Linux's tcp_gso_segment, __udp_gso_segment) ------------------------------
TCP_FIN, TCP_PSH, TCP_CWR = 0x01, 0x08, 0x80


def gso_segment(pkt, gso_size):
    """Split a TCP or UDP over IPv4 packet into segments of gso_size payload
    bytes, each a complete packet with every checksum filled in."""
    hl = ihl(pkt)
    proto = pkt[9]
    iph, l4 = bytes(pkt[:hl]), bytes(pkt[hl:])
    ip_id = struct.unpack("!H", iph[4:6])[0]
    saddr, daddr = struct.unpack("!II", iph[12:20])
    thl = (l4[12] >> 4) * 4 if proto == 6 else 8
    th, payload = l4[:thl], l4[thl:]
    chunks = [payload[i:i + gso_size] for i in range(0, len(payload), gso_size)] or [b""]
    out = []
    for n, chunk in enumerate(chunks):
        last = n == len(chunks) - 1
        h = bytearray(th)
        if proto == 6:
            seq = (struct.unpack("!I", th[4:8])[0] + n * gso_size) % 2**32
            h[4:8] = struct.pack("!I", seq)
            if not last:
                h[13] &= ~(TCP_FIN | TCP_PSH)
            if n > 0:
                h[13] &= ~TCP_CWR
            h[16:18] = b"\0\0"
            h[16:18] = struct.pack("!H", transport_checksum(saddr, daddr, 6, bytes(h) + chunk))
        else:
            h[4:6] = struct.pack("!H", thl + len(chunk))
            h[6:8] = b"\0\0"
            check = transport_checksum(saddr, daddr, 17, bytes(h) + chunk)
            h[6:8] = struct.pack("!H", check or 0xffff)   # RFC 768: 0 means none
        ip = bytearray(iph)
        ip[2:4] = struct.pack("!H", hl + len(h) + len(chunk))
        ip[4:6] = struct.pack("!H", (ip_id + n) % 2**16)
        out.append(with_ip_checksum(ip) + bytes(h) + chunk)
    return out


# -- IPv4 fragmentation (RFC 791 section 3.2, "An Example Fragmentation Procedure") --
def copied_options(options):
    """The options that RFC 791 copies into every fragment (copy bit set),
    padded with EOL to a multiple of 4 bytes."""
    kept = b""
    i = 0
    while i < len(options):
        kind = options[i]
        if kind == 0:           # end of option list
            break
        if kind == 1:           # no-operation (not copied)
            i += 1
            continue
        length = options[i + 1]
        if kind & 0x80:
            kept += bytes(options[i:i + length])
        i += length
    return kept + b"\0" * (-len(kept) % 4)


def fragment(pkt, mtu):
    """Split an IPv4 datagram into fragments of at most mtu bytes."""
    if len(pkt) <= mtu:
        return [bytes(pkt)]
    hl = ihl(pkt)
    header, data = bytes(pkt[:hl]), bytes(pkt[hl:])
    frag = struct.unpack("!H", header[6:8])[0]
    base, more = frag & 0x1fff, frag & 0x2000
    later_header = header[:20] + copied_options(header[20:])
    later_header = bytes([0x40 | len(later_header) // 4]) + later_header[1:]
    out = []
    offset = 0
    while offset < len(data):
        h = header if offset == 0 else later_header
        room = (mtu - len(h)) // 8 * 8
        chunk = data[offset:offset + room]
        last = offset + len(chunk) == len(data)
        ip = bytearray(h)
        ip[2:4] = struct.pack("!H", len(h) + len(chunk))
        ip[6:8] = struct.pack("!H", (base + offset // 8) | (more if last else 0x2000))
        out.append(with_ip_checksum(ip) + chunk)
        offset += len(chunk)
    return out


# -- packets to feed both -----------------------------------------------------------------
def tcp_header(sport=40000, dport=80, seq=1, ack=1, flags=0x10, window=65535, options=b""):
    """A TCP header (checksum zero); options padded with NOP to 4-byte words."""
    options = bytes(options) + b"\x01" * (-len(options) % 4)
    doff = (20 + len(options)) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, doff << 4, flags, window, 0, 0) + options


def udp_header(sport=40000, dport=53, length=8):
    return struct.pack("!HHHH", sport, dport, length, 0)


def ipv4_packet(proto, l4, saddr=0xc6120001, daddr=0xc6120002, ident=0x1234, df=False,
                mf=False, frag_offset=0, ttl=64, options=b""):
    """An IPv4 packet around l4 (any bytes), with a valid header checksum."""
    hl = 20 + len(options)
    frag = (0x4000 if df else 0) | (0x2000 if mf else 0) | frag_offset // 8
    header = struct.pack("!BBHHHBBHII", 0x40 | hl // 4, 0, min(hl + len(l4), 0xffff), ident,
                         frag, ttl, proto, 0, saddr, daddr) + bytes(options)
    return with_ip_checksum(header) + bytes(l4)
