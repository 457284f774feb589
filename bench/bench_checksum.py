"""The C checksum against the Python oracle and a memcpy of the same buffer."""
import random

import pytest

import oracle
from pynet.checksum import csum_partial

SIZES = [1500, 65536]


@pytest.fixture(params=SIZES, ids=str)
def buf(request):
    return random.Random(request.param).randbytes(request.param)


def test_csum_c(benchmark, buf):
    benchmark.group = f"checksum {len(buf)} B"
    benchmark.extra_info["bytes"] = len(buf)
    benchmark(csum_partial, buf)


def test_csum_oracle(benchmark, buf):
    benchmark.group = f"checksum {len(buf)} B"
    benchmark(oracle.ones_sum, buf)


def test_memcpy(benchmark, buf):
    # The ceiling: one memcpy into a preallocated buffer (no allocation).
    benchmark.group = f"checksum {len(buf)} B"
    dst = memoryview(bytearray(len(buf)))

    def copy():
        dst[:] = buf
    benchmark(copy)
