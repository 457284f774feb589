"""ICMP for IPv4 (RFC 792): echo, destination unreachable (with the next-hop
MTU of RFC 1191 for "fragmentation needed"), time exceeded.

    0      1      2        4                8
    | type | code | check  | rest of header | data
    echo:        rest = id(2) seq(2),         data = echo data
    unreachable: rest = unused(2) mtu(2),     data = the original datagram's
    time exceeded: rest = unused(4)           IP header and the start of its payload
"""
from dataclasses import dataclass
from typing import Optional

from pynet.checksum import csum_fold, csum_partial
from pynet.wire import WireError
from pynet.wire._field import Field, View, need
from pynet.wire.ipv4 import Ipv4Packet, Ipv4Repr

ICMP_ECHOREPLY = 0
ICMP_DEST_UNREACH = 3
ICMP_ECHO = 8
ICMP_TIME_EXCEEDED = 11

# ICMP_DEST_UNREACH codes (Linux include/uapi/linux/icmp.h)
ICMP_NET_UNREACH = 0
ICMP_HOST_UNREACH = 1
ICMP_PROT_UNREACH = 2
ICMP_PORT_UNREACH = 3
ICMP_FRAG_NEEDED = 4
ICMP_SR_FAILED = 5
# ICMP_TIME_EXCEEDED codes
ICMP_EXC_TTL = 0
ICMP_EXC_FRAGTIME = 1

ICMP_HLEN = 8
_ECHO_TYPES = (ICMP_ECHO, ICMP_ECHOREPLY)
_ERROR_TYPES = (ICMP_DEST_UNREACH, ICMP_TIME_EXCEEDED)


class IcmpPacket(View):
    """A checked view of an ICMP message (the whole IP payload: the checksum covers it all)."""
    __slots__ = ()

    type = Field(0, 1)
    code = Field(1, 1)
    check = Field(2, 2)
    rest = Field(4, 4)       # the "rest of header" word, whatever the type
    id = Field(4, 2)         # echo
    seq = Field(6, 2)        # echo
    mtu = Field(6, 2)        # dest unreachable / fragmentation needed (RFC 1191)

    def _check(self):
        need(self.buf, ICMP_HLEN, "icmp")

    @property
    def payload(self) -> memoryview:
        return self.buf[ICMP_HLEN:]

    def verify_checksum(self) -> bool:
        return csum_fold(csum_partial(self.buf)) == 0

    def fill_checksum(self) -> None:
        self.check = 0
        self.check = csum_fold(csum_partial(self.buf))


@dataclass
class IcmpRepr:
    """An echo or an error message.

    Echo request/reply: id, seq, and data (the echo data).
    Destination unreachable / time exceeded: header is the quoted datagram's
    IPv4 header, data what follows it in the quote (its payload's first bytes),
    mtu the next-hop MTU of a "fragmentation needed" (code 4).
    """
    type: int
    code: int = 0
    id: int = 0
    seq: int = 0
    mtu: int = 0
    header: Optional[Ipv4Repr] = None
    data: bytes = b""

    @classmethod
    def parse(cls, packet: IcmpPacket, verify_checksum: bool = True) -> "IcmpRepr":
        if verify_checksum and not packet.verify_checksum():
            raise WireError("icmp: bad checksum")
        t = packet.type
        if t in _ECHO_TYPES:
            return cls(t, packet.code, id=packet.id, seq=packet.seq, data=bytes(packet.payload))
        if t in _ERROR_TYPES:
            quoted = Ipv4Packet.quoted(packet.payload)
            return cls(t, packet.code,
                       mtu=packet.mtu if (t, packet.code) == (ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED) else 0,
                       header=Ipv4Repr.parse(quoted, verify_checksum=False),
                       data=bytes(quoted.payload))
        raise WireError(f"icmp: unsupported type {t}")

    @property
    def header_len(self) -> int:
        """The whole message: ICMP header, quoted IP header, data."""
        return ICMP_HLEN + (self.header.header_len if self.header is not None else 0) + len(self.data)

    def emit(self, buf, checksum: bool = True) -> None:
        """Write the whole message into buf[:header_len], with its checksum."""
        n = self.header_len
        p = IcmpPacket.unchecked(buf)
        need(p.buf, n, "icmp emit")
        p.type = self.type
        p.code = self.code
        p.check = 0
        if self.type in _ECHO_TYPES:
            p.id = self.id
            p.seq = self.seq
        else:
            p.rest = 0
            p.mtu = self.mtu
        at = ICMP_HLEN
        if self.header is not None:
            self.header.emit(p.buf[at:], checksum=True)
            at += self.header.header_len
        p.buf[at:n] = self.data
        if checksum:
            p.check = csum_fold(csum_partial(p.buf[:n]))
