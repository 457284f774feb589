"""Device throughput against the kernel in a namespace (needs root).

    python -m pytest bench -k bench_dev --benchmark-enable

- TAP, 1,514-byte UDP frames to a kernel socket: the stack's two paths
  through pynet's driver (one dev_queue_xmit per frame; 64 frames queued on
  the qdisc and sent by one qdisc_run, as a GSO skb's segments are) versus
  a minimal C write() loop on the same TAP (_core.tap_bench_write);
  and a 64 KB UDP GSO frame cut in C and written in one call (xmit_gso), as
  the stack sends on a device without offloads;
- TAP with IFF_VNET_HDR: 64 KB UDP GSO frames, bytes/s;
- AF_PACKET on a veth: the same three paths (one send per frame, sendmmsg
  batches).

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
from pynet.dev.netdevice import dev_queue_xmit  # noqa: E402
from pynet.netns import kernel_peer  # noqa: E402

pytestmark = pytest.mark.priv

FRAMES = 1024
BATCH = 64
GSO_PAYLOAD = 63 * 1024
GSO_SEGS = 44                    # 1,472-byte datagrams in one 64 KB UDP GSO frame


def sink(peer):
    """A kernel UDP socket nobody reads: every frame takes the kernel's whole
    receive path, then waits or is dropped at the full socket buffer."""
    s = peer.ns.run_in(socket.socket, socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((peer.kernel_addr, 0))
    peer.ns.on_close(s.close)
    return s.getsockname()[1]


def frames(peer):
    """(peer, one 1,514-byte UDP frame, one UDP GSO frame of GSO_SEGS such
    frames) to a kernel sink, for a device without offloads."""
    port = sink(peer)
    return (peer, udp_frame(peer.dev, peer, port, bytes(1472)),
            udp_frame(peer.dev, peer, port, bytes(1472 * GSO_SEGS), gso_size=1472))


@pytest.fixture(scope="module")
def tap():
    with kernel_peer("tap") as peer:
        yield frames(peer)


@pytest.fixture(scope="module")
def tap_offload():
    with kernel_peer("tap", offload=True) as peer:
        yield peer, udp_frame(peer.dev, peer, sink(peer), bytes(GSO_PAYLOAD), gso_size=1472)


@pytest.fixture(scope="module")
def veth():
    with kernel_peer("veth") as peer:
        yield frames(peer)


@pytest.fixture(params=["tap", "veth"], ids=["tap", "af_packet"])
def link(request, benchmark):
    """(peer, skb) of the TAP or the veth fixture; names the benchmark group."""
    benchmark.group = f"{request.node.callspec.id} 1514 B"
    return request.getfixturevalue(request.param)


def drain(dev):
    """Wait out a full kernel queue until the qdisc is empty, as the C loop
    retries: every run then moves exactly FRAMES frames."""
    while dev.qdisc or dev.queue_stopped:
        dev.netif_wake_queue()


def test_tap_c_write_loop(benchmark, tap):
    benchmark.group = "tap 1514 B"    # as test_per_frame[tap]
    peer, skb, _ = tap
    frame = skb.tobytes()
    assert benchmark(_core.tap_bench_write, peer.dev.fd, frame, FRAMES) == FRAMES


def test_per_frame(benchmark, link):
    """The stack's path for a frame that needs no software offload: one
    dev_queue_xmit each (a busy driver's frames wait in the qdisc)."""
    peer, skb, _ = link
    dev = peer.dev

    def run():
        for _ in range(FRAMES):
            dev_queue_xmit(skb)
        drain(dev)
    before = dev.stats.tx_packets
    benchmark(run)
    assert dev.stats.tx_dropped == 0 and dev.stats.tx_errors == 0
    assert (dev.stats.tx_packets - before) % FRAMES == 0 and dev.stats.tx_packets > before


def test_qdisc_batches(benchmark, link):
    """The stack's path for the segments of a GSO skb cut in software: BATCH
    frames queued on the qdisc, then one qdisc_run (ndo_xmit_batch: one C
    call for the lot, GIL released)."""
    peer, skb, _ = link
    dev = peer.dev
    q = dev.qdisc

    def run():
        for _ in range(FRAMES // BATCH):
            for _ in range(BATCH):
                q.enqueue(skb)
            dev.qdisc_run()
        drain(dev)
    before = dev.stats.tx_packets
    benchmark(run)
    assert dev.stats.tx_dropped == 0 and dev.stats.tx_errors == 0
    assert (dev.stats.tx_packets - before) % FRAMES == 0 and dev.stats.tx_packets > before


def test_gso_segments(benchmark, link):
    """The stack's path for a 64 KB GSO skb on a device without the offload:
    one dev_queue_xmit, which cuts it in C and writes the GSO_SEGS frames in
    one call (xmit_gso); about FRAMES frames a run."""
    peer, _, gso = link
    dev = peer.dev

    def run():
        for _ in range(FRAMES // GSO_SEGS):
            dev_queue_xmit(gso)
        drain(dev)
    before = dev.stats.tx_packets
    benchmark(run)
    assert dev.stats.tx_dropped == 0 and dev.stats.tx_errors == 0
    assert (dev.stats.tx_packets - before) % (FRAMES // GSO_SEGS * GSO_SEGS) == 0
    assert dev.stats.tx_packets > before


def test_tap_offload_64k(benchmark, tap_offload):
    benchmark.group = "tap 64 KB GSO"
    peer, skb = tap_offload

    def run():
        for _ in range(64):
            dev_queue_xmit(skb)
    benchmark(run)
    assert peer.dev.stats.tx_errors == 0


def _median(config, name):
    session = getattr(config, "_benchmarksession", None)
    for b in getattr(session, "benchmarks", None) or ():
        if b.name == name and b.stats:
            return b["median"]
    return None


@pytest.fixture(scope="module", autouse=True)
def summary(request):
    yield
    names = ["test_tap_c_write_loop", "test_tap_offload_64k"] + [
        f"{t}[{k}]" for t in ("test_per_frame", "test_qdisc_batches", "test_gso_segments")
        for k in ("tap", "af_packet")]
    med = {n: _median(request.config, n) for n in names}
    if not all(med.values()) or not request.config.getoption("benchmark_enable", False):
        return
    per_run = {n: FRAMES // GSO_SEGS * GSO_SEGS if n.startswith("test_gso") else FRAMES
               for n in names}
    fps = {n: per_run[n] / t for n, t in med.items() if n != "test_tap_offload_64k"}
    c = fps["test_tap_c_write_loop"]
    lines = [f"TAP 1514 B, C write loop:                  {c / 1e3:8.0f} kframes/s"]
    for kind, label in (("tap", "TAP"), ("af_packet", "AF_PACKET")):
        one = fps[f"test_per_frame[{kind}]"]
        for test, what in (("test_per_frame", "dev_queue_xmit each"),
                           ("test_qdisc_batches", f"qdisc_run of {BATCH}"),
                           ("test_gso_segments", f"GSO cut of {GSO_SEGS}")):
            f = fps[f"{test}[{kind}]"]
            ratio = (f"{f / c:.0%} of the C loop" + ("; target >= 80%" if test == "test_per_frame" else "")
                     if kind == "tap" else f"{f / one:.2f}x per frame")
            lines.append(f"{label + ' 1514 B, ' + what + ':':42s}{f / 1e3:8.0f} kframes/s  ({ratio})")
    lines.append(f"TAP 64 KB UDP GSO writes (vnet_hdr):       "
                 f"{64 * (GSO_PAYLOAD + 42) / med['test_tap_offload_64k'] * 8 / 1e9:8.1f} Gbit/s")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():     # teardown output is captured otherwise
        reporter.write_line("")
        reporter.section("pynet devices (issue 3)")
        for line in lines:
            reporter.write_line(line)
