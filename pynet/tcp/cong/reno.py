"""Reno congestion control (RFC 5681), with slow start from IW10 (RFC 6928).

Loss recovery (fast retransmit, NewReno, limited transmit) is in tcp_input;
this module only says how cwnd grows and how far it falls.
"""
from pynet.tcp.cong import TcpCongestionOps, tcp_register_congestion_control


def tcp_slow_start(sk, acked):
    """Grow cwnd by one segment per segment acked, up to ssthresh (RFC 5681
    §3.1); return the acked segments left over for congestion avoidance."""
    cwnd = min(sk.snd_cwnd + acked, sk.snd_ssthresh)
    acked -= cwnd - sk.snd_cwnd
    sk.snd_cwnd = cwnd
    return acked


def tcp_cong_avoid_ai(sk, w, acked):
    """Additive increase: one segment per w segments acked."""
    sk.snd_cwnd_cnt += acked
    if sk.snd_cwnd_cnt >= w:
        delta = sk.snd_cwnd_cnt // w
        sk.snd_cwnd_cnt -= delta * w
        sk.snd_cwnd += delta


@tcp_register_congestion_control
class TcpReno(TcpCongestionOps):
    name = "reno"

    def ssthresh(self, sk):
        # RFC 5681 eq. (4), in segments; Linux halves cwnd rather than FlightSize
        return max(sk.snd_cwnd >> 1, 2)

    def cong_avoid(self, sk, ack, acked):
        if not sk.is_cwnd_limited:
            return              # RFC 7661: an idle window earned no growth
        if sk.snd_cwnd < sk.snd_ssthresh:
            acked = tcp_slow_start(sk, acked)
            if not acked:
                return
        tcp_cong_avoid_ai(sk, sk.snd_cwnd, acked)
