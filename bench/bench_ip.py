"""The IPv4 layer per datagram: UDP send and receive between two stacks on a pipe.

Figures are per call of the benchmarked function; the ratios that matter are
small datagram vs 1,472 bytes (per-packet cost dominates) and a 60,000-byte
datagram (fragmentation and reassembly of 41 fragments).
"""
import pytest

from pynet.dev.pipe import pipe_pair
from pynet.stack import Stack

SIZES = [8, 1472, 60000]


@pytest.fixture
def pair():
    da, db = pipe_pair(("pynba", "pynbb"))
    a, b = Stack(seed=1), Stack(seed=2)
    a.add_device(da)
    b.add_device(db)
    a.add_address(da, "198.18.0.1/24")
    b.add_address(db, "198.18.0.2/24")
    srv = b.udp_socket()
    srv.bind(("", 9))
    cli = a.udp_socket()
    cli.connect(("198.18.0.2", 9))
    now = [0.0]

    def poll():
        now[0] += 1e-6
        a.poll(now[0])
        b.poll(now[0])
    cli.send(b"warm-up")           # resolve the neighbour first
    for _ in range(5):
        poll()
    srv.recv(100)
    return cli, srv, poll


@pytest.mark.parametrize("size", SIZES, ids=str)
def test_udp_roundtrip_through_two_stacks(benchmark, pair, size):
    cli, srv, poll = pair
    data = b"x" * size
    benchmark.group = "udp send + receive through two pynet stacks"
    benchmark.extra_info["bytes"] = size

    def one():
        cli.send(data)
        poll()
        return srv.recv(65535)
    assert len(benchmark(one)) == size
