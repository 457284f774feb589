"""ICMP for IPv4 (RFC 792, RFC 1122 s3.2.2; net/ipv4/icmp.c) and ping sockets (net/ipv4/ping.c).

- Echo requests are answered (not when sent to a broadcast address:
  icmp_echo_ignore_broadcasts=1). `PingSocket` sends echo requests and
  records each reply with its round-trip time.
- `icmp_send` sends destination unreachable / time exceeded where Linux does:
  never about an ICMP error, a non-first fragment, a broadcast or multicast
  datagram, or a source that is not a host (RFC 1122 s3.2.2). Errors are
  rate limited by a global token bucket (net.ipv4.icmp_msgs_per_sec /
  icmp_msgs_burst) and one per destination (icmp_ratelimit, icmp_ratemask).
- Errors received are handed to the protocol of the quoted datagram
  (its err_handler, e.g. udp_err), after fragmentation-needed has lowered the
  path MTU to that destination (RFC 1191 s6.1).
"""
import errno
import os

from pynet import skbtrace
from pynet.checksum import csum_fold, csum_partial
from pynet.ip_output import ip_alloc_skb, ip_build_and_send_pkt
from pynet.route import RTN_BROADCAST
from pynet.skbuff import CHECKSUM_PARTIAL, CHECKSUM_UNNECESSARY
from pynet.sock import Sock
from pynet.wire import WireError
from pynet.wire.icmp import (ICMP_DEST_UNREACH, ICMP_ECHO, ICMP_ECHOREPLY, ICMP_FRAG_NEEDED,
                             ICMP_HLEN, ICMP_TIME_EXCEEDED, IcmpPacket)
from pynet.wire.ipv4 import IPPROTO_ICMP, IP_OFFSET, Ipv4Packet, ip_aton, ip_hdr

ICMP_PARAMETERPROB = 12
ICMP_SOURCE_QUENCH = 4
ICMP_INFO_TYPES = (ICMP_ECHOREPLY, ICMP_ECHO, 13, 14, 15, 16, 17, 18)   # not errors
IPTOS_PREC_INTERNETCONTROL = 0xC0
ICMP_ERR_ROOM = 576        # RFC 1812 s4.3.2.3: quote as much as fits in 576 bytes

XRLIM_BURST_FACTOR = 6

# icmp_err_convert: (errno, fatal) per destination-unreachable code.
ICMP_ERR_CONVERT = (
    (errno.ENETUNREACH, False), (errno.EHOSTUNREACH, False), (errno.ENOPROTOOPT, True),
    (errno.ECONNREFUSED, True), (errno.EMSGSIZE, False), (errno.EOPNOTSUPP, False),
    (errno.ENETUNREACH, True), (errno.EHOSTDOWN, True), (errno.ENONET, True),
    (errno.ENETUNREACH, True), (errno.EHOSTUNREACH, True), (errno.ENETUNREACH, False),
    (errno.EHOSTUNREACH, False), (errno.EHOSTUNREACH, True), (errno.EHOSTUNREACH, True),
    (errno.EHOSTUNREACH, True),
)


def icmp_err_convert(type, code):
    """(errno, fatal) for an ICMP error, as icmp_err_convert[] and the callers use it."""
    if type == ICMP_DEST_UNREACH:
        return ICMP_ERR_CONVERT[code] if code < len(ICMP_ERR_CONVERT) else (errno.EHOSTUNREACH, False)
    if type == ICMP_PARAMETERPROB:
        return errno.EPROTO, True
    return errno.EHOSTUNREACH, False           # time exceeded


