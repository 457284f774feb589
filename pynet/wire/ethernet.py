"""Ethernet II frames, with the 802.1Q VLAN tag read (IEEE 802.3, 802.1Q).

    0      6      12        14 (or 18 with a tag)
    | dst  | src  | type    | payload
                  | 0x8100 TCI type | payload     (802.1Q)
"""
from dataclasses import dataclass
from typing import Optional

from pynet.wire._field import Field, Octets, View, need

ETH_ALEN = 6
ETH_HLEN = 14
VLAN_HLEN = 4
ETH_ZLEN = 60           # shortest frame on the wire without the FCS
ETH_DATA_LEN = 1500
ETH_FRAME_LEN = 1514

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_8021Q = 0x8100
ETH_P_IPV6 = 0x86DD

BROADCAST = b"\xff" * ETH_ALEN


def mac_aton(s: str) -> bytes:
    """'02:00:00:00:00:01' -> 6 bytes; ValueError if it is not a MAC address."""
    parts = s.split(":")
    if len(parts) != ETH_ALEN or not all(1 <= len(p) <= 2 for p in parts):
        raise ValueError(f"invalid MAC address {s!r}")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError(f"invalid MAC address {s!r}") from None


def mac_ntoa(mac) -> str:
    """6 bytes -> '02:00:00:00:00:01'."""
    if len(mac) != ETH_ALEN:
        raise ValueError(f"a MAC address is {ETH_ALEN} bytes, not {len(mac)}")
    return ":".join(f"{b:02x}" for b in mac)


def is_multicast(mac) -> bool:
    """Group bit set (broadcast included)."""
    return bool(mac[0] & 1)


class EthernetPacket(View):
    """A checked view of an Ethernet frame (no FCS), 802.1Q tag included if present."""
    __slots__ = ()

    dst = Octets(0, ETH_ALEN)
    src = Octets(6, ETH_ALEN)
    type = Field(12, 2)          # the outer ethertype: 0x8100 on a tagged frame
    tci = Field(14, 2)           # 802.1Q tag control: PCP(3) DEI(1) VID(12)
    vlan_id = Field(14, 2, 0, 12)
    inner_type = Field(16, 2)    # the ethertype after the tag

    def _check(self):
        need(self.buf, ETH_HLEN, "ethernet")
        if self.type == ETH_P_8021Q:
            need(self.buf, ETH_HLEN + VLAN_HLEN, "ethernet 802.1Q")

    @property
    def tagged(self) -> bool:
        return self.type == ETH_P_8021Q

    @property
    def ethertype(self) -> int:
        """The payload's protocol, past a VLAN tag if there is one."""
        return self.inner_type if self.tagged else self.type

    @property
    def header_len(self) -> int:
        return ETH_HLEN + VLAN_HLEN if self.tagged else ETH_HLEN

    @property
    def payload(self) -> memoryview:
        return self.buf[self.header_len:]


@dataclass
class EthernetRepr:
    src: bytes
    dst: bytes
    ethertype: int
    vlan_tci: Optional[int] = None   # the 802.1Q TCI if the frame is tagged

    @classmethod
    def parse(cls, packet: EthernetPacket) -> "EthernetRepr":
        return cls(packet.src, packet.dst, packet.ethertype,
                   packet.tci if packet.tagged else None)

    @property
    def header_len(self) -> int:
        return ETH_HLEN if self.vlan_tci is None else ETH_HLEN + VLAN_HLEN

    def emit(self, buf) -> None:
        """Write the header into buf[:header_len]."""
        p = EthernetPacket.unchecked(buf)
        need(p.buf, self.header_len, "ethernet emit")
        p.dst = self.dst
        p.src = self.src
        if self.vlan_tci is None:
            p.type = self.ethertype
        else:
            p.type = ETH_P_8021Q
            p.tci = self.vlan_tci
            p.inner_type = self.ethertype
