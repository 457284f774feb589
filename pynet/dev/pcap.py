"""A pcap writer that wraps any device (smoltcp's PcapWriter).

    dev = PcapWriter(TapDevice(...), "trace.pcap")

Every frame the device sends or receives goes to a libpcap file (link type 1,
Ethernet; tcpdump and Wireshark read it) through pynet.pcapfile, stamped with
`clock()` when it passes (wall-clock seconds by default). A frame whose
checksum is left to the hardware (CHECKSUM_PARTIAL) is recorded as the wire
will carry it: a copy gets the checksum finished first, so captures show no
false bad-checksum warnings. GSO skbs are recorded whole, as tcpdump shows
them on an offloading interface.
"""
import time

from pynet.checksum import skb_checksum_help
from pynet.dev.netdevice import NETDEV_TX_OK, DeviceWrapper
from pynet.pcapfile import PcapWriterFile
from pynet.skbuff import CHECKSUM_PARTIAL


def wire_bytes(skb):
    """The frame's bytes as they go on the wire: a partial checksum finished."""
    if skb.ip_summed == CHECKSUM_PARTIAL:
        skb = skb.copy()
        skb_checksum_help(skb)
    return skb.tobytes()


class PcapWriter(DeviceWrapper):
    """PcapWriter(lower, path_or_file, clock=time.time)."""

    def __init__(self, lower, path, clock=time.time):
        super().__init__(lower)
        self.path = path
        self.clock = clock
        self.pcap = None

    def ndo_open(self):
        self.pcap = PcapWriterFile(self.path)
        super().ndo_open()

    def ndo_stop(self):
        try:
            super().ndo_stop()
        finally:
            self.pcap.close()

    def ndo_start_xmit(self, skb):
        frame = wire_bytes(skb)       # before the driver owns (and may alter) the skb
        rc = super().ndo_start_xmit(skb)
        if rc == NETDEV_TX_OK:
            self.pcap.write(frame, self.clock())
        return rc

    def ndo_poll(self, budget, now):
        skbs = super().ndo_poll(budget, now)
        for skb in skbs:
            self.pcap.write(wire_bytes(skb), self.clock())
        return skbs

    def flush(self):
        self.pcap.flush()