class IcmpState:
    """Rate limits (global and per destination) and the ping sockets of one stack."""

    def __init__(self, net, msgs_per_sec=1000, msgs_burst=50, ratelimit=1.0,
                 ratemask=0x1818, max_peers=4096):
        self.net = net
        self.msgs_per_sec = msgs_per_sec
        self.msgs_burst = msgs_burst
        self.ratelimit = ratelimit
        self.ratemask = ratemask
        self.max_peers = max_peers
        self.global_credit = msgs_burst
        self.global_stamp = 0.0
        self.peers = {}            # daddr -> [tokens, last]  (inet_peer rate_tokens, rate_last)
        self.ping_socks = {}       # ident -> PingSocket

    def global_allow(self, now):
        """icmp_global_allow: a token bucket of msgs_per_sec, at most msgs_burst deep."""
        self.global_credit = min(self.msgs_burst,
                                 self.global_credit + (now - self.global_stamp) * self.msgs_per_sec)
        self.global_stamp = now
        if self.global_credit >= 1:
            self.global_credit -= 1
            return True
        return False

    def peer_allow(self, daddr, now):
        """inet_peer_xrlim_allow: one message per `ratelimit` s per peer, bursts of 6."""
        peer = self.peers.get(daddr)
        if peer is None:
            if len(self.peers) >= self.max_peers:
                self.peers.pop(next(iter(self.peers)))       # oldest peer forgotten
            peer = self.peers[daddr] = [XRLIM_BURST_FACTOR * self.ratelimit, now]
        tokens = peer[0]
        if now > peer[1]:
            tokens = min(tokens + (now - peer[1]), XRLIM_BURST_FACTOR * self.ratelimit)
            peer[1] = now
        if tokens >= self.ratelimit - 1e-9:      # float seconds stand in for jiffies
            peer[0] = tokens - self.ratelimit
            return True
        peer[0] = tokens
        return False


def _quoted_datagram(skb):
    """The datagram skb carries, from its IP header (skb.network_header) to its end."""
    nh = skb.network_header
    if nh < 0:
        return skb.tobytes()
    if nh < skb.data_offset:
        return skb.headroom_bytes()[nh:] + skb.tobytes()
    return skb.tobytes()[nh - skb.data_offset:]


def _icmp_xmit(net, sk, type, code, rest, body, saddr, daddr, rt, tos):
    skb = ip_alloc_skb(net, rt.dev, ICMP_HLEN + len(body))
    buf = skb.put(ICMP_HLEN + len(body))
    p = IcmpPacket.unchecked(buf)
    p.type = type
    p.code = code
    p.check = 0
    p.rest = rest
    buf[ICMP_HLEN:] = body
    p.check = csum_fold(csum_partial(buf))
    del buf, p
    net.mib.icmp.inc("OutMsgs")
    return ip_build_and_send_pkt(net, skb, sk, saddr, daddr, rt, IPPROTO_ICMP, tos=tos)


def icmp_send(net, skb_in, type, code, info=0):
    """Send an ICMP error about skb_in (its network_header at the offending IP header)."""
    if skbtrace.hook is not None:
        skbtrace.hook("icmp_send", skb_in)
    original = _quoted_datagram(skb_in)
    try:
        iph = Ipv4Packet.quoted(original)
    except WireError:
        return
    rt_in = skb_in.dst
    if rt_in is not None and rt_in.type == RTN_BROADCAST:
        return
    if iph.frag_off & IP_OFFSET:
        return                                 # only the first fragment draws errors
    saddr_in, daddr_in = iph.saddr, iph.daddr
    if saddr_in == 0 or saddr_in >> 28 >= 0xE or net.fib.is_broadcast(saddr_in):
        return
    if iph.protocol == IPPROTO_ICMP:
        ihl = iph.header_len
        if len(original) <= ihl or original[ihl] not in ICMP_INFO_TYPES:
            return                             # never an error about an error (RFC 1122 s3.2.2)
    now = net.now
    state = net.icmp
    if not state.global_allow(now):
        net.mib.icmp.inc("OutRateLimitGlobal")
        return
    if (1 << type) & state.ratemask and not state.peer_allow(saddr_in, now):
        net.mib.icmp.inc("OutRateLimitHost")
        return
    try:
        rt = net.fib.ip_route_output(saddr_in)
    except OSError:
        return
    saddr = daddr_in if net.fib.is_local(daddr_in) else rt.saddr
    body = original[:ICMP_ERR_ROOM - 20 - ICMP_HLEN]
    rest = info & 0xFFFF if (type, code) == (ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED) else 0
    if type == ICMP_DEST_UNREACH:
        net.mib.icmp.inc("OutDestUnreachs")
    elif type == ICMP_TIME_EXCEEDED:
        net.mib.icmp.inc("OutTimeExcds")
    _icmp_xmit(net, None, type, code, rest, body, saddr, saddr_in, rt,
               (iph.tos & 0x1E) | IPTOS_PREC_INTERNETCONTROL)


