"""Wire formats: checked views over packet bytes and the values they parse to.

One module per protocol (ethernet, arp, ipv4, icmp, udp, tcp), each in the
shape of smoltcp's src/wire: a view `XPacket(buf)` that checks the lengths
once in its constructor (raising WireError) so that no accessor can fail
afterwards, and a dataclass `XRepr` with `parse(packet, ...)`, `header_len`
and `emit(buf, ...)`. Views read and write the buffer in place; `.payload` is
a memoryview of it. IPv4 addresses are host-order ints, MAC addresses 6-byte
bytes.
"""


class WireError(ValueError):
    """Bytes that are not a well-formed header: too short, inconsistent
    lengths, a bad checksum, a malformed option, or a field out of range."""


from pynet.wire import arp, ethernet, icmp, ipv4, tcp, udp  # noqa: E402  (after WireError: they import it)
from pynet.wire.arp import ArpPacket, ArpRepr  # noqa: E402
from pynet.wire.ethernet import EthernetPacket, EthernetRepr  # noqa: E402
from pynet.wire.icmp import IcmpPacket, IcmpRepr  # noqa: E402
from pynet.wire.ipv4 import Ipv4Packet, Ipv4Repr  # noqa: E402
from pynet.wire.tcp import TcpPacket, TcpRepr  # noqa: E402
from pynet.wire.udp import UdpPacket, UdpRepr  # noqa: E402

__all__ = [
    "WireError", "ethernet", "arp", "ipv4", "icmp", "udp", "tcp",
    "EthernetPacket", "EthernetRepr", "ArpPacket", "ArpRepr", "Ipv4Packet", "Ipv4Repr",
    "IcmpPacket", "IcmpRepr", "UdpPacket", "UdpRepr", "TcpPacket", "TcpRepr",
]
