"""TCP over IPv4 (Linux's net/ipv4/tcp_ipv4.c and inet_hashtables.c):
the socket tables, demultiplexing by 4-tuple, connect, the passive-open
entry points, RSTs for segments no socket wants, and the address-family ops
table `ipv4_specific` through which TCP reaches IP.
"""
import errno

from pynet.ip_output import ip_queue_xmit
from pynet.skbuff import CHECKSUM_PARTIAL, CHECKSUM_UNNECESSARY, SKB
from pynet.sock import sk_setup_caps
from pynet.timer import Timer
from pynet.tcp import fastopen
from pynet.tcp import tcp_input as inp
from pynet.tcp import tcp_output as out
from pynet.tcp.secure_seq import secure_ipv4_port_ephemeral, secure_tcp_seq, secure_tcp_ts_off
from pynet.tcp.sock import InetConnectionSockAfOps, TcpRequestSock, TcpSock, inet_twsk_kill
from pynet.tcp.tcp import (
    MAX_TCP_HEADER, TCP_GSO_HEADROOM, TCPHDR_ACK, TCPHDR_FIN, TCPHDR_RST, TCPHDR_SYN, TCP_MSS_DEFAULT,
    TCP_MAX_WSCALE, TcpSkbCb, TcpState, before, seq_add,
)
from pynet.tcp.tcp_minisocks import tcp_check_req, tcp_create_openreq_child, tcp_send_synack, \
    tcp_synack_timer, tcp_timewait_state_process, tcp_timewait_syn_isn
from pynet.wire import WireError
from pynet.wire.icmp import ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED
from pynet.wire.ipv4 import IPPROTO_TCP, l4_checksum, l4_partial_check
from pynet.wire.tcp import TCP_HLEN, TCPOPT_MSS, TCPOPT_NOP, TCPOPT_SACK_PERM, TCPOPT_TIMESTAMP, \
    TCPOPT_WINDOW, TcpPacket, TcpRepr, tcp_hdr_parse, tcp_hdr_push

_TIME_WAIT = TcpState.TIME_WAIT     # module constants: an enum member read costs ~5x more
_LISTEN = TcpState.LISTEN
_CLOSE = TcpState.CLOSE
_SYN_SENT = TcpState.SYN_SENT

# RFC 6056 §2.1: the IANA range; Linux's default ip_local_port_range is 32768-60999
EPHEMERAL_LOW = 32768
EPHEMERAL_HIGH = 60999


