"""TCP inside two pynet stacks joined by the in-memory pipe: the whole path
(IPv4, ARP, software GSO and checksums in the device layer) on a fake clock."""
import hashlib
import random

import pytest

from pynet.dev.fault import FaultInjector
from pynet.stack import pipe_stacks
from pynet.tcp.cong import tcp_set_congestion_control
from pynet.tcp.tcp import TcpState
from pynet.tcp.tcp_ipv4 import tcp_v4_connect, tcp_v4_init_sock
from pynet.tcp.tcp_user import inet_accept, inet_listen, tcp_close, tcp_recvmsg, tcp_sendmsg
from pynet.wire.ipv4 import ip_aton

A, B = "198.18.0.1", "198.18.0.2"


def two_stacks(wrap=None):
    return pipe_stacks((A, B), wraps=(wrap, wrap))


def transfer(a, b, nbytes, seed=3, limit=60.0, cc="reno"):
    """Connect a -> b, send nbytes of random data, close; returns what b read."""
    data = random.Random(seed).randbytes(nbytes)
    now = 0.0
    ls = tcp_v4_init_sock(b)
    inet_listen(ls, ls.hashinfo, 0, 80, 8)
    c = tcp_v4_init_sock(a)
    tcp_set_congestion_control(c, cc)
    tcp_v4_connect(c, ip_aton(B), 80, now)
    s, sent, got = None, 0, []
    while now < limit:
        now += 0.0005
        a.poll(now)
        b.poll(now)
        if s is None:
            try:
                s = inet_accept(ls)
            except BlockingIOError:
                continue
        if c.state == TcpState.ESTABLISHED and sent < nbytes:
            sent += tcp_sendmsg(c, data[sent:sent + (1 << 20)], now)
            if sent == nbytes:
                tcp_close(c, now)
        try:
            d = tcp_recvmsg(s, 1 << 22, now)
        except BlockingIOError:
            continue
        if not d:
            break
        got.append(d)
    return data, b"".join(got), c, s


def test_two_stacks_transfer_sha256():
    a, b = two_stacks()
    data, got, c, s = transfer(a, b, 4 << 20)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
    assert c.mss_cache == 1448 and c.rx_opt.wscale_ok and c.rx_opt.tstamp_ok
    assert s.state == TcpState.CLOSE_WAIT


@pytest.mark.parametrize("tso", [True, False], ids=["tso", "software-gso"])
def test_big_tcp_super_segments_cross_whole_or_cut_in_software(tso):
    """Devices with gso_ipv4_max_size 256 KB: the sender builds BIG TCP skbs
    (IPv4 tot_len 0); a TSO pipe carries them whole and the receiver's IP
    reads their length from the skb, a pipe without TSO gets them cut by
    the C GSO. Either way the data arrives intact."""
    from pynet.dev.tap import TAP_OFFLOAD_FEATURES
    a, b = pipe_stacks((A, B), features=TAP_OFFLOAD_FEATURES if tso else 0)
    for st in (a, b):
        for dev in st.devices.values():
            dev.gso_ipv4_max_size = 256 << 10
    data, got, c, s = transfer(a, b, 4 << 20)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
    assert c.gso_max_size > 200_000
    dev_b, = b.devices.values()
    if tso:
        assert dev_b.stats.rx_bytes / dev_b.stats.rx_packets > 65536
    else:
        assert dev_b.stats.rx_packets > (4 << 20) // 1514


def test_acked_data_confirms_the_next_hop():
    """Forward progress confirms the neighbour (Linux's sk_dst_confirm): the sender's ARP
    entry for B is confirmed by the last ACKs, not only by the ARP reply at the start."""
    a, b = two_stacks()
    data, got, c, s = transfer(a, b, 4 << 20)
    assert got == data
    n, = a.arp_tbl.entries.values()
    assert a.now > 0.02                     # the ARP reply came in the first millisecond
    assert n.confirmed == pytest.approx(a.now, abs=0.002)


@pytest.mark.parametrize("seed,cc", [(1, "reno"), (2, "reno"), (3, "cubic")])
def test_two_stacks_with_loss_reorder_duplicates(seed, cc):
    a, b = two_stacks(lambda d: FaultInjector(d, seed=seed, drop=0.02, duplicate=0.01,
                                              reorder=0.02))
    data, got, c, s = transfer(a, b, 1 << 20, cc=cc)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
    assert c.stats["RetransSegs"] > 0
