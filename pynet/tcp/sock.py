"""The TCP socket (Linux's struct tcp_sock with its inet_connection_sock part)
and the request socket a listener keeps for a half-open connection.

Sans-IO: a TcpSock never reads a clock or touches a device. Every entry
point (segment arrival, a timer, a user call) is given `now`, stored in
`tcp_mstamp` (Linux's per-event clock cache) for the code it calls; segments
leave through `af_ops.queue_xmit(sk, skb)`.
"""
import weakref
from collections import deque
from dataclasses import dataclass
from typing import Callable

from pynet.sock import Sock
from pynet.timer import Timer
from pynet.wire.ipv4 import IPPROTO_TCP
from pynet.tcp.tcp import (
    TCP_CA_Open, TCP_CA_Recovery, TCP_DELACK_MIN, TCP_FIN_TIMEOUT, TCP_INFINITE_SSTHRESH, TCP_INIT_CWND,
    TCP_KEEPALIVE_INTVL, TCP_KEEPALIVE_PROBES, TCP_KEEPALIVE_TIME, TCP_MSS_DEFAULT,
    TCP_OFO_MAX, TCP_REORDERING, TCP_RETRIES2, TCP_SYN_RETRIES, TCP_TIMEOUT_INIT, TcpState,
)

# Buffers sized for multi-gigabit transfers on sub-millisecond paths: a
# bandwidth-delay product of 10 Gbit/s x 1 ms is 1.25 MB. The send buffer
# holds 32 BIG TCP super-segments of 256 KB: with 4 MB (16 of them) pynet's
# AF_PACKET sends stopped at 18.0-18.6 Gbit/s on a veth, with 8 MB they
# reached 21.6-24.6 (4 s runs, 5 Dec 2026); a TAP's, 25-28, were not held.
TCP_WMEM_DEFAULT = 8 << 20
TCP_RMEM_DEFAULT = 6 << 20
# until a full segment is measured, half the buffer is window (Linux's default)
TCP_DEFAULT_SCALING_RATIO = 0.5

# icsk_pending: what the retransmit timer is armed for
ICSK_TIME_RETRANS = 1
ICSK_TIME_PROBE0 = 3
ICSK_TIME_REO_TIMEOUT = 4     # RACK's reordering timer (RFC 8985 §6.3)
ICSK_TIME_LOSS_PROBE = 5      # tail loss probe (RFC 8985 §7)


@dataclass
class InetConnectionSockAfOps:
    """inet_connection_sock_af_ops: what TCP asks of its address family.

    `queue_xmit(sk, skb)` sends a segment (skb.data at the TCP header);
    `send_check(sk, skb)` fills the checksum; `rebuild_header(sk)` finds the
    route again; `conn_request(listener, skb, now)` answers a SYN;
    `syn_recv_sock(listener, req, skb, now)` makes the child for an
    acknowledged SYN-ACK; `net_header_len` is the network header's size;
    `mtu_reduced(sk)` reacts to a smaller path MTU.
    """

    queue_xmit: Callable
    send_check: Callable
    rebuild_header: Callable
    conn_request: Callable
    syn_recv_sock: Callable
    net_header_len: int
    mtu_reduced: Callable


class TcpRxOpt:
    """tcp_options_received: what was negotiated, and the peer's last timestamp."""

    __slots__ = ("tstamp_ok", "sack_ok", "wscale_ok", "snd_wscale", "rcv_wscale",
                 "mss_clamp", "user_mss", "ts_recent", "ts_recent_stamp")

    def __init__(self):
        self.tstamp_ok = False
        self.sack_ok = False
        self.wscale_ok = False
        self.snd_wscale = 0        # the peer's shift: applies to windows it sends
        self.rcv_wscale = 0        # our shift: applies to windows we send
        self.mss_clamp = 65535     # the most the peer accepts (its MSS option)
        self.user_mss = 0          # TCP_MAXSEG
        self.ts_recent = 0         # RFC 7323 TS.Recent
        self.ts_recent_stamp = None  # when ts_recent was stored (our clock)


SOCK_STREAM = 1


