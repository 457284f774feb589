"""IPv4 headers (RFC 791). Options are carried through as bytes.

    0        1     2        4    6             8    9     10     12    16    20
    |ver ihl | tos | tot_len| id |flags frag_off| ttl|proto| check| saddr|daddr| options
"""
import socket
from dataclasses import dataclass

from pynet.checksum import csum_partial, csum_tcpudp_magic, ip_fast_csum
from pynet._core import ipv4_hdr_parse, ipv4_hdr_push  # noqa: F401  (the C fast paths, csrc/hdr.c)
from pynet.wire import WireError
from pynet.wire._field import Field, Flag, View, need

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17

IPV4_HLEN = 20            # header without options
IPV4_MAX_HLEN = 60
IPV4_MAX_LEN = 0xFFFF
IP_CE = 0x8000            # frag_off bits, as Linux's include/net/ip.h
IP_DF = 0x4000
IP_MF = 0x2000
IP_OFFSET = 0x1FFF


def ip_aton(s: str) -> int:
    """'198.18.0.1' -> host-order int; ValueError if not a dotted quad."""
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, s), "big")
    except (OSError, TypeError):
        raise ValueError(f"invalid IPv4 address {s!r}") from None


def ip_ntoa(addr: int) -> str:
    """Host-order int -> '198.18.0.1'."""
    if not 0 <= addr <= 0xFFFFFFFF:
        raise ValueError(f"IPv4 address {addr} out of range")
    return socket.inet_ntoa(addr.to_bytes(4, "big"))


def l4_checksum(saddr, daddr, proto, segment, payload=None) -> int:
    """The folded, inverted TCP/UDP checksum of segment (+ payload) with the IPv4 pseudo-header."""
    length = len(segment)
    s = csum_partial(segment)
    if payload is not None:
        # the header's length is even, so the payload's words line up with the sum's
        length += len(payload)
        s = csum_partial(payload, s)
    return csum_tcpudp_magic(saddr, daddr, length, proto, s)


def l4_partial_check(saddr, daddr, proto, length) -> int:
    """The check field for CHECKSUM_PARTIAL: the pseudo-header sum, folded, not inverted
    (Linux's ~tcp_v4_check(len, saddr, daddr, 0)); the device adds the rest."""
    return ~csum_tcpudp_magic(saddr, daddr, length, proto, 0) & 0xFFFF


class Ipv4Packet(View):
    """A checked view of an IPv4 datagram: version 4, ihl >= 5, ihl*4 <= tot_len <= len(buf).

    Bytes past tot_len (Ethernet padding) are not part of `payload`.
    `Ipv4Packet.quoted(buf)` accepts a datagram cut short, as ICMP errors quote it.
    """
    __slots__ = ()

    version = Field(0, 1, 4, 4)
    ihl = Field(0, 1, 0, 4)
    tos = Field(1, 1)
    dscp = Field(1, 1, 2, 6)
    ecn = Field(1, 1, 0, 2)
    tot_len = Field(2, 2)
    id = Field(4, 2)
    frag_off = Field(6, 2)       # the whole 16 bits: flags and offset in 8-byte units
    df = Flag(6, 2, 14)
    mf = Flag(6, 2, 13)
    frag_units = Field(6, 2, 0, 13)
    ttl = Field(8, 1)
    protocol = Field(9, 1)
    check = Field(10, 2)
    saddr = Field(12, 4)
    daddr = Field(16, 4)

    def _check(self, truncated_ok=False):
        need(self.buf, IPV4_HLEN, "ipv4")
        if self.version != 4:
            raise WireError(f"ipv4: version {self.version}")
        hl = self.ihl * 4
        if hl < IPV4_HLEN:
            raise WireError(f"ipv4: ihl {self.ihl} < 5")
        need(self.buf, hl, "ipv4 options")
        if self.tot_len < hl:
            raise WireError(f"ipv4: tot_len {self.tot_len} < header {hl}")
        if not truncated_ok and self.tot_len > len(self.buf):
            raise WireError(f"ipv4: tot_len {self.tot_len} > {len(self.buf)} bytes")

    @classmethod
    def quoted(cls, buf) -> "Ipv4Packet":
        """A view of a datagram whose tail may be missing (the copy inside an ICMP error)."""
        p = cls.unchecked(buf)
        p._check(truncated_ok=True)
        return p

    @property
    def header_len(self) -> int:
        return self.ihl * 4

    @property
    def frag_offset(self) -> int:
        """Fragment offset in bytes."""
        return self.frag_units * 8

    @frag_offset.setter
    def frag_offset(self, value: int) -> None:
        if value % 8:
            raise WireError(f"ipv4: fragment offset {value} is not a multiple of 8")
        self.frag_units = value // 8

    @property
    def is_fragment(self) -> bool:
        return bool(self.frag_off & (IP_MF | IP_OFFSET))

    @property
    def options(self) -> bytes:
        return bytes(self.buf[IPV4_HLEN:self.header_len])

    @property
    def payload(self) -> memoryview:
        return self.buf[self.header_len:min(self.tot_len, len(self.buf))]

    def verify_checksum(self) -> bool:
        return ip_fast_csum(self.buf[:self.header_len]) == 0

    def fill_checksum(self) -> None:
        self.check = 0
        self.check = ip_fast_csum(self.buf[:self.header_len])


