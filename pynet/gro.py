"""Generic receive offload for TCP/IPv4, in C (csrc/gro.c, pynet/gro.pxi).

`gro_receive(skbs, stats=None)` takes one device poll's frames (data at the
Ethernet header) and returns them with every run of consecutive in-order
segments of one TCP flow merged into its first skb, so that a device
without receive offloads still hands the stack one skb per 64 KB.

The stack runs it on the frames of devices with NETIF_F_GRO in their
features (`ethtool -K dev gro on`), counting in `stack.gro_stats`.
"""
from pynet._core import GroStats, gro_receive  # noqa: F401
from pynet.dev.netdevice import NETIF_F_GRO  # noqa: F401  (defined with the other NETIF_F_*)

__all__ = ["gro_receive", "GroStats", "NETIF_F_GRO"]
