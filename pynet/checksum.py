"""The Internet checksum: RFC 1071 sums, the IPv4 pseudo-header, RFC 1624 updates.

Implemented in C (csrc/csum.c, pynet/checksum.pxi). Every 16-bit checksum is
an int whose big-endian encoding is what goes on the wire; sums are 32-bit and
unfolded (only their value modulo 0xffff matters: fold before comparing).

    check = csum_tcpudp_magic(saddr, daddr, len(seg), IPPROTO_TCP, csum_partial(seg))
"""
from pynet._core import (  # noqa: F401
    csum_fold,
    csum_partial,
    csum_replace2,
    csum_replace4,
    csum_tcpudp_magic,
    csum_tcpudp_nofold,
    ip_fast_csum,
    skb_checksum,
    skb_checksum_help,
)

__all__ = [
    "csum_partial", "csum_fold", "ip_fast_csum", "csum_tcpudp_nofold",
    "csum_tcpudp_magic", "csum_replace2", "csum_replace4", "skb_checksum",
    "skb_checksum_help",
]
