"""The loopback device: every frame sent comes back on the next poll().

As Linux's loopback it offloads everything: checksums left partial are
trusted on the way back in (CHECKSUM_PARTIAL becomes CHECKSUM_UNNECESSARY,
as ip_rcv treats a local partial checksum) and GSO skbs loop back whole.
"""
from pynet.dev.netdevice import (NETDEV_TX_OK, NETIF_F_GSO_UDP_L4, NETIF_F_HW_CSUM,
                                 NETIF_F_SG, NETIF_F_TSO, NETIF_F_TSO6, NETIF_F_TSO_ECN,
                                 BacklogDevice)
from pynet.skbuff import CHECKSUM_PARTIAL, CHECKSUM_UNNECESSARY

LOOPBACK_FEATURES = (NETIF_F_SG | NETIF_F_HW_CSUM | NETIF_F_TSO | NETIF_F_TSO_ECN
                     | NETIF_F_TSO6 | NETIF_F_GSO_UDP_L4)


class LoopbackDevice(BacklogDevice):
    def __init__(self, name="lo", *, mtu=65536, rx_queue_len=1000):
        super().__init__(name, mtu=mtu, hwaddr=b"\x00" * 6, features=LOOPBACK_FEATURES,
                         rx_queue_len=rx_queue_len)

    def ndo_start_xmit(self, skb):
        if skb.ip_summed == CHECKSUM_PARTIAL:
            skb.ip_summed = CHECKSUM_UNNECESSARY
        skb.sk = skb.dst = None
        skb.reset_mac_header()
        length = len(skb)
        self.netif_rx(skb)                 # a full backlog drops it, as netif_rx does
        self.stats.tx_packets += 1
        self.stats.tx_bytes += length
        return NETDEV_TX_OK
