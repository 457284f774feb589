"""UDP (RFC 768), with the IPv4 pseudo-header checksum.

    0        2        4     6       8
    | source | dest   | len | check | payload
"""
from dataclasses import dataclass

from pynet._core import udp_hdr_push  # noqa: F401  (the C fast paths, csrc/hdr.c)
from pynet.wire import WireError
from pynet.wire._field import Field, View, need
from pynet.wire.ipv4 import IPPROTO_UDP, l4_checksum, l4_partial_check

UDP_HLEN = 8


class UdpPacket(View):
    """A checked view of a UDP datagram: 8 <= len field <= len(buf); bytes past len are not payload."""
    __slots__ = ()

    source = Field(0, 2)
    dest = Field(2, 2)
    len = Field(4, 2)
    check = Field(6, 2)

    def _check(self):
        need(self.buf, UDP_HLEN, "udp")
        if self.len < UDP_HLEN:
            raise WireError(f"udp: len {self.len} < {UDP_HLEN}")
        if self.len > len(self.buf):
            raise WireError(f"udp: len {self.len} > {len(self.buf)} bytes")

    @property
    def payload(self) -> memoryview:
        return self.buf[UDP_HLEN:self.len]

    def verify_checksum(self, saddr: int, daddr: int) -> bool:
        """True if the checksum is right or absent (0: the sender computed none)."""
        if self.check == 0:
            return True
        return l4_checksum(saddr, daddr, IPPROTO_UDP, self.buf[:self.len]) == 0

    def fill_checksum(self, saddr: int, daddr: int) -> None:
        self.check = 0
        # RFC 768: a computed 0 is sent as all ones (0 means "no checksum")
        self.check = l4_checksum(saddr, daddr, IPPROTO_UDP, self.buf[:self.len]) or 0xFFFF


@dataclass
class UdpRepr:
    source: int
    dest: int
    payload_len: int

    header_len = UDP_HLEN

    @classmethod
    def parse(cls, packet: UdpPacket, saddr=None, daddr=None) -> "UdpRepr":
        """With saddr and daddr, the checksum is verified (WireError if wrong)."""
        if saddr is not None and not packet.verify_checksum(saddr, daddr):
            raise WireError("udp: bad checksum")
        return cls(packet.source, packet.dest, packet.len - UDP_HLEN)

    def emit(self, buf, saddr=None, daddr=None, payload=None, partial=False) -> None:
        """Write the header into buf[:8].

        The checksum covers the header and the payload: `payload` if given,
        else the payload_len bytes that follow the header in buf. Without
        saddr/daddr none is computed (0). partial=True writes only the
        pseudo-header sum, for CHECKSUM_PARTIAL.
        """
        length = UDP_HLEN + self.payload_len
        if length > 0xFFFF:
            raise WireError(f"udp: {length} bytes exceed 65535")
        p = UdpPacket.unchecked(buf)
        need(p.buf, UDP_HLEN if payload is not None or saddr is None or partial else length, "udp emit")
        p.source = self.source
        p.dest = self.dest
        p.len = length
        p.check = 0
        if saddr is None:
            return
        if partial:
            p.check = l4_partial_check(saddr, daddr, IPPROTO_UDP, length)
        elif payload is not None:
            if len(payload) != self.payload_len:
                raise WireError(f"udp emit: payload is {len(payload)} bytes, payload_len {self.payload_len}")
            p.check = l4_checksum(saddr, daddr, IPPROTO_UDP, p.buf[:UDP_HLEN], payload) or 0xFFFF
        else:
            p.check = l4_checksum(saddr, daddr, IPPROTO_UDP, p.buf[:length]) or 0xFFFF
