"""Unpredictable initial sequence numbers, timestamp offsets and ephemeral
ports (Linux's net/core/secure_seq.c).

RFC 6528: ISN = M + F(localip, localport, remoteip, remoteport, secretkey),
M a clock ticking every 4 µs, F a keyed hash (here BLAKE2s; Linux uses
SipHash). The same key seeds each connection's TSval offset (RFC 7323
§5.4) and the per-destination ephemeral port offset (RFC 6056 §3.3.3).
"""
import hashlib
import os
import struct

_net_secret = os.urandom(32)
# keyed once; each hash copies the keyed state (half the cost of keying anew,
# and this runs for every connection)
_keyed = hashlib.blake2s(key=_net_secret, digest_size=4)


def _keyed_hash32(*fields):
    h = _keyed.copy()
    h.update(struct.pack(f"!{len(fields)}I", *fields))
    return int.from_bytes(h.digest(), "big")


def secure_tcp_seq(saddr, daddr, sport, dport, now):
    """RFC 6528 §3: the hash plus the 4 µs clock (250,000 ticks a second)."""
    return (_keyed_hash32(saddr, daddr, (sport << 16) | dport) + int(now * 250000)) & 0xFFFFFFFF


def secure_tcp_ts_off(saddr, daddr):
    return _keyed_hash32(saddr, daddr, 0x7453)


def secure_ipv4_port_ephemeral(saddr, daddr, dport):
    """RFC 6056 §3.3.3 F(local IP, remote IP, remote port, secret)."""
    return _keyed_hash32(saddr, daddr, dport, 0x5054)
