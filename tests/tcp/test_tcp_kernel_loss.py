"""The issue's loss tests against the Linux kernel over a TAP: the kernel's
namespace drops 1 % and 5 % of segments at random in both directions (an
iptables `statistic` rule on INPUT and OUTPUT), and separately pynet's fault
injector reorders and duplicates.

An OUTPUT drop is no loss on the wire for the kernel's own TCP: the
transmit returns EPERM and TCP sends the segment again later, without a
retransmission (tcpi_total_retrans stayed 0). This kernel has no netem, so
pynet's fault injector also drops the same share of what it receives from
the kernel: the kernel's data and ACKs lost on the wire. Each transfer must end with equal sha256
and no stall longer than a few RTOs, counted as the sender's consecutive
RTO expirations without progress (icsk_retransmits: pynet's own, the
kernel's tcpi_retransmits), never as a duration.

100 MiB at 5 % loss takes minutes of CI, so the 5 % case runs 16 MiB by
default and the full 100 MiB under @pytest.mark.slow."""
import hashlib
import random
import socket
import struct

import pytest

from pynet.dev.fault import Faults
from pynet.netns import kernel_peer
from kernelkit import kernel_to_pynet, pynet_to_kernel

pytestmark = pytest.mark.priv
MAX_BACKOFFS = 3          # 1 + 2 + 4 RTOs at most without progress
# At 5 % each way about one round trip in ten loses a segment or its ACK.
# When the kernel's ACK of everything is lost, our RTO resends data it
# already has, and it answers such out-of-window segments at most once per
# 500 ms (its tcp_invalid_ratelimit; seen in a capture: answers at +0.2 s and
# +1.4 s, none at +0.6 s). If that one answer is lost too, a fourth
# expiration comes before the next.
MAX_BACKOFFS_5PCT = 4
BLOCK = random.Random(12).randbytes(4 << 20)


def payload(mib):
    return BLOCK * (mib // 4) if mib >= 4 else BLOCK[:mib << 20]


class Watch:
    """The most consecutive RTO expirations each sender reached, and the
    longest wait between two advances of the stream, in that sender's RTOs
    (reported, not asserted: wall-clock gaps also include this shared
    machine's scheduling)."""

    def __init__(self, pynet_sends):
        self.pynet_sends = pynet_sends
        self.max_retransmits = 0
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
        self.max_retransmits = max(self.max_retransmits, retransmits)
        if self.last is None or mark != self.last[0]:
            if self.last is not None and rto:
                self.max_gap_rtos = max(self.max_gap_rtos, (now - self.last[1]) / rto)
            self.last = (mark, now)


def run(direction, data, record_property, drop=None, offload=False, **faults):
    max_backoffs = MAX_BACKOFFS_5PCT if drop and drop >= 0.05 else MAX_BACKOFFS
    w = Watch(direction == "up")
    with kernel_peer("tap", offload=offload) as peer:
        if drop:
            for chain in ("INPUT", "OUTPUT"):
                peer.ns.run(["iptables", "-A", chain, "-m", "statistic", "--mode", "random",
                             "--probability", str(drop), "-j", "DROP"], check=True)
        move = pynet_to_kernel if direction == "up" else kernel_to_pynet
        sink, sk = move(peer, data, watch=w, limit=300.0, **faults)
    record_property("max_consecutive_rtos", w.max_retransmits)
    record_property("max_gap_rtos", round(w.max_gap_rtos, 1))
    record_property("stats", sk.stats)
    record_property("kernel_total_retrans", w.kernel_retrans)
    assert sink.n == len(data) and sink.sha.hexdigest() == hashlib.sha256(data).hexdigest()
    assert w.max_retransmits <= max_backoffs
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
