"""ARP (RFC 826). The view reads any hardware/protocol sizes; the Repr is
Ethernet + IPv4, the only pair pynet resolves.

    0    2    4   5   6    8
    |hrd |pro |hln|pln| op | sha(hln) spa(pln) tha(hln) tpa(pln)
"""
from dataclasses import dataclass

from pynet.wire import WireError
from pynet.wire._field import Field, View, need
from pynet.wire.ethernet import ETH_ALEN, ETH_P_IP

ARPHRD_ETHER = 1
ARPOP_REQUEST = 1
ARPOP_REPLY = 2
ARP_HDR_LEN = 8
ARP_ETH_IP_LEN = ARP_HDR_LEN + 2 * ETH_ALEN + 2 * 4   # 28


class ArpPacket(View):
    """A checked view of an ARP packet: the fixed header and both address pairs present."""
    __slots__ = ()

    hrd = Field(0, 2)
    pro = Field(2, 2)
    hln = Field(4, 1)
    pln = Field(5, 1)
    op = Field(6, 2)

    def _check(self):
        need(self.buf, ARP_HDR_LEN, "arp")
        need(self.buf, self.packet_len, "arp addresses")

    @property
    def packet_len(self) -> int:
        return ARP_HDR_LEN + 2 * (self.hln + self.pln)

    def _addr(self, n):
        # n-th address of sha, spa, tha, tpa
        h, p = self.hln, self.pln
        start = ARP_HDR_LEN + (n >> 1) * (h + p) + (h if n & 1 else 0)
        return bytes(self.buf[start:start + (p if n & 1 else h)])

    def _set_addr(self, n, value):
        h, p = self.hln, self.pln
        start = ARP_HDR_LEN + (n >> 1) * (h + p) + (h if n & 1 else 0)
        size = p if n & 1 else h
        if len(value) != size:
            raise WireError(f"arp address: {len(value)} bytes, need {size}")
        self.buf[start:start + size] = value

    sha = property(lambda self: self._addr(0), lambda self, v: self._set_addr(0, v))
    spa = property(lambda self: self._addr(1), lambda self, v: self._set_addr(1, v))
    tha = property(lambda self: self._addr(2), lambda self, v: self._set_addr(2, v))
    tpa = property(lambda self: self._addr(3), lambda self, v: self._set_addr(3, v))


@dataclass
class ArpRepr:
    """An Ethernet/IPv4 ARP message; IPv4 addresses as host-order ints (Linux: sip/tip)."""
    op: int
    sha: bytes
    sip: int
    tha: bytes
    tip: int

    header_len = ARP_ETH_IP_LEN

    @classmethod
    def parse(cls, packet: ArpPacket) -> "ArpRepr":
        if (packet.hrd, packet.pro, packet.hln, packet.pln) != (ARPHRD_ETHER, ETH_P_IP, ETH_ALEN, 4):
            raise WireError(f"arp: unsupported hrd {packet.hrd} pro {packet.pro:#06x} "
                            f"hln {packet.hln} pln {packet.pln}")
        return cls(packet.op, packet.sha, int.from_bytes(packet.spa, "big"),
                   packet.tha, int.from_bytes(packet.tpa, "big"))

    def emit(self, buf) -> None:
        """Write the 28-byte message into buf[:28]."""
        p = ArpPacket.unchecked(buf)
        need(p.buf, ARP_ETH_IP_LEN, "arp emit")
        p.hrd = ARPHRD_ETHER
        p.pro = ETH_P_IP
        p.hln = ETH_ALEN
        p.pln = 4
        p.op = self.op
        p.sha = self.sha
        p.spa = self.sip.to_bytes(4, "big")
        p.tha = self.tha
        p.tpa = self.tip.to_bytes(4, "big")
