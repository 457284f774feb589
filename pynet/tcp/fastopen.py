"""TCP Fast Open (RFC 7413; Linux's net/ipv4/tcp_fastopen.c and the Fast
Open parts of tcp_output.c, tcp_input.c and tcp_metrics.c).

Client: a SYN asks for a cookie with an empty option; the server's SYN-ACK
brings one, cached per destination with the server's MSS. Later SYNs carry
the cookie and as much data as fits (tcp_send_syn_data). Data the SYN-ACK
does not acknowledge is sent again right after the handshake; a SYN that
times out is retried without data or option, and a destination whose
SYN-data keeps getting lost is left alone for a while (RFC 7413 §4.1.3.1,
middleboxes that drop SYNs with data).

Server: a listener with a Fast Open queue (TCP_FASTOPEN qlen) answers a
cookie request with a cookie, a keyed MAC of the client's and server's
addresses (RFC 7413 §4.1.2); a valid cookie with data makes the child at
once, in SYN_RECV with the data queued and readable after accept(), and the
SYN-ACK acknowledges it. An invalid cookie gets a fresh one and the data is
not taken. Pending Fast Open children are bounded by qlen (§5.1).

Kind 34 is sent; kind 34 and the experimental kind 254 (magic 0xF989,
RFC 6994) are read, and a server answers in the form it was asked in.
"""
import errno
import hashlib
import os
from collections import OrderedDict

from pynet.skbuff import SKB
from pynet.timer import Timer
from pynet.tcp import tcp_input as inp
from pynet.tcp import tcp_output as out
from pynet.tcp.tcp import (
    MAX_TCP_HEADER, MAX_TCP_OPTION_SPACE, TCP_SYNACK_RETRIES, TCPCB_LOST, TCPHDR_ACK, TCPHDR_PSH,
    TCPHDR_SYN, TcpSkbCb, TcpState, seq_add,
)

# net.ipv4.tcp_fastopen bits (Documentation/networking/ip-sysctl.rst)
TFO_CLIENT_ENABLE = 0x1
TFO_SERVER_ENABLE = 0x2
TFO_CLIENT_NO_COOKIE = 0x4
TFO_SERVER_COOKIE_NOT_REQD = 0x200

# the user API's numbers, as in Linux's uapi headers
MSG_FASTOPEN = 0x20000000
TCP_FASTOPEN = 23
TCP_FASTOPEN_CONNECT = 30
TCP_FASTOPEN_KEY = 33
TCP_FASTOPEN_NO_COOKIE = 34
TCPI_OPT_SYN_DATA = 32              # tcp_info.tcpi_options: our SYN's data was acknowledged

# tcp_info.tcpi_fastopen_client_fail
TFO_STATUS_UNSPEC = 0
TFO_COOKIE_UNAVAILABLE = 1
TFO_DATA_NOT_ACKED = 2
TFO_SYN_RETRANSMITTED = 3

TCP_FASTOPEN_KEY_LENGTH = 16
TCP_FASTOPEN_COOKIE_SIZE = 8        # what Linux issues (RFC 7413 §4.1.1 allows 4..16)
TFO_CACHE_MAX = 1024                # destinations remembered (Linux bounds tcp_metrics too)
TFO_SYN_LOSS_BACKOFF = 60.0         # seconds, shifted left by the count of SYN losses


class FastOpenRequest:
    """tcp_fastopen_request: what the next SYN carries. cookie: None (no
    option), b"" (a cookie request) or the cookie; copied: data bytes sent in it."""

    __slots__ = ("data", "cookie", "copied")

    def __init__(self, data=b""):
        self.data = bytes(data)
        self.cookie = None
        self.copied = 0


class CookieCacheEntry:
    """The Fast Open part of a tcp_metrics entry for one destination."""

    __slots__ = ("mss", "cookie", "exp", "syn_loss", "last_syn_loss")

    def __init__(self):
        self.mss = 0
        self.cookie = None
        self.exp = False            # ask in the experimental form (the 34 request went unanswered)
        self.syn_loss = 0
        self.last_syn_loss = 0.0


