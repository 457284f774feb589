"""TCP's shared vocabulary (Linux's include/net/tcp.h): states, flags,
sequence arithmetic, limits, and the per-skb control block TCP_SKB_CB.
"""
import enum

# Header flags live with the packet format; re-exported as TCP's vocabulary.
from pynet.wire.tcp import (  # noqa: F401
    TCPHDR_ACK, TCPHDR_CWR, TCPHDR_ECE, TCPHDR_FIN, TCPHDR_PSH, TCPHDR_RST, TCPHDR_SYN,
    TCPHDR_URG,
)

# -- states (include/net/tcp_states.h) ---------------------------------------


class TcpState(enum.IntEnum):
    ESTABLISHED = 1
    SYN_SENT = 2
    SYN_RECV = 3
    FIN_WAIT1 = 4
    FIN_WAIT2 = 5
    TIME_WAIT = 6
    CLOSE = 7
    CLOSE_WAIT = 8
    LAST_ACK = 9
    LISTEN = 10
    CLOSING = 11



# TCP_SKB_CB(skb)->sacked bits: what loss recovery knows of a sent skb
TCPCB_SACKED_ACKED = 0x01     # the peer holds it (a SACK block), counted in sacked_out
TCPCB_SACKED_RETRANS = 0x02   # retransmitted and counted in retrans_out
TCPCB_LOST = 0x04             # marked lost, counted in lost_out
TCPCB_EVER_RETRANS = 0x80     # ever retransmitted: no RTT sample from it (Karn)

# -- limits and defaults (seconds, bytes) -------------------------------------
TCP_MSS_DEFAULT = 536            # RFC 9293 §3.7.1: when the peer sends no MSS option
TCP_MIN_MSS = 88
TCP_MAX_WSCALE = 14              # RFC 7323 §2.3
MAX_TCP_HEADER = 160             # headroom for TCP + IP + link headers
MAX_TCP_OPTION_SPACE = 40
TCP_INIT_CWND = 10               # RFC 6928
TCP_INFINITE_SSTHRESH = 0x7fffffff
TCP_TIMEOUT_INIT = 1.0           # RFC 6298 §2.1
TCP_TIMEOUT_FALLBACK = 3.0       # RFC 6298 §5.7: lost SYN, no RTT sample
TCP_RTO_MIN = 0.2
TCP_TIMEOUT_MIN = 0.002          # Linux's two jiffies: the shortest timer it arms
TCP_RTO_MAX = 120.0
TCP_DELACK_MIN = 0.04
TCP_DELACK_MAX = 0.2
TCP_MAX_QUICKACKS = 16
TCP_TIMEWAIT_LEN = 60.0          # Linux's TIME_WAIT, shorter than 2*MSL
TCP_FIN_TIMEOUT = 60.0
TCP_SYN_RETRIES = 6
TCP_SYNACK_RETRIES = 5
TCP_RETRIES2 = 15
TCP_KEEPALIVE_TIME = 7200.0      # RFC 1122 §4.2.3.6: at least two hours
TCP_KEEPALIVE_INTVL = 75.0
TCP_KEEPALIVE_PROBES = 9
TCP_PAWS_24DAYS = 24 * 86400     # RFC 7323 §5.5: ts_recent too old to trust
TCP_INVALID_RATELIMIT = 0.5      # out-of-window ACKs, challenge ACKs: one per 500 ms
TCP_REORDERING = 3               # dupthresh, RFC 5681 §3.2
TCP_OFO_MAX = 2048               # out-of-order skbs kept per connection (bytes: sk_rcvbuf)
TCP_GSO_HEADROOM = 1 + 20 + 60   # what a super-segment's payload leaves of the device's gso_ipv4_max_size

# Nagle (tp->nonagle)
TCP_NAGLE_OFF = 1     # TCP_NODELAY
TCP_NAGLE_CORK = 2    # TCP_CORK
TCP_NAGLE_PUSH = 4    # push now, whatever Nagle says

# shutdown bits (sk->sk_shutdown)
RCV_SHUTDOWN = 1
SEND_SHUTDOWN = 2

# congestion-avoidance states (icsk_ca_state)
TCP_CA_Open = 0
TCP_CA_Disorder = 1
TCP_CA_CWR = 2
TCP_CA_Recovery = 3
TCP_CA_Loss = 4


# -- sequence arithmetic (RFC 9293 §3.4, modulo 2**32) -------------------------
def before(seq1, seq2):
    """seq1 < seq2 in sequence space."""
    return ((seq1 - seq2) & 0xFFFFFFFF) > 0x7FFFFFFF


def after(seq1, seq2):
    return ((seq2 - seq1) & 0xFFFFFFFF) > 0x7FFFFFFF


def between(seq1, seq2, seq3):
    """seq2 <= seq1 <= seq3."""
    return ((seq3 - seq2) & 0xFFFFFFFF) >= ((seq1 - seq2) & 0xFFFFFFFF)


def seq_add(seq, n):
    return (seq + n) & 0xFFFFFFFF


class TcpSkbCb:
    """TCP_SKB_CB: what TCP knows of one skb, kept in skb.cb.

    On receive tcp_v4_rcv fills it from the header; on send it describes the
    segment a transmitted clone carries. seq/end_seq bound the sequence space
    the skb occupies (end_seq counts SYN and FIN). The option fields hold a
    received segment's options, or the options a sent one carries (None:
    absent).
    """

    __slots__ = ("seq", "end_seq", "ack_seq", "tcp_flags", "window",
                 "mss", "wscale", "sack_ok", "tsval", "tsecr",
                 "sack", "sacked", "tx_time", "first_tx", "pcount",
                 "saddr", "daddr", "sport", "dport", "fastopen", "tw_isn")

    def __init__(self, seq=0, end_seq=None, tcp_flags=0, ack_seq=0, window=0,
                 mss=None, wscale=None, sack_ok=False, tsval=None, tsecr=None):
        self.seq = seq
        self.end_seq = seq if end_seq is None else end_seq
        self.ack_seq = ack_seq
        self.tcp_flags = tcp_flags
        self.window = window
        self.mss = mss
        self.wscale = wscale
        self.sack_ok = sack_ok
        self.tsval = tsval
        self.tsecr = tsecr
        self.sack = ()          # a received segment's SACK blocks ((start, end), ...)
        self.sacked = 0
        self.tx_time = None     # last transmission (skb_mstamp)
        self.first_tx = None    # first transmission (for TCP_USER_TIMEOUT)
        self.pcount = 1         # segments this skb makes at the current MSS
        # a received segment's addresses and ports (its IPv4 and TCP header)
        self.saddr = self.daddr = self.sport = self.dport = 0
        self.fastopen = None    # a received SYN's Fast Open option: (cookie, experimental form)
        self.tw_isn = 0         # a SYN that ended a TIME_WAIT: the ISN to answer with (0: none)

    def __repr__(self):
        names = "FSRPAU"
        flags = "".join(n for i, n in enumerate(names) if self.tcp_flags & (1 << i)) or "."
        opts = "".join(f" {k}={getattr(self, k)}" for k in ("mss", "wscale", "tsval", "tsecr")
                       if getattr(self, k) is not None)
        return (f"<tcb [{flags}] seq={self.seq} end={self.end_seq} ack={self.ack_seq} "
                f"win={self.window}{' sack_ok' if self.sack_ok else ''}{opts}>")
