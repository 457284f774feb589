"""The loopback device: every frame sent comes back on the next poll().

As Linux's loopback it offloads everything: checksums left partial are
trusted on the way back in (CHECKSUM_PARTIAL becomes CHECKSUM_UNNECESSARY,
as ip_rcv treats a local partial checksum) and GSO skbs loop back whole.
"""
import os

from pynet.dev.netdevice import (NETDEV_TX_OK, NETIF_F_GSO_UDP_L4, NETIF_F_HW_CSUM,
                                 NETIF_F_SG, NETIF_F_TSO, NETIF_F_TSO6, NETIF_F_TSO_ECN,
                                 NetDevice)
from pynet.skbuff import CHECKSUM_PARTIAL, CHECKSUM_UNNECESSARY, SKBQueue

LOOPBACK_FEATURES = (NETIF_F_SG | NETIF_F_HW_CSUM | NETIF_F_TSO | NETIF_F_TSO_ECN
                     | NETIF_F_TSO6 | NETIF_F_GSO_UDP_L4)


class LoopbackDevice(NetDevice):
    def __init__(self, name="lo", *, mtu=65536, rx_queue_len=1000):
        super().__init__(name, mtu=mtu, hwaddr=b"\x00" * 6, features=LOOPBACK_FEATURES)
        self.rxq = SKBQueue(rx_queue_len)
        self._efd = None

    def ndo_open(self):
        self._efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)

    def ndo_stop(self):
        self.rxq.purge()
        os.close(self._efd)
        self._efd = None

    def fileno(self):
        if self._efd is None:
            raise ValueError("device is down")
        return self._efd

    def ndo_start_xmit(self, skb):
        if skb.ip_summed == CHECKSUM_PARTIAL:
            skb.ip_summed = CHECKSUM_UNNECESSARY
        skb.sk = skb.dst = None
        skb.reset_mac_header()
        if not self.rxq:
            os.eventfd_write(self._efd, 1)
        if not self.rxq.enqueue(skb):
            self.stats.rx_dropped += 1     # backlog full, as netif_rx drops
        self.stats.tx_packets += 1
        self.stats.tx_bytes += len(skb)
        return NETDEV_TX_OK

    def ndo_poll(self, budget, now):
        q = self.rxq
        out = []
        while q and len(out) < budget:
            out.append(q.dequeue())
        if not q:
            try:
                os.eventfd_read(self._efd)
            except BlockingIOError:
                pass
        return out