def icmp_rcv(net, skb):
    """The IPPROTO_ICMP handler: skb.data at the ICMP header."""
    if skbtrace.hook is not None:
        skbtrace.hook("icmp_rcv", skb)
    mib = net.mib.icmp
    mib.inc("InMsgs")
    if len(skb) < ICMP_HLEN:
        mib.inc("InErrors")
        return
    if (skb.ip_summed not in (CHECKSUM_UNNECESSARY, CHECKSUM_PARTIAL)
            and csum_fold(csum_partial(skb.data)) != 0):
        mib.inc("InCsumErrors")
        mib.inc("InErrors")
        return
    p = IcmpPacket(skb.data)
    type = p.type
    if type == ICMP_ECHO:
        mib.inc("InEchos")
        icmp_echo(net, skb, p)
    elif type == ICMP_ECHOREPLY:
        mib.inc("InEchoReps")
        ping_rcv(net, skb, p)
    elif type in (ICMP_DEST_UNREACH, ICMP_TIME_EXCEEDED, ICMP_PARAMETERPROB):
        mib.inc("InDestUnreachs" if type == ICMP_DEST_UNREACH else
                "InTimeExcds" if type == ICMP_TIME_EXCEEDED else "InParmProbs")
        code, info = p.code, p.mtu
        del p
        icmp_unreach(net, skb, type, code, info)


def icmp_echo(net, skb, p):
    """Answer an echo request with the same id, sequence and data (RFC 792)."""
    rt_in = skb.dst
    if rt_in.type == RTN_BROADCAST:
        return                                 # icmp_echo_ignore_broadcasts
    iph = ip_hdr(skb)
    saddr_in, daddr_in, tos = iph.saddr, iph.daddr, iph.tos
    try:
        rt = net.fib.ip_route_output(saddr_in, daddr_in)
    except OSError:
        return
    rest = p.rest
    body = bytes(p.payload)
    del p
    net.mib.icmp.inc("OutEchoReps")
    _icmp_xmit(net, None, ICMP_ECHOREPLY, 0, rest, body, daddr_in, saddr_in, rt, tos)


def icmp_unreach(net, skb, type, code, info):
    """An ICMP error: lower the path MTU if asked, then tell the protocol concerned."""
    skb.pull(ICMP_HLEN)
    try:
        inner = Ipv4Packet.quoted(skb.data)
    except WireError:
        net.mib.icmp.inc("InErrors")
        return
    ihl = inner.header_len
    if len(skb) < ihl + 8:
        net.mib.icmp.inc("InErrors")           # RFC 1122 s3.2.2: 8 bytes of the payload are needed
        return
    protocol, saddr, daddr = inner.protocol, inner.saddr, inner.daddr
    del inner
    if not net.fib.is_local(saddr):
        net.mib.icmp.inc("InErrors")           # about a datagram we did not send
        return
    if type == ICMP_DEST_UNREACH and code == ICMP_FRAG_NEEDED and info:
        net.fib.update_pmtu(daddr, info, net.now)
    icmp_socket_deliver(net, skb, protocol, type, code, info)


def icmp_socket_deliver(net, skb, protocol, type, code, info):
    prot = net.protocols.get(protocol)
    if prot is not None and prot[1] is not None:
        skb.reset_network_header()              # the quoted datagram's header
        prot[1](skb, type, code, info)


