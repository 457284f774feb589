"""The issue's loss tests against the Linux kernel over a TAP: the kernel's
namespace drops 1 % and 5 % of segments at random in both directions (an
iptables `statistic` rule on INPUT and OUTPUT), and separately pynet's fault
injector reorders and duplicates.

An OUTPUT drop is no loss on the wire for the kernel's own TCP: the
transmit returns EPERM and TCP sends the segment again later, without a
retransmission (tcpi_total_retrans stayed 0). This kernel has no netem, so
pynet's fault injector also drops the same share of what it receives from
the kernel: the kernel's data and ACKs lost on the wire. Each transfer must
end with equal sha256 and no stall longer than the loss explains, counted as
the sender's consecutive RTO expirations without progress (icsk_retransmits:
pynet's own, the kernel's tcpi_retransmits), never as a duration.

100 MiB at 5 % loss takes minutes of CI, so the 5 % case runs 16 MiB by
default and the full 100 MiB under @pytest.mark.slow."""
import hashlib
import math
import random
import socket
import struct

import pytest

from pynet.dev.fault import Faults
from pynet.netns import kernel_peer
from kernelkit import kernel_to_pynet, pynet_to_kernel

pytestmark = pytest.mark.priv
BLOCK = random.Random(12).randbytes(4 << 20)
# The chance a test fails although the sender is right: the bounds below are
# the points the loss itself passes this rarely.
FALSE_ALARM = 1e-4
# Without drops a retransmission arrives, though reordering may hold it.
MAX_RTOS_WITHOUT_LOSS = 3


