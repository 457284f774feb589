"""The TCP socket (Linux's struct tcp_sock with its inet_connection_sock part)
and the request socket a listener keeps for a half-open connection.

Sans-IO: a TcpSock never reads a clock or touches a device. Every entry
point (segment arrival, a timer, a user call) is given `now`, stored in
`tcp_mstamp` (Linux's per-event clock cache) for the code it calls; segments
leave through `af_ops.queue_xmit(sk, skb)`.
"""
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
# bandwidth-delay product of 10 Gbit/s x 1 ms is 1.25 MB.
TCP_WMEM_DEFAULT = 4 << 20
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
    congestion state and timers. `net` is the stack (its timers, its rng)."""

    def __init__(self, net, af_ops, ca_ops=None):
        from pynet.tcp.cong import default_ca_ops
        from pynet.tcp import tcp_timer

        super().__init__(net, IPPROTO_TCP, SOCK_STREAM)
        timers = net.timers
        self.state = TcpState.CLOSE
        self.af_ops = af_ops            # icsk_af_ops
        self.ca_ops = ca_ops or default_ca_ops()   # icsk_ca_ops
        self.ca_priv = None             # the algorithm's private state (icsk_ca_priv)
        self.hashinfo = None            # the tables this socket is hashed in
        self.tcp_mstamp = 0.0           # the `now` of the event being processed
        self.ts_offset = 0              # RFC 7323 §5.4: per-connection random TSval base

        # send sequence space (RFC 9293 §3.3.1)
        self.iss = 0
        self.snd_una = 0
        self.snd_nxt = 0
        self.write_seq = 0              # end of the data the user queued
        self.pushed_seq = 0
        self.snd_wnd = 0                # peer's window, scaled
        self.max_window = 0
        self.snd_wl1 = 0                # seq of the segment that last updated snd_wnd
        self.snd_sml = 0                # end of the last small segment sent (Minshall)
        # receive sequence space
        self.irs = 0
        self.rcv_nxt = 0
        self.rcv_wnd = 0                # window last advertised, unscaled bytes
        self.rcv_wup = 0                # rcv_nxt when rcv_wnd was advertised (Last.ACK.sent)
        self.copied_seq = 0             # next byte the user will read
        self.window_clamp = 65535 << 14
        self.rx_opt = TcpRxOpt()

        self.mss_cache = TCP_MSS_DEFAULT  # current effective send MSS
        self.advmss = TCP_MSS_DEFAULT     # MSS we announce
        self.rcv_mss = TCP_MSS_DEFAULT    # estimate of the peer's send MSS
        self.gso_max_size = 0             # 0: MSS-sized skbs; else TSO super-segments
        self.pmtu = 1500                  # path MTU the MSS was computed from (icsk_pmtu_cookie)
        self.nonagle = 0
        # what our SYN offers (sysctls tcp_sack, tcp_timestamps, tcp_window_scaling)
        self.sack_enabled = True
        self.tstamp_enabled = True
        self.wscale_enabled = True
        self.rto_initial = TCP_TIMEOUT_INIT
        self.syn_retries = TCP_SYN_RETRIES
        self.retries2 = TCP_RETRIES2

        # RTT estimator (RFC 6298), seconds
        self.srtt = None
        self.rttvar = 0.0
        self.rto = TCP_TIMEOUT_INIT      # icsk_rto
        self.backoff = 0                 # icsk_backoff
        self.retransmits = 0             # icsk_retransmits
        self.probes_out = 0              # icsk_probes_out
        self.pending = 0                 # icsk_pending
        self.retrans_stamp = None
        self.rtt_min = None              # smallest RTT seen (RACK's reordering window)

        # RACK and TLP (RFC 8985): see tcp_recovery.py
        self.rack_mstamp = None          # send time of the latest-sent delivered segment
        self.rack_end_seq = 0
        self.rack_rtt = 0.0
        self.rack_advanced = False
        self.reord_seen = False          # the peer ever delivered out of order
        self.rack_reo_wnd_steps = 1      # reordering window in quarters of min RTT
        self.tlp_high_seq = None         # snd_nxt when the outstanding loss probe went
        self.tlp_retrans = False         # ... and it was a retransmission

        # congestion control (in segments, as Linux counts)
        self.snd_cwnd = TCP_INIT_CWND
        self.snd_ssthresh = TCP_INFINITE_SSTHRESH
        self.snd_cwnd_cnt = 0
        self.prior_ssthresh = 0
        self.prior_cwnd = 0
        self.ca_state = TCP_CA_Open
        self.high_seq = 0                # snd_nxt when recovery began (RFC 6582 "recover")
        self.reordering = TCP_REORDERING
        self.packets_out = 0
        self.retrans_out = 0
        self.lost_out = 0
        self.sacked_out = 0              # without SACK: duplicate ACKs counted (Reno)
        self.undo_tsval = None           # TSval of the loss episode's first retransmission
        self.is_cwnd_limited = False     # the last send stopped at cwnd: growth is earned

        # queues
        self.write_queue = deque()      # sk_write_queue: not yet sent
        self.rtx_queue = deque()        # tcp_rtx_queue: sent, unacked, by seq
        self.sk_wmem_queued = 0
        self.sk_sndbuf = TCP_WMEM_DEFAULT
        self.receive_queue = deque()    # sk_receive_queue: in order, for the user
        self.sk_rmem_alloc = 0          # truesize held (receive + out-of-order queues)
        self.sk_rcvbuf = TCP_RMEM_DEFAULT
        self.scaling_ratio = TCP_DEFAULT_SCALING_RATIO   # window bytes per buffer byte
        self.out_of_order_queue = []    # sorted by seq
        self.ofo_limit = TCP_OFO_MAX
        self.ofo_drops = 0
        self.selective_acks = ()        # SACK blocks our ACKs carry (RFC 2018)
        self.highest_sack = None        # the highest sequence the peer SACKed

        # delayed ACK (icsk_ack)
        self.ack_sched = False           # an ACK is owed (ICSK_ACK_SCHED)
        self.ack_now = False             # ... and must not wait for the timer
        self.ack_quick = 0
        self.ack_ato = 0.0
        self.ack_lrcvtime = 0.0
        self.last_oow_ack_time = None    # rate limit of dupacks / challenge ACKs

        # keepalive, user timeout, close
        self.keepalive = False           # SO_KEEPALIVE
        self.keepalive_time = TCP_KEEPALIVE_TIME
        self.keepalive_intvl = TCP_KEEPALIVE_INTVL
        self.keepalive_probes = TCP_KEEPALIVE_PROBES
        self.user_timeout = 0.0          # TCP_USER_TIMEOUT, seconds; 0: off
        self.linger2 = TCP_FIN_TIMEOUT
        self.rcv_tstamp = 0.0            # last ACK received
        self.lsndtime = 0.0              # last data sent
        self.sk_shutdown = 0
        self.orphan = False              # closed by the user, TCP finishes alone
        self.fin_sent = False
        self.stats = {"InSegs": 0, "OutSegs": 0, "RetransSegs": 0, "OfoDrop": 0,
                      "ChallengeACK": 0, "PAWSDrop": 0, "RcvDrop": 0, "TCPTimeouts": 0,
                      "TCPLossProbes": 0, "TCPLossProbeRecovery": 0, "TCPLostRetransmit": 0,
                      "TCPDSACKRecv": 0, "RcvPruned": 0, "TCPSpuriousRTOs": 0}

        # listener
        self.backlog = 0
        self.accept_queue = deque()      # icsk_accept_queue: established children
        self.syn_queue = {}              # (raddr, rport) -> TcpRequestSock
        self.max_syn_backlog = 128
        self.listen_overflows = 0
        self.listen_drops = 0
        self.parent = None

        # Fast Open (RFC 7413, pynet/tcp/fastopen.py)
        self.fastopen_req = None         # client: what the next SYN carries (tcp_fastopen_request)
        self.fastopen_rsk = None         # passive child: its request sock, until the handshake ends
        self.fastopenq = None            # listener: TCP_FASTOPEN's queue; None: no Fast Open
        self.fastopen_connect = False    # TCP_FASTOPEN_CONNECT
        self.fastopen_no_cookie = False  # TCP_FASTOPEN_NO_COOKIE
        self.defer_connect = False       # connect() returned; the SYN waits for the first send
        self.syn_fastopen = False        # our SYN had a Fast Open option
        self.syn_fastopen_exp = False    # ... in the experimental form
        self.syn_data = False            # ... and data
        self.syn_data_acked = False      # the SYN's data was acknowledged (TCPI_OPT_SYN_DATA)
        self.fastopen_client_fail = 0    # tcpi_fastopen_client_fail

        # the socket layer's wake-ups (sock_def_*); tcp_input calls them as Linux does
        self.sk_data_ready = self.sk_write_space = self.sk_state_change = \
            self.sk_error_report = sock_def_noop
        self.timers = timers
        self.retransmit_timer = Timer(timers, lambda now: tcp_timer.tcp_write_timer(self, now))
        self.delack_timer = Timer(timers, lambda now: tcp_timer.tcp_delack_timer(self, now))
        self.keepalive_timer = Timer(timers, lambda now: tcp_timer.tcp_keepalive_timer(self, now))
        self.delack_timer_min = TCP_DELACK_MIN

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
