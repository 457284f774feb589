"""An in-memory pair of Ethernet devices, like a veth pair inside one process.

A frame sent on one end is delivered, as a private copy, by the other end's
next poll(). No privilege, no clock, no threads: fully deterministic, so
protocol and fault tests can control every frame. When the peer's receive
queue is full the sender's driver reports NETDEV_TX_BUSY and the frame waits
in the sender's transmit queue (backpressure, nothing lost silently).
"""
from pynet.dev.netdevice import NETDEV_TX_BUSY, NETDEV_TX_OK, BacklogDevice


class PipeDevice(BacklogDevice):
    """One end of a pipe_pair()."""

    def __init__(self, name, hwaddr, *, mtu=1500, features=0, rx_queue_len=1000):
        super().__init__(name, mtu=mtu, hwaddr=hwaddr, features=features, rx_queue_len=rx_queue_len)
        self.peer = None

    def ndo_start_xmit(self, skb):
        peer = self.peer
        if not peer.up:
            self.stats.tx_dropped += 1     # carrier off: the wire eats it
            return NETDEV_TX_OK
        if len(peer.rxq) >= peer.rxq.limit:
            return NETDEV_TX_BUSY
        # The receiver gets its own buffer, as a real wire would give it.
        rx = skb.copy(headroom=max(peer.needed_headroom, skb.headroom))
        rx.reset_mac_header()
        rx.sk = rx.dst = None
        peer.netif_rx(rx)
        self.stats.tx_packets += 1
        self.stats.tx_bytes += len(skb)
        return NETDEV_TX_OK

    def ndo_poll(self, budget, now):
        out = super().ndo_poll(budget, now)
        if out and self.peer.queue_stopped:
            self.peer.netif_wake_queue()   # room again: the sender's tx completion
        return out


def pipe_pair(names=("pipe0", "pipe1"), hwaddrs=(b"\x02\x00\x00\x00\x00\x01", b"\x02\x00\x00\x00\x00\x02"),
              *, mtu=1500, features=0, rx_queue_len=1000):
    """Two connected, opened devices (dev_a, dev_b)."""
    a = PipeDevice(names[0], hwaddrs[0], mtu=mtu, features=features, rx_queue_len=rx_queue_len)
    b = PipeDevice(names[1], hwaddrs[1], mtu=mtu, features=features, rx_queue_len=rx_queue_len)
    a.peer, b.peer = b, a
    return a.open(), b.open()