class TcpFastOpenContext:
    """tcp_fastopen_context: the server's cookie key and the previous one,
    which is still accepted so a rotation does not void issued cookies."""

    def __init__(self, key, backup=None):
        for k in (key, backup):
            if k is not None and len(k) != TCP_FASTOPEN_KEY_LENGTH:
                raise OSError(errno.EINVAL, "a Fast Open key is 16 bytes")
        self.keys = (bytes(key),) + ((bytes(backup),) if backup is not None else ())

    def cookie(self, saddr, daddr, i=0):
        """The cookie for a SYN from saddr to daddr (Linux: SipHash of the two
        addresses; here keyed BLAKE2s, also a PRF)."""
        msg = saddr.to_bytes(4, "big") + daddr.to_bytes(4, "big")
        return hashlib.blake2s(msg, key=self.keys[i], digest_size=TCP_FASTOPEN_COOKIE_SIZE).digest()

    def check(self, cookie, saddr, daddr):
        """0: invalid; 1: made with the primary key; 2: with the backup key."""
        for i in range(len(self.keys)):
            if cookie == self.cookie(saddr, daddr, i):
                return i + 1
        return 0


class TcpFastOpenNet:
    """A stack's Fast Open state: the sysctl, the server key, the client's
    cookie cache."""

    def __init__(self, net):
        self.net = net
        self.sysctl = TFO_CLIENT_ENABLE          # Linux's default: client on, server off
        self.ctx = TcpFastOpenContext(os.urandom(TCP_FASTOPEN_KEY_LENGTH))
        self.cache = OrderedDict()               # daddr -> CookieCacheEntry, least recent first

    def cache_entry(self, daddr, create=False):
        e = self.cache.get(daddr)
        if e is None and create:
            e = self.cache[daddr] = CookieCacheEntry()
            if len(self.cache) > TFO_CACHE_MAX:
                self.cache.popitem(last=False)
        if e is not None:
            self.cache.move_to_end(daddr)
        return e


def tcp_fastopen_net(net):
    """The stack's Fast Open state, made on first use."""
    fo = getattr(net, "tcp_fastopen", None)
    if fo is None:
        fo = net.tcp_fastopen = TcpFastOpenNet(net)
    return fo


def _count(net, field):
    net.mib.tcpext.inc(field)


class FastOpenQueue:
    """fastopen_queue of a listener: TCP_FASTOPEN's qlen, its own key if
    TCP_FASTOPEN_KEY was set on it, and the children still in SYN_RECV."""

    def __init__(self, max_qlen):
        self.max_qlen = max_qlen
        self.ctx = None
        self.pending = []

    def qlen(self):
        self.pending = [c for c in self.pending if c.state == TcpState.SYN_RECV]
        return len(self.pending)


# -- options a user sets --------------------------------------------------------------------
def tcp_fastopen_listen(sk, qlen):
    """setsockopt(TCP_FASTOPEN, qlen): before or after listen()."""
    if sk.state not in (TcpState.CLOSE, TcpState.LISTEN):
        raise OSError(errno.EINVAL, "Fast Open is for a listener")
    if qlen < 0:
        raise OSError(errno.EINVAL, "negative qlen")
    if sk.fastopenq is None:
        sk.fastopenq = FastOpenQueue(qlen)
    sk.fastopenq.max_qlen = qlen


def tcp_fastopen_set_key(net, key, sk=None):
    """TCP_FASTOPEN_KEY (on a listener: its own key; else the stack's, as
    the sysctl tcp_fastopen_key): 16 bytes, or 32 = primary then backup."""
    key = bytes(key)
    if len(key) not in (TCP_FASTOPEN_KEY_LENGTH, 2 * TCP_FASTOPEN_KEY_LENGTH):
        raise OSError(errno.EINVAL, "a Fast Open key is 16 or 32 bytes")
    ctx = TcpFastOpenContext(key[:16], key[16:] or None)
    if sk is None:
        tcp_fastopen_net(net).ctx = ctx
    else:
        if sk.fastopenq is None:
            sk.fastopenq = FastOpenQueue(0)
        sk.fastopenq.ctx = ctx


def tcp_fastopen_rotate_key(net, key, sk=None):
    """A new primary key; the current primary becomes the backup."""
    cur = _ctx(net, sk).keys[0]
    tcp_fastopen_set_key(net, bytes(key) + cur, sk)


def tcp_fastopen_get_key(net, sk=None):
    return b"".join(_ctx(net, sk).keys)