class TcpHashinfo:
    """The connection tables of one stack (Linux's tcp_hashinfo): ehash by
    4-tuple, listeners by local address and port, ports in use, and the
    control socket that answers segments nobody owns."""

    def __init__(self, net, af_ops):
        self.net = net
        self.af_ops = af_ops
        self.ehash = {}         # (laddr, lport, raddr, rport) -> sk
        self.lhash = {}         # (laddr or 0, lport) -> listening sk
        self.bhash = {}         # lport -> number of sockets using it
        self.next_ephemeral = 0
        self.ctl_sk = TcpSock(net, af_ops)   # net->ipv4.tcp_sk: RSTs and SYN-ACKs
        self.stats = {"InSegs": 0, "InErrs": 0, "OutRsts": 0, "NoPort": 0}

    def send_reply(self, saddr, daddr, sport, dport, skb, now):
        """Send a segment no full socket owns (a RST, a SYN-ACK) from the
        control socket, as ip_send_unicast_reply does."""
        ctl = self.ctl_sk
        ctl.tcp_mstamp = now
        ctl.saddr, ctl.daddr, ctl.sport, ctl.dport = saddr, daddr, sport, dport
        dst = ctl.sk_dst_cache
        if dst is not None and (dst.daddr != daddr or dst.saddr != saddr):
            ctl.sk_dst_cache = None     # kept only for the same peer: replies come in runs
        self.af_ops.send_check(ctl, skb)
        return self.af_ops.queue_xmit(ctl, skb)

    def lookup(self, saddr, sport, daddr, dport):
        """__inet_lookup: an established (or half-closed) socket first, then a listener."""
        sk = self.ehash.get((daddr, dport, saddr, sport))
        if sk is not None:
            return sk
        return self.lookup_listener(daddr, dport)

    def lookup_listener(self, daddr, dport):
        """inet_lookup_listener: the socket listening on daddr:dport, or on the wildcard."""
        return self.lhash.get((daddr, dport)) or self.lhash.get((0, dport))

    def hash(self, sk):
        key = (sk.saddr, sk.sport, sk.daddr, sk.dport)
        if key in self.ehash:
            raise OSError(errno.EADDRINUSE, "4-tuple in use")
        self.ehash[key] = sk
        sk.hashinfo = self
        self.bhash[sk.sport] = self.bhash.get(sk.sport, 0) + 1

    def listen_hash(self, sk):
        key = (sk.saddr, sk.sport)
        if key in self.lhash:
            raise OSError(errno.EADDRINUSE, "address in use")
        self.lhash[key] = sk
        sk.hashinfo = self
        self.bhash[sk.sport] = self.bhash.get(sk.sport, 0) + 1

    def unhash(self, sk):
        if sk.state == _LISTEN or self.lhash.get((sk.saddr, sk.sport)) is sk:
            removed = self.lhash.pop((sk.saddr, sk.sport), None)
        else:
            key = (sk.saddr, sk.sport, sk.daddr, sk.dport)
            removed = self.ehash.pop(key, None) if self.ehash.get(key) is sk else None
        if removed is not None:
            n = self.bhash.get(sk.sport, 1) - 1
            if n:
                self.bhash[sk.sport] = n
            else:
                self.bhash.pop(sk.sport, None)

    def inet_hash_connect(self, sk):
        """Pick a local port (RFC 6056 §3.3.3, Algorithm 3): a per-destination
        keyed offset plus a global counter, so ports are unpredictable to an
        off-path attacker yet spread sequentially per destination."""
        num = EPHEMERAL_HIGH - EPHEMERAL_LOW + 1
        offset = secure_ipv4_port_ephemeral(sk.saddr, sk.daddr, sk.dport)
        for i in range(num):
            port = EPHEMERAL_LOW + (self.next_ephemeral + offset + i) % num
            if (sk.saddr, port, sk.daddr, sk.dport) in self.ehash or \
                    (sk.saddr, port) in self.lhash or (0, port) in self.lhash:
                continue
            self.next_ephemeral += i + 1
            sk.sport = port
            self.hash(sk)
            return port
        raise OSError(errno.EADDRNOTAVAIL, "no free local port")


# -- segments in ------------------------------------------------------------------------
# The options of every Linux SYN (tcp_options_write's order, which pynet's
# SYNs share): MSS, SACK-permitted in the timestamp's alignment, timestamp,
# NOP, window scale. Offsets of the values within the options.
_SYN_LAYOUT = bytes((TCPOPT_MSS, 4, 0, 0, TCPOPT_SACK_PERM, 2, TCPOPT_TIMESTAMP, 10)) + \
    bytes(8) + bytes((TCPOPT_NOP, TCPOPT_WINDOW, 3, 0))
_SYN_LAYOUT_FIXED = ((0, 2), (4, 8), (16, 19))     # byte ranges that must match
_SYN_MSS, _SYN_WSCALE = 2, 19


def tcp_parse_syn_options(skb, doff, tcb):
    """What a SYN negotiates (MSS, window scale, SACK-permitted, Fast Open)
    into tcb; tcp_hdr_parse has validated every option already. The usual
    layout is recognised by its fixed bytes, as Linux's
    tcp_parse_aligned_timestamp recognises the usual timestamp-only one;
    any other goes through TcpRepr."""
    opts = bytes(skb.data[TCP_HLEN:doff])
    if len(opts) == len(_SYN_LAYOUT) and all(opts[a:b] == _SYN_LAYOUT[a:b]
                                            for a, b in _SYN_LAYOUT_FIXED):
        tcb.mss = (opts[_SYN_MSS] << 8) | opts[_SYN_MSS + 1]
        tcb.wscale, tcb.sack_ok = opts[_SYN_WSCALE], True
        return
    syn = TcpRepr.parse(TcpPacket(skb.data))
    tcb.mss, tcb.wscale, tcb.sack_ok = syn.mss, syn.wscale, syn.sack_perm
    if syn.fastopen is not None:
        tcb.fastopen = (syn.fastopen, syn.fastopen_exp)