class TcpSock(Sock):
    """One TCP endpoint: on top of struct sock / inet_sock (addresses, ports,
    cached route), send and receive sequence state, queues, RTT estimator,
    congestion state and timers. `net` is the stack (its timers, its rng).

    The fields every socket starts with the same immutable value are class
    attributes: a new socket (one per connection on a busy server) stores
    only what it changes, as Linux starts from a zeroed slab object."""

    # -- starting values ---------------------------------------------------------
    ca_priv = None             # the algorithm's private state (icsk_ca_priv)
    hashinfo = None            # the tables this socket is hashed in
    tcp_mstamp = 0.0           # the `now` of the event being processed
    ts_offset = 0              # RFC 7323 §5.4: per-connection random TSval base

    # send sequence space (RFC 9293 §3.3.1)
    iss = 0
    snd_una = 0
    snd_nxt = 0
    write_seq = 0              # end of the data the user queued
    pushed_seq = 0
    snd_wnd = 0                # peer's window, scaled
    max_window = 0
    snd_wl1 = 0                # seq of the segment that last updated snd_wnd
    snd_sml = 0                # end of the last small segment sent (Minshall)
    # receive sequence space
    irs = 0
    rcv_nxt = 0
    rcv_wnd = 0                # window last advertised, unscaled bytes
    rcv_wup = 0                # rcv_nxt when rcv_wnd was advertised (Last.ACK.sent)
    copied_seq = 0             # next byte the user will read
    window_clamp = 65535 << 14

    mss_cache = TCP_MSS_DEFAULT  # current effective send MSS
    advmss = TCP_MSS_DEFAULT     # MSS we announce
    rcv_mss = TCP_MSS_DEFAULT    # estimate of the peer's send MSS
    gso_max_size = 0             # 0: MSS-sized skbs; else TSO super-segments
    pmtu = 1500                  # path MTU the MSS was computed from (icsk_pmtu_cookie)
    nonagle = 0
    # what our SYN offers (sysctls tcp_sack, tcp_timestamps, tcp_window_scaling)
    sack_enabled = True
    tstamp_enabled = True
    wscale_enabled = True
    rto_initial = TCP_TIMEOUT_INIT
    syn_retries = TCP_SYN_RETRIES
    retries2 = TCP_RETRIES2

    # RTT estimator (RFC 6298), seconds
    srtt = None
    rttvar = 0.0
    rto = TCP_TIMEOUT_INIT      # icsk_rto
    backoff = 0                 # icsk_backoff
    retransmits = 0             # icsk_retransmits
    probes_out = 0              # icsk_probes_out
    pending = 0                 # icsk_pending
    retrans_stamp = None
    rtt_min = None              # smallest RTT seen (RACK's reordering window)

    # RACK and TLP (RFC 8985): see tcp_recovery.py
    rack_mstamp = None          # send time of the latest-sent delivered segment
    rack_end_seq = 0
    rack_rtt = 0.0
    rack_advanced = False
    reord_seen = False          # the peer ever delivered out of order
    rack_reo_wnd_steps = 1      # reordering window in quarters of min RTT
    tlp_high_seq = None         # snd_nxt when the outstanding loss probe went
    tlp_retrans = False         # ... and it was a retransmission

    # congestion control (in segments, as Linux counts)
    snd_cwnd = TCP_INIT_CWND
    snd_ssthresh = TCP_INFINITE_SSTHRESH
    snd_cwnd_cnt = 0
    prior_ssthresh = 0
    prior_cwnd = 0
    ca_state = TCP_CA_Open
    high_seq = 0                # snd_nxt when recovery began (RFC 6582 "recover")
    reordering = TCP_REORDERING
    packets_out = 0
    retrans_out = 0
    lost_out = 0
    sacked_out = 0              # without SACK: duplicate ACKs counted (Reno)
    undo_tsval = None           # TSval of the loss episode's first retransmission
    is_cwnd_limited = False     # the last send stopped at cwnd: growth is earned

    # queues
    sk_wmem_queued = 0
    scaling_ratio = TCP_DEFAULT_SCALING_RATIO   # window bytes per buffer byte
    ofo_limit = TCP_OFO_MAX
    ofo_drops = 0
    selective_acks = ()        # SACK blocks our ACKs carry (RFC 2018)
    highest_sack = None        # the highest sequence the peer SACKed

    # delayed ACK (icsk_ack)
    ack_sched = False           # an ACK is owed (ICSK_ACK_SCHED)
    ack_now = False             # ... and must not wait for the timer
    ack_quick = 0
    ack_ato = 0.0
    ack_lrcvtime = 0.0
    delack_timer_min = TCP_DELACK_MIN
    last_oow_ack_time = None    # rate limit of dupacks / challenge ACKs

    # keepalive, user timeout, close
    keepalive = False           # SO_KEEPALIVE
    keepalive_time = TCP_KEEPALIVE_TIME
    keepalive_intvl = TCP_KEEPALIVE_INTVL
    keepalive_probes = TCP_KEEPALIVE_PROBES
    user_timeout = 0.0          # TCP_USER_TIMEOUT, seconds; 0: off
    linger2 = TCP_FIN_TIMEOUT
    rcv_tstamp = 0.0            # last ACK received
    lsndtime = 0.0              # last data sent
    sk_shutdown = 0
    orphan = False              # closed by the user, TCP finishes alone
    fin_sent = False

    # listener
    backlog = 0
    max_syn_backlog = 128
    listen_overflows = 0
    listen_drops = 0
    parent = None

    # Fast Open (RFC 7413, pynet/tcp/fastopen.py)
    fastopen_req = None         # client: what the next SYN carries (tcp_fastopen_request)
    fastopen_rsk = None         # passive child: its request sock, until the handshake ends
    fastopenq = None            # listener: TCP_FASTOPEN's queue; None: no Fast Open
    fastopen_connect = False    # TCP_FASTOPEN_CONNECT
    fastopen_no_cookie = False  # TCP_FASTOPEN_NO_COOKIE
    defer_connect = False       # connect() returned; the SYN waits for the first send
    syn_fastopen = False        # our SYN had a Fast Open option
    syn_fastopen_exp = False    # ... in the experimental form
    syn_data = False            # ... and data
    syn_data_acked = False      # the SYN's data was acknowledged (TCPI_OPT_SYN_DATA)
    fastopen_client_fail = 0    # tcpi_fastopen_client_fail

    def __init__(self, net, af_ops, ca_ops=None):
        from pynet.tcp.cong import default_ca_ops
        from pynet.tcp import tcp_timer

        super().__init__(net, IPPROTO_TCP, SOCK_STREAM)
        timers = net.timers
        self.state = TcpState.CLOSE
        self.af_ops = af_ops            # icsk_af_ops
        self.ca_ops = ca_ops or default_ca_ops()   # icsk_ca_ops

        self.rx_opt = TcpRxOpt()         # what the handshake negotiated

        # queues
        self.write_queue = deque()      # sk_write_queue: not yet sent
        self.rtx_queue = deque()        # tcp_rtx_queue: sent, unacked, by seq
        self.sk_sndbuf = TCP_WMEM_DEFAULT
        self.receive_queue = deque()    # sk_receive_queue: in order, for the user
        self.sk_rmem_alloc = 0          # truesize held (receive + out-of-order queues)
        self.sk_rcvbuf = TCP_RMEM_DEFAULT
        self.out_of_order_queue = []    # sorted by seq

        # this socket's share of the MIB counters
        self.stats = {"InSegs": 0, "OutSegs": 0, "RetransSegs": 0, "OfoDrop": 0,
                      "ChallengeACK": 0, "PAWSDrop": 0, "RcvDrop": 0, "TCPTimeouts": 0,
                      "TCPLossProbes": 0, "TCPLossProbeRecovery": 0, "TCPLostRetransmit": 0,
                      "TCPDSACKRecv": 0, "RcvPruned": 0, "TCPSpuriousRTOs": 0}

        # listener
        self.accept_queue = deque()      # icsk_accept_queue: established children
        self.syn_queue = {}              # (raddr, rport) -> TcpRequestSock

        # the socket layer's wake-ups (sock_def_*); tcp_input calls them as Linux does
        self.sk_data_ready = self.sk_write_space = self.sk_state_change = \
            self.sk_error_report = sock_def_noop
        self.timers = timers
        ref = weakref.ref(self)
        self.retransmit_timer = Timer(timers, SkTimerCallback(ref, tcp_timer.tcp_write_timer))
        self.delack_timer = Timer(timers, SkTimerCallback(ref, tcp_timer.tcp_delack_timer))
        self.keepalive_timer = Timer(timers, SkTimerCallback(ref, tcp_timer.tcp_keepalive_timer))

    # -- derived quantities (include/net/tcp.h) --------------------------------
    def packets_in_flight(self):
        """tcp_packets_in_flight: segments the network holds (RFC 6675's pipe).

        Each duplicate ACK (sacked_out) says one segment left the network,
        which is what lets limited transmit (RFC 3042) and fast recovery's
        window inflation (RFC 6582) send new data without touching cwnd.
        """
        return self.packets_out - (self.sacked_out + self.lost_out) + self.retrans_out

    def receive_window(self):
        """tcp_receive_window: what is left of the window we last advertised."""
        win = ((self.rcv_wup + self.rcv_wnd - self.rcv_nxt) & 0xFFFFFFFF)
        return 0 if win > 0x7FFFFFFF else win

    def tcp_time_stamp(self):
        """TSval clock: milliseconds (RFC 7323 §5.4), offset per connection."""
        return (int(self.tcp_mstamp * 1000) + self.ts_offset) & 0xFFFFFFFF

    def in_recovery(self):
        return self.ca_state >= TCP_CA_Recovery

    def __repr__(self):
        return (f"<TcpSock {self.state.name} {self.saddr:#x}:{self.sport} -> "
                f"{self.daddr:#x}:{self.dport} una={self.snd_una} nxt={self.snd_nxt} "
                f"rcv_nxt={self.rcv_nxt} cwnd={self.snd_cwnd}>")


