"""TCP bulk transfer: pynet <-> the Linux kernel over a TAP (TSO on and off),
and pynet <-> pynet over the in-memory pipe on a fake clock.

Each round moves 64 MiB (16 MiB on the pipe) and checks its sha256; the
figure to read is extra_info["gbit_s"] (the kernel's cc is the namespace's
default). Run as root: `python -m pytest bench/bench_tcp.py --benchmark-enable`.
"""
import os
import random
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "tests", "tcp"))

from test_tcp_kernel import kernel_to_pynet, pynet_to_kernel   # noqa: E402
from test_tcp_stack import transfer, two_stacks                 # noqa: E402

from pynet.netns import kernel_peer  # noqa: E402

DATA = random.Random(1).randbytes(16 << 20) * 4


def _rate(benchmark, nbytes, fn):
    def once():
        t = time.perf_counter()
        n = fn()
        benchmark.extra_info["gbit_s"] = round(nbytes * 8 / (time.perf_counter() - t) / 1e9, 3)
        return n
    assert benchmark.pedantic(once, rounds=1, iterations=1) == nbytes


@pytest.mark.priv
@pytest.mark.parametrize("offload", [True, False], ids=["tso", "no-tso"])
@pytest.mark.parametrize("direction", ["pynet-to-kernel", "kernel-to-pynet"])
def test_tcp_bulk_with_kernel(benchmark, offload, direction):
    benchmark.group = "tcp bulk transfer with the kernel over TAP, 64 MiB"
    move = pynet_to_kernel if direction == "pynet-to-kernel" else kernel_to_pynet

    def run():
        with kernel_peer("tap", offload=offload) as peer:
            return move(peer, DATA)[0].n
    _rate(benchmark, len(DATA), run)


def test_tcp_bulk_between_two_stacks(benchmark):
    benchmark.group = "tcp bulk transfer, two pynet stacks on the pipe, 16 MiB"
    n = 16 << 20
    _rate(benchmark, n, lambda: len(transfer(*two_stacks(), n)[1]))