def tcp_v4_rcv(hashinfo, skb, now):
    """The IPv4 protocol handler: skb.data at the TCP header, network_header
    set. The header is read in C (tcp_hdr_parse), a SYN's options by
    tcp_parse_syn_options. Malformed segments and bad checksums are counted and
    dropped; segments for no socket get a RST (RFC 9293 §3.10.7.1)."""
    hashinfo.stats["InSegs"] += 1
    nh = skb.network_header
    head = skb.headroom_bytes()
    try:
        saddr = int.from_bytes(head[nh + 12:nh + 16], "big")
        daddr = int.from_bytes(head[nh + 16:nh + 20], "big")
        sport, dport, seq, ack_seq, flags, window, doff, plen, ts, sack = tcp_hdr_parse(skb)
        if skb.ip_summed not in (CHECKSUM_UNNECESSARY, CHECKSUM_PARTIAL) and \
                l4_checksum(saddr, daddr, IPPROTO_TCP, skb.data):
            raise WireError("tcp: bad checksum")
        tcb = TcpSkbCb(seq, seq_add(seq, plen + (flags & TCPHDR_SYN and 1) +
                                    (flags & TCPHDR_FIN)), flags, ack_seq, window)
        if flags & TCPHDR_SYN:
            tcp_parse_syn_options(skb, doff, tcb)
    except ValueError:                 # WireError, or an skb shorter than its headers
        hashinfo.stats["InErrs"] += 1
        return
    if ts is not None:
        tcb.tsval, tcb.tsecr = ts
    tcb.sack = sack
    tcb.saddr, tcb.daddr, tcb.sport, tcb.dport = saddr, daddr, sport, dport
    skb.pull(doff)
    skb.cb = tcb
    tcp_v4_deliver(hashinfo, skb, tcb, now)


def tcp_v4_deliver(hashinfo, skb, tcb, now):
    """Demultiplex a parsed segment to its socket and run it (the second
    half of tcp_v4_rcv)."""
    sk = hashinfo.lookup(tcb.saddr, tcb.sport, tcb.daddr, tcb.dport)
    if sk is None:
        hashinfo.stats["NoPort"] += 1
        tcp_v4_send_reset(hashinfo, skb, now)
        return
    sk.tcp_mstamp = now
    state = sk.state
    if state == _TIME_WAIT:
        isn = tcp_timewait_syn_isn(sk, tcb)
        listener = hashinfo.lookup_listener(tcb.daddr, tcb.dport) if isn is not None else None
        if listener is None:
            tcp_timewait_state_process(sk, skb)
            return
        # TCP_TW_SYN: the old connection is over for good, the listener
        # answers with an ISN past it (RFC 6191 §2)
        inet_twsk_kill(sk)
        tcb.tw_isn = isn
        sk = listener
        sk.tcp_mstamp = now
        state = _LISTEN
    if state == _LISTEN:
        req = sk.syn_queue.get((tcb.saddr, tcb.sport))
        if req is not None:
            child, rst = tcp_check_req(sk, req, skb)
            if rst:
                tcp_v4_send_reset(hashinfo, skb, now)
            if child is not None:
                sk.sk_data_ready(sk)       # the accept queue gained a child (tcp_child_process)
            return
    if inp.tcp_rcv_state_process(sk, skb):
        tcp_v4_send_reset(hashinfo, skb, now)


def tcp_v4_send_reset(hashinfo, skb, now):
    """RST in reply to a segment (RFC 9293 §3.10.7.1): never to a RST; seq
    from its ACK, else ACK everything it occupied."""
    tcb = skb.cb
    if tcb.tcp_flags & TCPHDR_RST:
        return
    if tcb.tcp_flags & TCPHDR_ACK:
        seq, ack, flags = tcb.ack_seq, 0, TCPHDR_RST
    else:
        seq, ack, flags = 0, tcb.end_seq, TCPHDR_RST | TCPHDR_ACK
    rst = SKB(MAX_TCP_HEADER)
    rst.reserve(MAX_TCP_HEADER)
    tcp_hdr_push(rst, tcb.dport, tcb.sport, seq, ack, flags, 0, 0, 0, partial=True)
    hashinfo.stats["OutRsts"] += 1
    hashinfo.send_reply(tcb.daddr, tcb.saddr, tcb.dport, tcb.sport, rst, now)


# -- segments out ------------------------------------------------------------------------
def tcp_v4_send_check(sk, skb):
    """Leave the checksum to the device or to software GSO
    (CHECKSUM_PARTIAL for every segment, as Linux does; validate_xmit_skb
    finishes it in C where the device cannot): the check field holds the
    IPv4 pseudo-header sum."""
    skb.set_partial(skb.data_offset, 16)
    check = l4_partial_check(sk.saddr, sk.daddr, IPPROTO_TCP, len(skb))
    skb.data[16:18] = check.to_bytes(2, "big")