def _ctx(net, sk):
    if sk is not None and sk.fastopenq is not None and sk.fastopenq.ctx is not None:
        return sk.fastopenq.ctx
    return tcp_fastopen_net(net).ctx


def tcp_sock_set_fastopen_connect(sk, on):
    """TCP_FASTOPEN_CONNECT: connect() returns at once, the first send rides in the SYN."""
    if on and not tcp_fastopen_net(sk.net).sysctl & TFO_CLIENT_ENABLE:
        raise OSError(errno.EOPNOTSUPP, "Fast Open client disabled")
    if sk.state != TcpState.CLOSE:
        raise OSError(errno.EINVAL, "already connecting")
    sk.fastopen_connect = bool(on)


def tcpi_options_fastopen(sk):
    """tcp_info.tcpi_options bit TCPI_OPT_SYN_DATA."""
    return TCPI_OPT_SYN_DATA if sk.syn_data_acked else 0


# -- client -----------------------------------------------------------------------------------
def tcp_fastopen_cookie_check(sk):
    """May the SYN carry data? Returns (ok, cookie, mss): cookie None means no
    option at all, b"" a cookie request; mss is the server's cached MSS."""
    fo = tcp_fastopen_net(sk.net)
    e = fo.cache_entry(sk.daddr)
    if e is not None and e.syn_loss > 1 and \
            sk.tcp_mstamp < e.last_syn_loss + (TFO_SYN_LOSS_BACKOFF * (1 << min(e.syn_loss, 10))):
        return False, None, 0               # recurring SYN-data losses: plain SYNs for a while
    mss = e.mss if e is not None else 0
    if fo.sysctl & TFO_CLIENT_NO_COOKIE or sk.fastopen_no_cookie:
        return True, None, mss
    if e is not None and e.cookie:
        sk.syn_fastopen_exp = e.exp
        return True, e.cookie, mss
    sk.syn_fastopen_exp = e is not None and e.exp
    return False, b"", mss


def tcp_fastopen_defer_connect(sk):
    """connect() with TCP_FASTOPEN_CONNECT: with a cookie the SYN waits for
    the first send (True); without one it goes now with a cookie request."""
    if not sk.fastopen_connect or sk.fastopen_req is not None:
        return False
    ok, cookie, _ = tcp_fastopen_cookie_check(sk)
    if ok:
        sk.defer_connect = True
        return True
    sk.fastopen_req = FastOpenRequest()
    return False


def tcp_sendmsg_fastopen(sk, data, now, daddr=None, dport=None):
    """sendto(data, MSG_FASTOPEN, addr) on an unconnected socket, or the first
    send after a deferred TCP_FASTOPEN_CONNECT: connect with data in the SYN.
    Returns the bytes the SYN carries (0: no cookie yet, the SYN asked for
    one; the caller sends the data once connected)."""
    from pynet.tcp.tcp_ipv4 import tcp_v4_connect
    if not tcp_fastopen_net(sk.net).sysctl & TFO_CLIENT_ENABLE:
        raise OSError(errno.EOPNOTSUPP, "Fast Open client disabled")
    if sk.fastopen_req is not None:
        raise OSError(errno.EALREADY, "Fast Open already in progress")
    sk.fastopen_req = FastOpenRequest(data)
    try:
        if sk.defer_connect:
            sk.defer_connect = False
            sk.tcp_mstamp = now
            out.tcp_connect(sk)
        else:
            if daddr is None:
                raise OSError(errno.EDESTADDRREQ, "destination address required")
            tcp_v4_connect(sk, daddr, dport, now)
        return sk.fastopen_req.copied
    finally:
        sk.fastopen_req = None


