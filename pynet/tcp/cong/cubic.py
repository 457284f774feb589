"""CUBIC congestion control (RFC 9438; Linux's tcp_cubic.c, in floats).

After a loss the window is cut to beta * cwnd and then follows
W(t) = C * (t - K)^3 + W_max: fast towards the old maximum, flat around it,
probing beyond it; never slower than Reno would be (the Reno-friendly
estimate, RFC 9438 §4.3). Time is the socket's clock (sk.tcp_mstamp).
"""
from pynet.tcp.cong import TcpCongestionOps, tcp_register_congestion_control
from pynet.tcp.cong.reno import tcp_cong_avoid_ai, tcp_slow_start
from pynet.tcp.tcp import TCP_CA_Loss

CUBIC_C = 0.4          # RFC 9438 §4.1
CUBIC_BETA = 0.7       # RFC 9438 §4.6
ALPHA_CUBIC = 3 * (1 - CUBIC_BETA) / (1 + CUBIC_BETA)   # §4.3: Reno-friendly slope


class CubicState:
    __slots__ = ("w_max", "k", "origin", "epoch_start", "w_est")

    def __init__(self):
        self.w_max = 0.0
        self.k = 0.0
        self.origin = 0.0
        self.epoch_start = None
        self.w_est = 0.0


@tcp_register_congestion_control
class TcpCubic(TcpCongestionOps):
    name = "cubic"
    fast_convergence = True

    def init(self, sk):
        sk.ca_priv = CubicState()

    def _state(self, sk):
        if not isinstance(sk.ca_priv, CubicState):
            self.init(sk)
        return sk.ca_priv

    def ssthresh(self, sk):
        ca = self._state(sk)
        ca.epoch_start = None
        cwnd = sk.snd_cwnd
        # §4.7 fast convergence: a flow whose maximum fell yields to newcomers
        if cwnd < ca.w_max and self.fast_convergence:
            ca.w_max = cwnd * (1 + CUBIC_BETA) / 2
        else:
            ca.w_max = cwnd
        return max(int(cwnd * CUBIC_BETA), 2)

    def set_state(self, sk, new_state):
        if new_state == TCP_CA_Loss:
            self._state(sk).epoch_start = None

    def cong_avoid(self, sk, ack, acked):
        if not sk.is_cwnd_limited:
            return
        if sk.snd_cwnd < sk.snd_ssthresh:
            acked = tcp_slow_start(sk, acked)
            if not acked:
                return
        ca = self._state(sk)
        now = sk.tcp_mstamp
        cwnd = sk.snd_cwnd
        if ca.epoch_start is None:
            ca.epoch_start = now
            if cwnd < ca.w_max:
                ca.k = ((ca.w_max - cwnd) / CUBIC_C) ** (1 / 3)    # §4.2 eq. 2
                ca.origin = ca.w_max
            else:
                ca.k = 0.0
                ca.origin = cwnd
            ca.w_est = cwnd
        rtt = sk.srtt or 0.0
        t = now - ca.epoch_start + rtt                 # §4.2: the window one RTT ahead
        target = ca.origin + CUBIC_C * (t - ca.k) ** 3
        cnt = cwnd / (target - cwnd) if target > cwnd else 100.0 * cwnd
        ca.w_est += ALPHA_CUBIC * acked / cwnd
        if ca.w_est > cwnd:                            # §4.3 Reno-friendly region
            cnt = min(cnt, cwnd / (ca.w_est - cwnd))
        tcp_cong_avoid_ai(sk, max(int(cnt), 1), acked)