# -- connect and passive open -------------------------------------------------------------
def tcp_v4_connect(sk, daddr, dport, now):
    """Active open (RFC 9293 §3.10.1): route, local port, ISN, then the SYN."""
    if sk.state != _CLOSE:
        raise OSError(errno.EISCONN if sk.state != _SYN_SENT else errno.EALREADY,
                      "already connected")
    sk.tcp_mstamp = now
    sk.daddr, sk.dport = daddr, dport
    sk.af_ops.rebuild_header(sk)        # route: saddr, dst, pmtu, TSO ability
    if sk.sport:
        sk.hashinfo.hash(sk)
    else:
        sk.hashinfo.inet_hash_connect(sk)
    sk.iss = secure_tcp_seq(sk.saddr, sk.daddr, sk.sport, sk.dport, now)
    sk.write_seq = sk.iss
    sk.high_seq = sk.iss
    sk.ts_offset = secure_tcp_ts_off(sk.saddr, sk.daddr)
    sk.state = _SYN_SENT
    if fastopen.tcp_fastopen_defer_connect(sk):
        return                          # TCP_FASTOPEN_CONNECT: the SYN leaves with the first send
    out.tcp_connect(sk)


def tcp_conn_request(listener, skb):
    """A SYN for a listener (RFC 9293 §3.10.7.2): a request sock in the SYN
    queue and a SYN-ACK. A full SYN queue or accept queue drops the SYN
    (the peer retries), counted in listen_drops."""
    tcb = skb.cb
    if len(listener.syn_queue) >= listener.max_syn_backlog or \
            len(listener.accept_queue) >= listener.backlog:
        if len(listener.accept_queue) >= listener.backlog:
            listener.listen_overflows += 1
        listener.listen_drops += 1
        return
    now = listener.tcp_mstamp
    req = TcpRequestSock(listener)
    req.saddr, req.daddr, req.sport, req.dport = tcb.daddr, tcb.saddr, tcb.dport, tcb.sport
    req.rcv_isn = tcb.seq
    req.snt_isn = tcb.tw_isn or secure_tcp_seq(req.saddr, req.daddr, req.sport, req.dport, now)
    req.mss = tcb.mss if tcb.mss else TCP_MSS_DEFAULT
    req.window = tcb.window                       # a SYN's window is not scaled
    req.wscale_ok = tcb.wscale is not None and listener.wscale_enabled
    req.snd_wscale = min(tcb.wscale, TCP_MAX_WSCALE) if req.wscale_ok else 0
    req.sack_ok = bool(tcb.sack_ok) and listener.sack_enabled
    req.tstamp_ok = tcb.tsval is not None and listener.tstamp_enabled
    req.ts_recent = tcb.tsval if req.tstamp_ok else 0
    req.ts_off = secure_tcp_ts_off(req.saddr, req.daddr)
    req.rcv_wnd, req.rcv_wscale = out.tcp_select_initial_window(
        out.tcp_space(listener), listener.window_clamp, req.wscale_ok, listener.scaling_ratio)
    if fastopen.tcp_try_fastopen(listener, skb, req):
        return                          # a Fast Open child took the SYN and its data
    listener.syn_queue[(req.daddr, req.dport)] = req
    tcp_send_synack(listener, req)
    req.timer = Timer(listener.net.timers, lambda t: tcp_synack_timer(listener, req, t))
    req.timer.mod(now + listener.rto_initial)


def tcp_v4_syn_recv_sock(listener, req, skb):
    """The handshake completed: make the child, hash it, queue it for accept()."""
    if len(listener.accept_queue) >= listener.backlog:
        listener.listen_overflows += 1
        listener.listen_drops += 1
        return None
    child = tcp_create_openreq_child(listener, req, skb)
    child.af_ops.rebuild_header(child)      # the child's own route and path MTU
    out.tcp_sync_mss(child, child.pmtu)
    listener.hashinfo.hash(child)
    listener.accept_queue.append(child)
    return child