def icmp_local_error(net, skb, type, code, info):
    """A locally generated datagram could not go out: tell its protocol as if an
    ICMP error had come back (Linux sends itself the ICMP through loopback)."""
    if type == ICMP_DEST_UNREACH and code == ICMP_FRAG_NEEDED:
        daddr = Ipv4Packet.unchecked(_quoted_datagram(skb)).daddr
        net.fib.update_pmtu(daddr, info, net.now)
    data = _quoted_datagram(skb)
    protocol = data[9] if len(data) >= 20 else 0
    err_skb = ip_alloc_skb(net, None, len(data))
    err_skb.put_data(data)
    err_skb.sk = skb.sk
    icmp_socket_deliver(net, err_skb, protocol, type, code, info)


def icmp_link_failure(net, skb):
    """Neighbour resolution failed for skb (ipv4_link_failure): its sender gets EHOSTUNREACH."""
    if skbtrace.hook is not None:
        skbtrace.hook("ipv4_link_failure", skb)
    sk = skb.sk
    if sk is not None:
        sk.report_error(errno.EHOSTUNREACH)


# -- ping sockets ----------------------------------------------------------------

class PingSocket(Sock):
    """An ICMP echo socket (SOCK_DGRAM, IPPROTO_ICMP as Linux's ping.c), with RTTs.

        ping = PingSocket(stack, "198.18.0.1")
        ping.send(now)                 # echo request, seq 0, 1, ...
        stack.poll(now)                # ... replies arrive
        ping.replies                   # [(seq, rtt_seconds, ttl), ...]
    """

    def __init__(self, net, daddr, ident=None, payload=b"pynet-ping".ljust(56, b"."),
                 max_replies=65536):
        super().__init__(net, IPPROTO_ICMP, 2)
        self.daddr = ip_aton(daddr) if isinstance(daddr, str) else daddr
        table = net.icmp.ping_socks
        if ident is None:
            # ping_get_port: from a random start, the next free ident; all in use is EADDRINUSE
            start = net.rng.getrandbits(16)
            ident = next((i & 0xFFFF for i in range(start, start + 0x10000) if i & 0xFFFF not in table),
                         None)
            if ident is None:
                raise OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE))
        elif ident in table:
            raise OSError(errno.EADDRINUSE, "ping ident in use")
        self.ident = self.sport = ident
        table[ident] = self
        self.payload = payload
        self.seq = 0
        self.sent = {}             # seq -> send time, until the reply comes
        self.replies = []
        self.max_replies = max_replies
        self.duplicates = 0

    def send(self, now=None):
        """Send the next echo request; returns its sequence number."""
        self.raise_pending_error()
        net = self.net
        now = net.now if now is None else now
        rt = net.fib.ip_route_output(self.daddr)
        seq = self.seq
        self.seq = (seq + 1) & 0xFFFF
        self.sent[seq] = now
        net.mib.icmp.inc("OutEchos")
        _icmp_xmit(net, self, ICMP_ECHO, 0, (self.ident << 16) | seq, self.payload,
                   rt.saddr, self.daddr, rt, self.tos)
        return seq

    def close(self):
        self.net.icmp.ping_socks.pop(self.ident, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def ping_rcv(net, skb, p):
    sk = net.icmp.ping_socks.get(p.id)
    if sk is None:
        return
    iph = ip_hdr(skb)
    if iph.saddr != sk.daddr:
        return
    sent = sk.sent.pop(p.seq, None)
    if sent is None:
        sk.duplicates += 1
        return
    if len(sk.replies) < sk.max_replies:
        sk.replies.append((p.seq, net.now - sent, iph.ttl))
    else:
        sk.sk_drops += 1                       # the record is full: counted, as a socket's drops
    if sk.sk_data_ready is not None:
        sk.sk_data_ready(sk)