class SkTimerCallback:
    """A socket timer's callback: fn(sk, now), holding the socket weakly.

    A callback that held it strongly would put every socket in a reference
    cycle (socket -> timer -> callback -> socket), and a busy server's closed
    sockets would wait for the cyclic garbage collector, which then walks
    every live socket too. This way a socket goes when its last table or
    user lets go of it, as a refcounted Linux socket does; a socket that
    still has work (an orphan finishing its close) is in the tables."""

    __slots__ = ("ref", "fn")

    def __init__(self, ref, fn):
        self.ref = ref
        self.fn = fn

    def __call__(self, now):
        sk = self.ref()
        if sk is not None:
            self.fn(sk, now)


class TcpTimewaitSock:
    """What a connection in TIME_WAIT still needs (Linux's inet_timewait_sock
    with tcp_timewait_sock): tcp_time_wait puts one in the full socket's
    place in the tables and the full socket is done. It answers a
    retransmitted FIN or an old duplicate with an ACK, judges whether a new
    SYN may reopen the 4-tuple (RFC 6191), and goes when its timer fires.
    A busy server holds thousands: each is this object, its rx_opt and one
    timer, not a full socket's queues, counters and three timers."""

    __slots__ = ("saddr", "daddr", "sport", "dport", "snd_nxt", "rcv_nxt", "rcv_wup",
                 "rcv_wnd", "ts_offset", "rx_opt", "tcp_mstamp", "last_oow_ack_time",
                 "hashinfo", "timer", "__weakref__")
    state = TcpState.TIME_WAIT
    write_queue = rtx_queue = ()       # nothing left to send (the CLI's drain reads these)

    def __init__(self, sk, timers, on_timer):
        self.saddr, self.daddr, self.sport, self.dport = sk.saddr, sk.daddr, sk.sport, sk.dport
        self.snd_nxt = sk.snd_nxt
        self.rcv_nxt = self.rcv_wup = sk.rcv_nxt
        self.rcv_wnd = sk.receive_window()     # tw_rcv_wnd: the window last offered
        self.ts_offset = sk.ts_offset
        self.rx_opt = sk.rx_opt                # tstamp_ok, rcv_wscale, ts_recent and its stamp
        self.tcp_mstamp = sk.tcp_mstamp
        self.last_oow_ack_time = sk.last_oow_ack_time
        self.hashinfo = sk.hashinfo
        self.timer = Timer(timers, SkTimerCallback(weakref.ref(self), on_timer))

    def receive_window(self):
        win = ((self.rcv_wup + self.rcv_wnd - self.rcv_nxt) & 0xFFFFFFFF)
        return 0 if win > 0x7FFFFFFF else win

    def tcp_time_stamp(self):
        return (int(self.tcp_mstamp * 1000) + self.ts_offset) & 0xFFFFFFFF

    def __repr__(self):
        return (f"<TcpTimewaitSock {self.saddr:#x}:{self.sport} -> {self.daddr:#x}:{self.dport} "
                f"snd_nxt={self.snd_nxt} rcv_nxt={self.rcv_nxt}>")


