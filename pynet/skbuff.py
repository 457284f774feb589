"""The packet buffer every layer shares (Linux's include/linux/skbuff.h).

SKB and SKBQueue are implemented in C (csrc/skb.c, pynet/skbuff.pxi); this
module is where the rest of the stack imports them from.
"""
from pynet._core import (  # noqa: F401
    CHECKSUM_COMPLETE,
    CHECKSUM_NONE,
    CHECKSUM_PARTIAL,
    CHECKSUM_UNNECESSARY,
    SKB,
    SKB_GSO_DODGY,
    SKB_GSO_TCP_ECN,
    SKB_GSO_TCPV4,
    SKB_GSO_TCPV6,
    SKB_GSO_UDP_L4,
    SKB_CACHE_BYTES,
    SKB_MAX_ALLOC,
    SKBError,
    SKBQueue,
    skb_buf_cache_info,
    skb_buf_cache_shrink,
)

__all__ = [
    "SKB", "SKBQueue", "SKBError", "SKB_MAX_ALLOC", "SKB_CACHE_BYTES", "skb_buf_cache_info",
    "skb_buf_cache_shrink",
    "CHECKSUM_NONE", "CHECKSUM_UNNECESSARY", "CHECKSUM_COMPLETE", "CHECKSUM_PARTIAL",
    "SKB_GSO_TCPV4", "SKB_GSO_TCPV6", "SKB_GSO_UDP_L4", "SKB_GSO_DODGY", "SKB_GSO_TCP_ECN",
]
