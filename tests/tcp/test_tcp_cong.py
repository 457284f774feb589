"""Congestion control modules behind the tcp_congestion_ops interface."""
import pytest

from tcpkit import A_IP, Host
from pynet.tcp.cong import tcp_ca_find, tcp_set_congestion_control


def grow(sk, seconds, rtt):
    """One window of ACKs per RTT for `seconds`: [(t, cwnd)] once per second."""
    trace = []
    t0 = sk.tcp_mstamp
    steps = int(seconds / rtt)
    for i in range(1, steps + 1):
        sk.tcp_mstamp = t0 + i * rtt
        sk.is_cwnd_limited = True
        sk.ca_ops.cong_avoid(sk, 0, sk.snd_cwnd)
        if i % int(1 / rtt) == 0:
            trace.append(sk.snd_cwnd)
    return trace


def test_reno_halves_and_adds_one_per_rtt():
    sk = Host(A_IP).sock()
    sk.snd_cwnd = 100
    sk.snd_ssthresh = sk.ca_ops.ssthresh(sk)
    sk.snd_cwnd = sk.snd_ssthresh
    assert sk.snd_cwnd == 50
    trace = grow(sk, 5, 0.1)                       # 10 RTTs a second
    assert trace == [60, 70, 80, 90, 100]


def test_cubic_concave_to_w_max_then_convex():
    sk = Host(A_IP).sock()
    tcp_set_congestion_control(sk, "cubic")
    sk.srtt = 0.1
    sk.snd_cwnd = 100
    sk.snd_ssthresh = sk.ca_ops.ssthresh(sk)      # beta 0.7
    sk.snd_cwnd = sk.snd_ssthresh
    assert sk.snd_cwnd == 70
    k = (30 / 0.4) ** (1 / 3)                      # 4.2 s to get back to W_max
    trace = grow(sk, 8, 0.1)
    at_k = trace[round(k) - 1]
    assert 95 <= at_k <= 101                       # plateau near W_max = 100
    assert trace[0] - 70 > trace[3] - trace[2]     # concave: fast first, slower near W_max
    assert trace[-1] - trace[-2] > trace[4] - trace[3]   # convex past it: probing speeds up
    assert trace[-1] > 100


def test_unknown_algorithm():
    with pytest.raises(ValueError):
        tcp_ca_find("vegas")