def tcp_send_syn_data(sk, syn):
    """tcp_connect's Fast Open branch: with a cookie, send the SYN with the
    cookie and as much data as fits; keep the SYN and the data as two skbs
    on the retransmit queue so a SYN retry goes without data. Without one,
    a plain SYN with a cookie request."""
    fo = sk.fastopen_req
    sk.syn_fastopen = True
    ok, cookie, mss = tcp_fastopen_cookie_check(sk)
    fo.cookie = cookie
    if ok:
        if mss:
            sk.rx_opt.mss_clamp = mss
        out.tcp_sync_mss(sk, sk.pmtu)
        # room for middleboxes' options, as Linux reserves (the cost is SYN data)
        space = min(sk.pmtu - sk.af_ops.net_header_len - 20, sk.rx_opt.mss_clamp)
        if sk.rx_opt.user_mss:
            space = min(space, sk.rx_opt.user_mss)
        space = max(min(space - MAX_TCP_OPTION_SPACE, len(fo.data)), 0)
        syn_data = SKB(MAX_TCP_HEADER + space)
        syn_data.reserve(MAX_TCP_HEADER)
        syn_data.put_data(fo.data[:space])
        seq = syn.cb.seq
        syn_data.cb = TcpSkbCb(seq, seq_add(seq, 1 + space), TCPHDR_SYN)
        sk.sk_wmem_queued += syn_data.truesize
        sk.write_seq = sk.pushed_seq = sk.snd_nxt = syn_data.cb.end_seq
        out.tcp_transmit_skb(sk, syn_data)
        syn.cb.tx_time = syn.cb.first_tx = syn_data.cb.tx_time
        # the SYN itself is the skb already queued: keep only the data here
        syn_data.cb.seq = seq_add(seq, 1)
        syn_data.cb.tcp_flags = TCPHDR_ACK | TCPHDR_PSH
        sk.rtx_queue.append(syn_data)
        sk.packets_out += 1
        sk.syn_data = space > 0
        fo.copied = space
    else:
        sk.fastopen_client_fail = TFO_COOKIE_UNAVAILABLE
        out.tcp_transmit_skb(sk, syn)
    fo.cookie = None                        # SYN retries carry no option


def tcp_fastopen_cache_set(sk, mss, cookie, syn_drop, try_exp):
    fo = tcp_fastopen_net(sk.net)
    e = fo.cache_entry(sk.daddr, create=True)
    if mss:
        e.mss = mss
    if cookie is not None and cookie[0]:
        e.cookie, e.exp = cookie
    elif try_exp and not e.cookie:
        e.exp = try_exp == 1
    if syn_drop:
        e.syn_loss += 1
        e.last_syn_loss = sk.tcp_mstamp
    else:
        e.syn_loss = 0


def tcp_rcv_fastopen_synack(sk, synack):
    """The SYN-ACK of a Fast Open attempt (after tcp_ack): cache the cookie
    and MSS; resend SYN data it did not acknowledge. True when data went out
    (it carries the handshake's ACK)."""
    tcb = synack.cb
    rtx = sk.rtx_queue
    data = rtx[0] if sk.syn_data and rtx else None
    cookie = tcb.fastopen
    syn_drop = False
    try_exp = 0
    retransmitted = sk.stats["RetransSegs"] > 0
    if not sk.syn_fastopen:
        cookie = None                        # unsolicited: ignored
    elif retransmitted:
        # the peer saw only our plain SYN retries: the SYN-data or its answer was lost
        syn_drop = cookie is None and data is not None
    elif cookie is None and not sk.syn_data:
        try_exp = 2 if sk.syn_fastopen_exp else 1
    tcp_fastopen_cache_set(sk, tcb.mss or 0, cookie, syn_drop, try_exp)
    if data is not None:
        sk.fastopen_client_fail = TFO_SYN_RETRANSMITTED if retransmitted else TFO_DATA_NOT_ACKED
        for skb in rtx:
            if not skb.cb.sacked & TCPCB_LOST:
                skb.cb.sacked |= TCPCB_LOST
                sk.lost_out += skb.cb.pcount
        out.tcp_xmit_retransmit_queue(sk)
        sk.retrans_stamp = None
        _count(sk.net, "TCPFastOpenActiveFail")
        return True
    sk.syn_data_acked = sk.syn_data
    if sk.syn_data_acked:
        _count(sk.net, "TCPFastOpenActive")
    return False


# -- server -----------------------------------------------------------------------------------
def tcp_fastopen_queue_check(listener):
    fq = listener.fastopenq
    if fq is None or fq.max_qlen == 0:
        return False
    if fq.qlen() >= fq.max_qlen:
        _count(listener.net, "TCPFastOpenListenOverflow")
        return False
    return True


