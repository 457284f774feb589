"""Segmentation offload in software and IPv4 fragmentation, in C.

`skb_gso_segment(skb, hw_csum=False)` splits a TCP/IPv4 (SKB_GSO_TCPV4) or
UDP/IPv4 (SKB_GSO_UDP_L4) skb of up to 64 KB into gso_size segments, as
Linux's software GSO does for a device without TSO; `ip_fragment_skb(skb, mtu)`
fragments an IPv4 datagram (RFC 791). Both take skb.data at the IPv4 header
and return new skbs laid out the same way, with the input's headroom, every
IPv4 checksum filled in (pynet/gso.pxi, csrc/gso.c).
"""
from pynet._core import ip_fragment_skb, skb_gso_segment  # noqa: F401

__all__ = ["skb_gso_segment", "ip_fragment_skb"]
