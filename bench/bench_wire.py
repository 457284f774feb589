"""Wire formats (pynet.wire) per frame, on the golden kernel captures:
every layer parsed with checksums verified (`dissect`), and every header
emitted back over a copy (`reemit`). Frames per second per capture; the
TCP and IPv4 C fast paths are in bench_hdr.py."""
import pytest
from wirekit import dissect, frames, reemit

CAPTURES = ["arp_icmp.pcap", "tcp.pcap", "udp_frag.pcap", "icmp_errors.pcap"]


@pytest.mark.parametrize("capture", CAPTURES)
def test_wire_parse(benchmark, capture):
    benchmark.group = "wire parse, all layers, checksums verified"
    fs = frames(capture)

    def run():
        for f in fs:
            dissect(f)

    benchmark(run)
    benchmark.extra_info["frames_per_round"] = len(fs)


@pytest.mark.parametrize("capture", CAPTURES)
def test_wire_emit(benchmark, capture):
    benchmark.group = "wire emit, all layers, checksums computed"
    fs = frames(capture)
    layers = [dissect(f) for f in fs]
    assert all(reemit(f, ls) == f for f, ls in zip(fs, layers))

    def run():
        for f, ls in zip(fs, layers):
            reemit(f, ls)

    benchmark(run)
    benchmark.extra_info["frames_per_round"] = len(fs)