def tcp_v4_mtu_reduced(sk, mtu):
    """ICMP fragmentation needed (RFC 1191): shrink the MSS, resend what is in flight."""
    if mtu >= sk.pmtu or sk.state in (_LISTEN, _CLOSE):
        return
    out.tcp_sync_mss(sk, mtu)
    if sk.packets_out:
        out.tcp_retransmit_skb(sk, 0, 1)


def ipv4_af_ops(queue_xmit, rebuild_header):
    """The ops table with IP's transmit and route functions plugged in; the
    stack passes ip_output.ip_queue_xmit, tests a function that collects."""
    return InetConnectionSockAfOps(
        queue_xmit=queue_xmit,
        send_check=tcp_v4_send_check,
        rebuild_header=rebuild_header,
        conn_request=tcp_conn_request,
        syn_recv_sock=tcp_v4_syn_recv_sock,
        net_header_len=20,
        mtu_reduced=tcp_v4_mtu_reduced,
    )


def tcp_v4_err(hashinfo, skb, type, code, info):
    """An ICMP error about a segment we sent (skb.data at the quoted IP
    header). Believed only if the quoted sequence number is in flight (RFC
    5927 §4.1); fatal while connecting, a soft error afterwards (RFC 1122
    §4.2.3.9); fragmentation needed shrinks the MSS (RFC 1191)."""
    from pynet.icmp import icmp_err_convert
    data = skb.data
    if len(data) < 28:
        return
    ihl = (data[0] & 0x0F) * 4
    if len(data) < ihl + 8:
        return
    saddr = int.from_bytes(data[12:16], "big")
    daddr = int.from_bytes(data[16:20], "big")
    sport = (data[ihl] << 8) | data[ihl + 1]
    dport = (data[ihl + 2] << 8) | data[ihl + 3]
    seq = int.from_bytes(data[ihl + 4:ihl + 8], "big")
    del data
    sk = hashinfo.ehash.get((saddr, sport, daddr, dport))
    if sk is None or sk.state == _TIME_WAIT:
        return                          # TIME_WAIT has nothing an error could concern
    if sk.state != _SYN_SENT and not (
            not before(seq, sk.snd_una) and before(seq, sk.snd_nxt)):
        return
    sk.tcp_mstamp = hashinfo.net.now
    if type == ICMP_DEST_UNREACH and code == ICMP_FRAG_NEEDED:
        sk.af_ops.mtu_reduced(sk, info)
        return
    err, fatal = icmp_err_convert(type, code)
    if fatal and sk.state in (_SYN_SENT, TcpState.SYN_RECV):
        sk.report_error(err)
        inp.tcp_done(sk)
    else:
        sk.sk_err_soft = err


def inet_sk_rebuild_header(sk):
    """Route the socket (ip_route_connect): source address, cached dst,
    path MTU. Segments are built as GSO super-segments whatever the device:
    a TSO device takes them whole, any other gets them cut by the C GSO
    in validate_xmit_skb, so Python still works per 64 KB -- or per the
    device's gso_ipv4_max_size, up to 256 KB on a BIG TCP TAP (Linux's
    sk_setup_caps: sk_gso_max_size from the route's device)."""
    rt = sk.net.fib.ip_route_output(sk.daddr, sk.saddr, sk.bound_dev_if)
    if not sk.saddr:
        sk.saddr = rt.saddr
    sk_setup_caps(sk, rt)
    sk.pmtu = rt.mtu
    sk.gso_max_size = rt.dev.gso_ipv4_max_size - TCP_GSO_HEADROOM


ipv4_specific = ipv4_af_ops(ip_queue_xmit, inet_sk_rebuild_header)


def tcp_v4_init(net):
    """TCP's tables for a stack, registered as its IPPROTO_TCP handler
    (once; later calls return the same tables)."""
    hashinfo = getattr(net, "tcp_hashinfo", None)
    if hashinfo is None:
        hashinfo = TcpHashinfo(net, ipv4_specific)
        net.tcp_hashinfo = hashinfo
        net.inet_add_protocol(IPPROTO_TCP, lambda skb: tcp_v4_rcv(hashinfo, skb, net.now),
                              lambda skb, type, code, info: tcp_v4_err(hashinfo, skb, type,
                                                                        code, info))
    return hashinfo


def tcp_v4_init_sock(net):
    """A new TCP socket on a stack (tcp_v4_init_sock)."""
    sk = TcpSock(net, ipv4_specific)
    sk.hashinfo = tcp_v4_init(net)
    return sk