def inet_twsk_kill(tw, now=None):
    """TIME_WAIT is over (its timer, a RST at rcv_nxt, or a new SYN that
    reopens the 4-tuple): out of the tables, and with that, gone."""
    tw.timer.delete()
    if tw.hashinfo is not None:
        tw.hashinfo.unhash(tw)


def sock_def_noop(sk):
    """Nobody waits on a socket the user has not got (or let go of)."""


class TcpRequestSock:
    """A half-open passive connection (struct tcp_request_sock), kept in the
    listener's SYN queue until the handshake's ACK arrives."""

    # saddr/sport: ours; daddr/dport: the peer's
    __slots__ = ("listener", "saddr", "daddr", "sport", "dport",
                 "snt_isn", "rcv_isn", "mss", "snd_wscale", "rcv_wscale", "wscale_ok",
                 "sack_ok", "tstamp_ok", "ts_recent", "ts_off", "window", "rcv_wnd",
                 "num_retrans", "timer", "snt_synack", "rcv_nxt", "tfo_cookie", "tfo_exp")

    def __init__(self, listener):
        self.listener = listener
        self.num_retrans = 0
        self.timer = None
        self.snt_synack = 0.0
        self.rcv_nxt = None         # what the SYN-ACK acknowledges (None: the SYN only)
        self.tfo_cookie = None      # a Fast Open cookie for the SYN-ACK
        self.tfo_exp = False