def tcp_try_fastopen(listener, skb, req):
    """From tcp_conn_request, for every SYN to a listener. True: a child
    took the SYN's data and the SYN-ACK went from it. False: the normal
    path goes on, with req.tfo_cookie (if not None) in the SYN-ACK."""
    tcb = skb.cb
    net = listener.net
    foc = tcb.fastopen                       # None, or (cookie, exp)
    sysctl = tcp_fastopen_net(net).sysctl
    syn_data = len(skb) > 0
    if foc is not None and not foc[0]:
        _count(net, "TCPFastOpenCookieReqd")
    if not (sysctl & TFO_SERVER_ENABLE and (syn_data or foc is not None)
            and tcp_fastopen_queue_check(listener)):
        return False
    exp = foc[1] if foc is not None else False
    ctx = _ctx(net, listener)
    valid = 0
    if sysctl & TFO_SERVER_COOKIE_NOT_REQD:
        valid = 1
    elif foc is not None and foc[0]:
        valid = ctx.check(foc[0], tcb.saddr, tcb.daddr)
        if not valid:
            _count(net, "TCPFastOpenPassiveFail")
    if valid:
        child = tcp_fastopen_create_child(listener, skb, req)
        if child is not None:
            if valid == 2:                   # made with the old key: hand out the new one
                req.tfo_cookie, req.tfo_exp = ctx.cookie(tcb.saddr, tcb.daddr), exp
                _count(net, "TCPFastOpenPassiveAltKey")
            _count(net, "TCPFastOpenPassive")
            _fastopen_send_synack(listener, child, req)
            listener.sk_data_ready(listener)
            return True
        _count(net, "TCPFastOpenPassiveFail")
    if foc is not None:
        req.tfo_cookie, req.tfo_exp = ctx.cookie(tcb.saddr, tcb.daddr), exp
    return False


def tcp_fastopen_create_child(listener, skb, req):
    """The child for a SYN with a valid cookie: in SYN_RECV, hashed, on the
    accept queue, the SYN's data in its receive queue (readable before the
    handshake's ACK), ready to send (RFC 7413 §4.2.2)."""
    child = listener.af_ops.syn_recv_sock(listener, req, skb)
    if child is None:
        return None
    # no SYN-ACK was answered yet: no RTT sample (syn_recv_sock took one)
    child.srtt = None
    child.rttvar = 0.0
    child.rto = child.rto_initial
    child.fastopen_rsk = req
    tcb = skb.cb
    tcb.seq = seq_add(tcb.seq, 1)            # the SYN is not data
    tcb.tcp_flags &= ~TCPHDR_SYN
    if len(skb) or tcb.seq != tcb.end_seq:   # data, or a FIN with the SYN
        inp.tcp_queue_rcv(child, skb)
        child.syn_data_acked = True
    child.rcv_wup = child.rcv_nxt
    req.rcv_nxt = child.rcv_nxt
    inp.tcp_init_transfer(child)
    listener.fastopenq.pending.append(child)
    req.timer = Timer(listener.net.timers, lambda now: tcp_fastopen_synack_timer(child, req, now))
    child.sk_data_ready(child)
    return child


def _fastopen_send_synack(listener, child, req):
    from pynet.tcp.tcp_minisocks import tcp_send_synack
    tcp_send_synack(listener, req)
    req.timer.mod(listener.tcp_mstamp + child.rto_initial * (1 << req.num_retrans))


def tcp_fastopen_syn_again(child, tcb):
    """The client sent its SYN again (our SYN-ACK was lost): the child answers
    with the SYN-ACK, as tcp_check_req does for a request sock. True if it was that."""
    req = child.fastopen_rsk
    if (tcb.tcp_flags & (TCPHDR_SYN | TCPHDR_ACK)) != TCPHDR_SYN or tcb.seq != req.rcv_isn:
        return False
    from pynet.tcp.tcp_minisocks import tcp_send_synack
    req.listener.tcp_mstamp = child.tcp_mstamp
    tcp_send_synack(req.listener, req)
    return True


def tcp_fastopen_synack_timer(child, req, now):
    """The child's SYN-ACK was not answered: resend it with backoff, give
    up after TCP_SYNACK_RETRIES (tcp_fastopen_synack_timer)."""
    if child.state != TcpState.SYN_RECV:
        return
    listener = req.listener
    listener.tcp_mstamp = child.tcp_mstamp = now
    if req.num_retrans >= TCP_SYNACK_RETRIES:
        inp.tcp_write_err(child)
        return
    req.num_retrans += 1
    _fastopen_send_synack(listener, child, req)
