"""Device throughput against the kernel in a namespace (needs root).

    python -m pytest bench -k bench_dev --benchmark-enable

- TAP, 1,514-byte UDP frames to a kernel socket: pynet's driver (one
  dev_queue_xmit per frame, and one ndo_xmit_batch call per 64 frames)
  versus a minimal C write() loop on the same TAP (_core.tap_bench_write);
- TAP with IFF_VNET_HDR: 64 KB UDP GSO frames, bytes/s;
- AF_PACKET on a veth: one send per frame versus sendmmsg batches of 64.

Every call moves FRAMES frames; the summary at the end prints frames/s and
the ratios (the TAP target: pynet >= 80 % of the C loop). Figures only,
nothing asserts a duration.
"""
import os
import socket
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "tests", "dev"))
from frames import udp_frame  # noqa: E402
from pynet import _core  # noqa: E402
from pynet.dev.netdevice import NETDEV_TX_BUSY, dev_queue_xmit  # noqa: E402
from pynet.netns import kernel_peer  # noqa: E402

pytestmark = pytest.mark.priv

FRAMES = 1024
BATCH = 64
GSO_PAYLOAD = 63 * 1024


def sink(peer):
    """A kernel UDP socket nobody reads: every frame takes the kernel's whole
    receive path, then waits or is dropped at the full socket buffer."""
    s = peer.ns.run_in(socket.socket, socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((peer.kernel_addr, 0))
    peer.ns.on_close(s.close)
    return s.getsockname()[1]


@pytest.fixture(scope="module")
def tap():
    with kernel_peer("tap") as peer:
        yield peer, udp_frame(peer.dev, peer, sink(peer), bytes(1472))


@pytest.fixture(scope="module")
def tap_offload():
    with kernel_peer("tap", offload=True) as peer:
        yield peer, udp_frame(peer.dev, peer, sink(peer), bytes(GSO_PAYLOAD), gso_size=1472)


@pytest.fixture(scope="module")
def veth():
    with kernel_peer("veth") as peer:
        yield peer, udp_frame(peer.dev, peer, sink(peer), bytes(1472))


def test_tap_c_write_loop(benchmark, tap):
    benchmark.group = "tap 1514 B"
    peer, skb = tap
    frame = skb.tobytes()
    assert benchmark(_core.tap_bench_write, peer.dev.fd, frame, FRAMES) == FRAMES


def test_tap_pynet_per_frame(benchmark, tap):
    benchmark.group = "tap 1514 B"
    peer, skb = tap

    def run():
        for _ in range(FRAMES):
            dev_queue_xmit(skb)
    before = peer.dev.stats.tx_packets
    benchmark(run)
    assert peer.dev.stats.tx_dropped == 0 and peer.dev.stats.tx_packets > before


def xmit_batches(dev, batch):
    """FRAMES frames in ndo_xmit_batch calls. Only what the driver took counts:
    frames it refused with a full queue (EAGAIN, ENOBUFS) are offered again,
    as the C loop retries, so every run moves exactly FRAMES frames."""
    left = FRAMES
    while left:
        left -= dev.ndo_xmit_batch(batch[:min(len(batch), left)])


def test_tap_pynet_batched(benchmark, tap):
    benchmark.group = "tap 1514 B"
    peer, skb = tap
    batch = [skb] * BATCH

    def run():
        xmit_batches(peer.dev, batch)
    before = peer.dev.stats.tx_packets
    benchmark(run)
    assert peer.dev.stats.tx_errors == 0 and peer.dev.stats.tx_packets > before


def test_tap_offload_64k(benchmark, tap_offload):
    benchmark.group = "tap 64 KB GSO"
    peer, skb = tap_offload

    def run():
        for _ in range(64):
            dev_queue_xmit(skb)
    benchmark(run)
    assert peer.dev.stats.tx_errors == 0


def test_af_packet_per_frame(benchmark, veth):
    benchmark.group = "af_packet 1514 B"
    peer, skb = veth

    def run():
        for _ in range(FRAMES):
            while peer.dev.ndo_start_xmit(skb) == NETDEV_TX_BUSY:
                pass                   # the queue is full: again, as the C loop does
    benchmark(run)


def test_af_packet_sendmmsg(benchmark, veth):
    benchmark.group = "af_packet 1514 B"
    peer, skb = veth
    batch = [skb] * BATCH

    def run():
        xmit_batches(peer.dev, batch)
    before = peer.dev.stats.tx_packets
    benchmark(run)
    assert peer.dev.stats.tx_errors == 0 and peer.dev.stats.tx_packets > before


def _median(config, name):
    session = getattr(config, "_benchmarksession", None)
    for b in getattr(session, "benchmarks", None) or ():
        if b.name == name and b.stats:
            return b["median"]
    return None


@pytest.fixture(scope="module", autouse=True)
def summary(request):
    yield
    med = {n: _median(request.config, n) for n in (
        "test_tap_c_write_loop", "test_tap_pynet_per_frame", "test_tap_pynet_batched",
        "test_tap_offload_64k", "test_af_packet_per_frame", "test_af_packet_sendmmsg")}
    if not all(med.values()) or not request.config.getoption("benchmark_enable", False):
        return
    fps = {n: FRAMES / t for n, t in med.items() if n != "test_tap_offload_64k"}
    c = fps["test_tap_c_write_loop"]
    lines = [
        f"TAP 1514 B, C write loop:        {c / 1e3:8.0f} kframes/s",
        f"TAP 1514 B, pynet per frame:     {fps['test_tap_pynet_per_frame'] / 1e3:8.0f} kframes/s"
        f"  ({fps['test_tap_pynet_per_frame'] / c:.0%} of C; target >= 80%)",
        f"TAP 1514 B, pynet batches of 64: {fps['test_tap_pynet_batched'] / 1e3:8.0f} kframes/s"
        f"  ({fps['test_tap_pynet_batched'] / c:.0%} of C)",
        f"TAP 64 KB UDP GSO writes:        {64 * (GSO_PAYLOAD + 42) / med['test_tap_offload_64k'] * 8 / 1e9:8.1f} Gbit/s",
        f"AF_PACKET 1514 B, send per frame:{fps['test_af_packet_per_frame'] / 1e3:8.0f} kframes/s",
        f"AF_PACKET 1514 B, sendmmsg x64:  {fps['test_af_packet_sendmmsg'] / 1e3:8.0f} kframes/s"
        f"  ({fps['test_af_packet_sendmmsg'] / fps['test_af_packet_per_frame']:.2f}x per frame)",
    ]
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():     # teardown output is captured otherwise
        reporter.write_line("")
        reporter.section("pynet devices (issue 3)")
        for line in lines:
            reporter.write_line(line)