def ip_hdr(skb) -> Ipv4Packet:
    """The IPv4 header at skb.network_header (Linux's ip_hdr), as an unchecked
    view of a copy: above IP the header has usually been pulled already."""
    nh = skb.network_header - skb.data_offset
    if nh < 0:
        return Ipv4Packet.unchecked(skb.headroom_bytes()[nh:])
    return Ipv4Packet.unchecked(bytes(skb.data[nh:nh + 60]))


@dataclass
class Ipv4Repr:
    saddr: int
    daddr: int
    protocol: int
    payload_len: int
    ttl: int = 64
    tos: int = 0
    id: int = 0
    df: bool = False
    mf: bool = False
    frag_offset: int = 0        # bytes, a multiple of 8
    options: bytes = b""        # passed through, a multiple of 4 bytes

    @classmethod
    def parse(cls, packet: Ipv4Packet, verify_checksum: bool = True) -> "Ipv4Repr":
        if verify_checksum and not packet.verify_checksum():
            raise WireError("ipv4: bad header checksum")
        return cls(packet.saddr, packet.daddr, packet.protocol,
                   packet.tot_len - packet.header_len, packet.ttl, packet.tos, packet.id,
                   packet.df, packet.mf, packet.frag_offset, packet.options)

    @property
    def header_len(self) -> int:
        n = IPV4_HLEN + len(self.options)
        if len(self.options) % 4 or n > IPV4_MAX_HLEN:
            raise WireError(f"ipv4: {len(self.options)} bytes of options "
                            "(need a multiple of 4, at most 40)")
        return n

    def emit(self, buf, checksum: bool = True) -> None:
        """Write the header into buf[:header_len], with its checksum unless checksum=False."""
        hl = self.header_len
        if hl + self.payload_len > IPV4_MAX_LEN:
            raise WireError(f"ipv4: {hl + self.payload_len} bytes exceed {IPV4_MAX_LEN}")
        p = Ipv4Packet.unchecked(buf)
        need(p.buf, hl, "ipv4 emit")
        p.version = 4
        p.ihl = hl // 4
        p.tos = self.tos
        p.tot_len = hl + self.payload_len
        p.id = self.id
        p.frag_off = 0
        p.df = self.df
        p.mf = self.mf
        p.frag_offset = self.frag_offset
        p.ttl = self.ttl
        p.protocol = self.protocol
        p.check = 0
        p.saddr = self.saddr
        p.daddr = self.daddr
        p.buf[IPV4_HLEN:hl] = self.options
        if checksum:
            p.check = ip_fast_csum(p.buf[:hl])
