"""Pluggable congestion control (Linux's struct tcp_congestion_ops).

An algorithm is an object with the hooks below; TCP calls them and never
looks inside. `ssthresh` gives the slow-start threshold after a loss,
`cong_avoid` grows cwnd as ACKs arrive, `undo_cwnd` restores cwnd when a
loss proves spurious, `pkts_acked` sees each ACK's RTT sample, `set_state`
hears of ca_state changes (Open, Disorder, Recovery, Loss). Loss recovery
itself (dupthresh, NewReno, later SACK) lives in tcp_input, so CUBIC or BBR
plug in here without touching it.
"""


class TcpCongestionOps:
    name = "base"

    def init(self, sk):
        """A connection starts using this algorithm."""

    def ssthresh(self, sk):
        raise NotImplementedError

    def cong_avoid(self, sk, ack, acked):
        raise NotImplementedError

    def undo_cwnd(self, sk):
        return max(sk.snd_cwnd, sk.prior_cwnd)

    def pkts_acked(self, sk, acked, rtt):
        """`acked` segments newly acknowledged; rtt in seconds or None."""

    def set_state(self, sk, new_state):
        """ca_state is about to become new_state."""


_registry = {}


def tcp_register_congestion_control(cls):
    """Make an algorithm selectable by name (TCP_CONGESTION)."""
    _registry[cls.name] = cls
    return cls


def tcp_ca_find(name):
    try:
        return _registry[name]()
    except KeyError:
        raise ValueError(f"unknown congestion control {name!r}") from None


def default_ca_ops():
    return tcp_ca_find("reno")


def tcp_set_congestion_control(sk, name):
    """TCP_CONGESTION: switch the socket's algorithm by name."""
    sk.ca_ops = tcp_ca_find(name)
    sk.ca_priv = None
    sk.ca_ops.init(sk)


from pynet.tcp.cong import cubic, reno  # noqa: E402,F401  -- the modules register themselves