def payload(mib):
    return BLOCK * (mib // 4) if mib >= 4 else BLOCK[:mib << 20]


def rto_failure_chance(drop):
    """The chance one RTO retransmission makes no progress: it and its answer
    cross three drop points in all (the peer's INPUT and OUTPUT rules and
    pynet's injector). The kernel answers every such segment, even one it
    already holds: tcp_oow_rate_limited never limits data segments."""
    return 1 - (1 - drop) ** 3


def max_consecutive_rtos(drop, timeouts):
    """The longest run of RTO expirations without progress that random loss
    explains: a run of more than k has chance p**k (every retransmission
    after the first expiration lost, or its answer), and each of `timeouts`
    expirations could start one. Seen at 5 % when pynet sends 16 MiB:
    36-58 expirations, runs of 2-4 in 20 transfers; a run of 5 failed the
    old fixed bound of 4 twice (in a local 100 MiB run and in CI). With 50 expirations this
    allows 7."""
    p = rto_failure_chance(drop)
    return math.ceil(math.log(FALSE_ALARM / max(timeouts, 1)) / math.log(p))


def most_failed_rtos(drop, timeouts):
    """The most of `timeouts` RTO retransmissions that may fail: the point a
    Binomial(timeouts, p) count exceeds with chance under FALSE_ALARM. More
    would mean retransmissions lost beyond the loss the test applies."""
    p = rto_failure_chance(drop)
    tail = 0.0
    for failed in range(timeouts, -1, -1):
        tail += math.comb(timeouts, failed) * p ** failed * (1 - p) ** (timeouts - failed)
        if tail > FALSE_ALARM:
            return failed
    return 0


class Watch:
    """The sender's RTO episodes, each the peak of its run of consecutive
    expirations without progress, and the longest wait between two advances
    of the stream, in that sender's RTOs (reported, not asserted: wall-clock
    gaps also include this shared machine's scheduling).

    Polled once a round. pynet's count is seen after every expiration (its
    timers run before the round's watch). The kernel's often is not: pynet
    answers its retransmission within the round, so its runs can read one
    short, which only makes the bound on them looser."""

    def __init__(self, pynet_sends):
        self.pynet_sends = pynet_sends
        self.peaks = []
        self.running = 0
        self.max_gap_rtos = 0.0
        self.last = None
        self.kernel_retrans = 0         # tcpi_total_retrans: the drops did happen

    def __call__(self, now, psk, ksk):
        if psk is None:
            return
        info = ksk.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        self.kernel_retrans = struct.unpack_from("I", info, 100)[0]
        if self.pynet_sends:
            retransmits, rto, mark = psk.retransmits, psk.rto, psk.snd_una
        else:
            retransmits, rto, mark = info[2], struct.unpack_from("I", info, 8)[0] / 1e6, psk.rcv_nxt
        if retransmits:
            self.running = max(self.running, retransmits)
        elif self.running:
            self.peaks.append(self.running)
            self.running = 0
        if self.last is None or mark != self.last[0]:
            if self.last is not None and rto:
                self.max_gap_rtos = max(self.max_gap_rtos, (now - self.last[1]) / rto)
            self.last = (mark, now)

    @property
    def max_retransmits(self):
        return max(self.peaks + [self.running])

    @property
    def failed_rtos(self):
        """RTO retransmissions that another expiration followed."""
        return sum(peak - 1 for peak in self.peaks + [self.running] if peak)


def run(direction, data, record_property, drop=None, offload=False, **faults):
    w = Watch(direction == "up")
    with kernel_peer("tap", offload=offload) as peer:
        if drop:
            for chain in ("INPUT", "OUTPUT"):
                peer.ns.run(["iptables", "-A", chain, "-m", "statistic", "--mode", "random",
                             "--probability", str(drop), "-j", "DROP"], check=True)
        kernel_timeouts = peer.ns.counters()["TcpExt"]["TCPTimeouts"]
        move = pynet_to_kernel if direction == "up" else kernel_to_pynet
        sink, sk = move(peer, data, watch=w, limit=300.0, **faults)
        kernel_timeouts = peer.ns.counters()["TcpExt"]["TCPTimeouts"] - kernel_timeouts
    timeouts = sk.stats["TCPTimeouts"] if direction == "up" else kernel_timeouts
    record_property("max_consecutive_rtos", w.max_retransmits)
    record_property("failed_rtos", w.failed_rtos)
    record_property("timeouts", timeouts)
    record_property("max_gap_rtos", round(w.max_gap_rtos, 1))
    record_property("stats", sk.stats)
    record_property("kernel_total_retrans", w.kernel_retrans)
    assert sink.n == len(data) and sink.sha.hexdigest() == hashlib.sha256(data).hexdigest()
    if not drop:
        assert w.max_retransmits <= MAX_RTOS_WITHOUT_LOSS
        return sk, w
    assert w.max_retransmits <= max_consecutive_rtos(drop, timeouts)
    if direction == "up":
        assert w.failed_rtos <= most_failed_rtos(drop, timeouts)
    return sk, w


LOSS = [pytest.param(0.01, 100, id="1%-100MiB"),
        pytest.param(0.05, 16, id="5%-16MiB"),
        pytest.param(0.05, 100, id="5%-100MiB", marks=pytest.mark.slow)]


@pytest.mark.parametrize("drop,mib", LOSS)
def test_pynet_sends_through_kernel_side_loss(drop, mib, record_property):
    sk, _ = run("up", payload(mib), record_property, drop=drop, rx=Faults(drop=drop))
    assert sk.stats["RetransSegs"] > 0


@pytest.mark.parametrize("drop,mib", LOSS)
def test_pynet_receives_through_kernel_side_loss(drop, mib, record_property):
    _, w = run("down", payload(mib), record_property, drop=drop, rx=Faults(drop=drop))
    assert w.kernel_retrans > 0


@pytest.mark.parametrize("direction", ["up", "down"])
def test_100mib_through_reordering_and_duplication(direction, record_property):
    sk, _ = run(direction, payload(100), record_property, reorder=0.01, duplicate=0.01)
    assert sk.ofo_drops == 0
    # reordering is not loss: RACK's window (widened by the duplicates' D-SACKs)
    # keeps most late segments from being resent. Seen: 0-8 of 73000 on a quiet
    # machine, up to 4451 of 76892 under load (a held frame can wait a poll,
    # longer than the SRTT that bounds the window); 55000 before D-SACK steps.
    assert sk.stats["RetransSegs"] <= sk.stats["OutSegs"] // 10
