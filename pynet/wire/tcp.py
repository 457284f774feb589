"""TCP headers (RFC 9293) and every option pynet speaks.

    0      2      4     8         12         14     16     18      20
    | src  | dst  | seq | ack_seq | doff flags | window | check | urg_ptr | options | payload

Options: EOL, NOP, MSS (RFC 9293 3.2), window scale and timestamps (RFC 7323),
SACK-permitted and SACK blocks (RFC 2018), Fast Open cookie (RFC 7413: kind
34, and the experimental kind 254 with magic 0xF989, RFC 6994); any other
kind is kept as (kind, bytes). A length that runs past the header or does not
fit its kind raises WireError.

TcpRepr.emit writes the options in the order and alignment of Linux's
tcp_options_write, so a segment the kernel sent re-emits byte for byte.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

from pynet._core import tcp_hdr_parse, tcp_hdr_push  # noqa: F401  (the C fast paths, csrc/hdr.c)
from pynet.wire import WireError
from pynet.wire._field import Field, Flag, View, need
from pynet.wire.ipv4 import IPPROTO_TCP, l4_checksum, l4_partial_check

TCP_HLEN = 20
TCP_MAX_HLEN = 60
TCP_MAX_OPTLEN = TCP_MAX_HLEN - TCP_HLEN

# flag bits of the 12-bit flags field (Linux TCPHDR_*; AE is RFC 9768's AccECN bit)
TCPHDR_FIN = 0x01
TCPHDR_SYN = 0x02
TCPHDR_RST = 0x04
TCPHDR_PSH = 0x08
TCPHDR_ACK = 0x10
TCPHDR_URG = 0x20
TCPHDR_ECE = 0x40
TCPHDR_CWR = 0x80
TCPHDR_AE = 0x100

TCPOPT_EOL = 0
TCPOPT_NOP = 1
TCPOPT_MSS = 2
TCPOPT_WINDOW = 3
TCPOPT_SACK_PERM = 4
TCPOPT_SACK = 5
TCPOPT_TIMESTAMP = 8
TCPOPT_FASTOPEN = 34
TCPOPT_EXP = 254
TCPOPT_FASTOPEN_MAGIC = 0xF989
TCP_FASTOPEN_COOKIE_MIN = 4     # RFC 7413 4.1.1: 4 to 16 bytes; none = a cookie request
TCP_FASTOPEN_COOKIE_MAX = 16
TCP_NUM_SACKS = 4               # at most 4 blocks fit in 40 bytes (RFC 2018 3)

_FLAG_NAMES = "FIN SYN RST PSH ACK URG ECE CWR AE".split()


def flags_str(flags: int) -> str:
    """'SYN|ACK' for traces."""
    return "|".join(n for i, n in enumerate(_FLAG_NAMES) if flags >> i & 1) or "none"


class TcpPacket(View):
    """A checked view of a TCP segment: doff >= 5 and the whole header present."""
    __slots__ = ()

    source = Field(0, 2)
    dest = Field(2, 2)
    seq = Field(4, 4)
    ack_seq = Field(8, 4)
    doff = Field(12, 1, 4, 4)
    flags = Field(12, 2, 0, 12)
    fin = Flag(12, 2, 0)
    syn = Flag(12, 2, 1)
    rst = Flag(12, 2, 2)
    psh = Flag(12, 2, 3)
    ack = Flag(12, 2, 4)
    urg = Flag(12, 2, 5)
    ece = Flag(12, 2, 6)
    cwr = Flag(12, 2, 7)
    window = Field(14, 2)
    check = Field(16, 2)
    urg_ptr = Field(18, 2)

    def _check(self):
        need(self.buf, TCP_HLEN, "tcp")
        if self.doff < 5:
            raise WireError(f"tcp: doff {self.doff} < 5")
        need(self.buf, self.doff * 4, "tcp options")

    @property
    def header_len(self) -> int:
        return self.doff * 4

    @property
    def options(self) -> memoryview:
        return self.buf[TCP_HLEN:self.header_len]

    @property
    def payload(self) -> memoryview:
        return self.buf[self.header_len:]

    @property
    def segment_len(self) -> int:
        """Sequence space used: payload plus one for SYN and one for FIN."""
        return len(self.buf) - self.header_len + self.syn + self.fin

    def verify_checksum(self, saddr: int, daddr: int) -> bool:
        return l4_checksum(saddr, daddr, IPPROTO_TCP, self.buf) == 0

    def fill_checksum(self, saddr: int, daddr: int) -> None:
        self.check = 0
        self.check = l4_checksum(saddr, daddr, IPPROTO_TCP, self.buf)


def iter_options(opts):
    """Yield (kind, data) for each option up to EOL; NOPs are skipped.

    WireError if a length byte is missing, below 2 or runs past the header.
    """
    i, n = 0, len(opts)
    while i < n:
        kind = opts[i]
        if kind == TCPOPT_EOL:
            return
        if kind == TCPOPT_NOP:
            i += 1
            continue
        if i + 1 >= n:
            raise WireError(f"tcp option {kind}: no length byte")
        size = opts[i + 1]
        if size < 2 or i + size > n:
            raise WireError(f"tcp option {kind}: length {size} at {i} of {n}")
        yield kind, bytes(opts[i + 2:i + size])
        i += size


_FIXED_LEN = {TCPOPT_MSS: 2, TCPOPT_WINDOW: 1, TCPOPT_SACK_PERM: 0, TCPOPT_TIMESTAMP: 8}


def _check_cookie(cookie):
    if len(cookie) and not TCP_FASTOPEN_COOKIE_MIN <= len(cookie) <= TCP_FASTOPEN_COOKIE_MAX:
        raise WireError(f"tcp fast open: cookie of {len(cookie)} bytes")
    return cookie


@dataclass
class TcpRepr:
    """A TCP header with its options decoded.

    fastopen: None (no option), b"" (a cookie request) or the cookie;
    fastopen_exp selects the experimental encoding (kind 254, magic 0xF989).
    timestamp: (tsval, tsecr) or None. sack: ((start, end), ...) blocks.
    unknown: ((kind, data), ...) options pynet does not interpret.
    """
    source: int
    dest: int
    seq: int
    ack_seq: int
    flags: int
    window: int
    urg_ptr: int = 0
    mss: Optional[int] = None
    wscale: Optional[int] = None
    sack_perm: bool = False
    timestamp: Optional[Tuple[int, int]] = None
    sack: Tuple[Tuple[int, int], ...] = ()
    fastopen: Optional[bytes] = None
    fastopen_exp: bool = False
    unknown: Tuple[Tuple[int, bytes], ...] = ()

    @classmethod
    def parse(cls, packet: TcpPacket, saddr=None, daddr=None) -> "TcpRepr":
        """With saddr and daddr, the checksum is verified (WireError if wrong)."""
        if saddr is not None and not packet.verify_checksum(saddr, daddr):
            raise WireError("tcp: bad checksum")
        r = cls(packet.source, packet.dest, packet.seq, packet.ack_seq, packet.flags,
                packet.window, packet.urg_ptr)
        unknown = []
        for kind, data in iter_options(packet.options):
            want = _FIXED_LEN.get(kind)
            if want is not None and len(data) != want:
                raise WireError(f"tcp option {kind}: length {len(data) + 2}, need {want + 2}")
            if kind == TCPOPT_MSS:
                r.mss = int.from_bytes(data, "big")
            elif kind == TCPOPT_WINDOW:
                r.wscale = data[0]
            elif kind == TCPOPT_SACK_PERM:
                r.sack_perm = True
            elif kind == TCPOPT_TIMESTAMP:
                r.timestamp = (int.from_bytes(data[:4], "big"), int.from_bytes(data[4:], "big"))
            elif kind == TCPOPT_SACK:
                if not data or len(data) % 8 or len(data) > 8 * TCP_NUM_SACKS:
                    raise WireError(f"tcp option SACK: length {len(data) + 2}")
                r.sack = tuple((int.from_bytes(data[i:i + 4], "big"),
                                int.from_bytes(data[i + 4:i + 8], "big"))
                               for i in range(0, len(data), 8))
            elif kind == TCPOPT_FASTOPEN:
                r.fastopen, r.fastopen_exp = _check_cookie(data), False
            elif kind == TCPOPT_EXP and len(data) >= 2 and \
                    int.from_bytes(data[:2], "big") == TCPOPT_FASTOPEN_MAGIC:
                r.fastopen, r.fastopen_exp = _check_cookie(data[2:]), True
            else:
                unknown.append((kind, data))
        r.unknown = tuple(unknown)
        return r

    def options_bytes(self) -> bytes:
        """The options as Linux's tcp_options_write lays them out, padded to 4 bytes."""
        out = bytearray()
        if self.mss is not None:
            out += bytes((TCPOPT_MSS, 4)) + self.mss.to_bytes(2, "big")
        if self.timestamp is not None:
            # SACK-permitted rides in the timestamp's alignment NOPs when both are sent
            out += bytes((TCPOPT_SACK_PERM, 2) if self.sack_perm else (TCPOPT_NOP, TCPOPT_NOP))
            out += bytes((TCPOPT_TIMESTAMP, 10))
            out += self.timestamp[0].to_bytes(4, "big") + self.timestamp[1].to_bytes(4, "big")
        elif self.sack_perm:
            out += bytes((TCPOPT_NOP, TCPOPT_NOP, TCPOPT_SACK_PERM, 2))
        if self.wscale is not None:
            out += bytes((TCPOPT_NOP, TCPOPT_WINDOW, 3, self.wscale))
        if self.sack:
            if len(self.sack) > TCP_NUM_SACKS:
                raise WireError(f"tcp: {len(self.sack)} SACK blocks, at most {TCP_NUM_SACKS}")
            out += bytes((TCPOPT_NOP, TCPOPT_NOP, TCPOPT_SACK, 2 + 8 * len(self.sack)))
            for start, end in self.sack:
                out += start.to_bytes(4, "big") + end.to_bytes(4, "big")
        if self.fastopen is not None:
            cookie = _check_cookie(bytes(self.fastopen))
            if self.fastopen_exp:
                out += bytes((TCPOPT_EXP, 4 + len(cookie))) + TCPOPT_FASTOPEN_MAGIC.to_bytes(2, "big")
            else:
                out += bytes((TCPOPT_FASTOPEN, 2 + len(cookie)))
            out += cookie
            out += bytes((TCPOPT_NOP,)) * (-len(out) % 4)
        for kind, data in self.unknown:
            if not 2 <= len(data) + 2 <= 255:
                raise WireError(f"tcp option {kind}: {len(data)} bytes of data")
            out += bytes((kind, len(data) + 2)) + data
        out += bytes(-len(out) % 4)     # EOL padding (RFC 9293 3.1)
        if len(out) > TCP_MAX_OPTLEN:
            raise WireError(f"tcp: {len(out)} bytes of options, at most {TCP_MAX_OPTLEN}")
        return bytes(out)

    @property
    def header_len(self) -> int:
        return TCP_HLEN + len(self.options_bytes())

    def emit(self, buf, saddr=None, daddr=None, payload=None, partial=False) -> None:
        """Write the header into buf[:header_len].

        The checksum covers the header and the payload: `payload` if given,
        else everything in buf after the header. partial=True writes only the
        pseudo-header sum (CHECKSUM_PARTIAL). Without saddr/daddr the check
        field is left 0.
        """
        opts = self.options_bytes()
        hl = TCP_HLEN + len(opts)
        p = TcpPacket.unchecked(buf)
        need(p.buf, hl, "tcp emit")
        p.source = self.source
        p.dest = self.dest
        p.seq = self.seq
        p.ack_seq = self.ack_seq
        p.doff = hl // 4
        p.flags = self.flags
        p.window = self.window
        p.check = 0
        p.urg_ptr = self.urg_ptr
        p.buf[TCP_HLEN:hl] = opts
        if saddr is None:
            return
        if payload is None:
            seg, extra = p.buf, None
        else:
            seg, extra = p.buf[:hl], payload
        if partial:
            p.check = l4_partial_check(saddr, daddr, IPPROTO_TCP,
                                       len(seg) + (0 if extra is None else len(extra)))
        else:
            p.check = l4_checksum(saddr, daddr, IPPROTO_TCP, seg, extra)
