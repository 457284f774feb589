"""pynet's TCP against the Linux kernel in a namespace, over a TAP, on real
time: data both ways with sha256 equal at both ends, TSO on and off, and
the options the kernel agreed to (its own `ss -ti`)."""
import hashlib
import random
import select
import socket
import time

import pytest

from pynet.netns import kernel_peer
from pynet.stack import Stack
from pynet.tcp.tcp import TcpState
from pynet.tcp.tcp_ipv4 import tcp_v4_connect, tcp_v4_init_sock
from pynet.tcp.tcp_user import inet_accept, inet_listen, tcp_close, tcp_recvmsg, tcp_sendmsg
from pynet.wire.ipv4 import ip_aton

pytestmark = pytest.mark.priv
NBYTES = 8 << 20
TCPI_OPT_TIMESTAMPS = 1
TCPI_OPT_WSCALE = 4


def pynet_on(peer):
    stack = Stack(seed=1)
    stack.add_device(peer.dev)
    stack.add_address(peer.dev, f"{peer.pynet_addr()}/{peer.prefixlen}")
    return stack


def loop(stack, dev, ksocks, step, limit=60.0):
    """Poll the stack on real time, calling step(now) each round, until it
    returns True; wait on the TAP and the kernel sockets in between."""
    deadline = time.monotonic() + limit
    while True:
        now = time.monotonic()
        assert now < deadline, "transfer stalled"
        stack.poll(now)
        if step(now):
            return
        nt = stack.next_timer()
        timeout = 0.005 if nt is None else min(0.005, max(0.0, nt - now))
        select.select([dev] + [s for s in ksocks if s is not None], [], [], timeout)


class Sink:
    """Reads a stream until EOF, keeping only its length and sha256."""

    def __init__(self, recv):
        self.recv = recv
        self.sha = hashlib.sha256()
        self.n = 0

    def drain(self):
        """Read what is there; True at EOF."""
        while True:
            try:
                d = self.recv()
            except BlockingIOError:
                return False
            if not d:
                return True
            self.sha.update(d)
            self.n += len(d)


def kernel_ss(peer):
    return peer.ns.run(["ss", "-tin"], capture_output=True, text=True).stdout


@pytest.mark.parametrize("offload", [False, True], ids=["no-tso", "tso"])
def test_pynet_client_sends_to_kernel_server(offload):
    data = random.Random(5).randbytes(NBYTES)
    with kernel_peer("tap", offload=offload) as peer:
        stack = pynet_on(peer)
        srv = peer.ns.run_in(socket.socket, socket.AF_INET, socket.SOCK_STREAM)
        with srv:
            srv.bind((peer.kernel_addr, 0))
            srv.listen()
            srv.setblocking(False)
            c = tcp_v4_init_sock(stack)
            tcp_v4_connect(c, ip_aton(peer.kernel_addr), srv.getsockname()[1], time.monotonic())
            st = {"conn": None, "sent": 0, "ss": "", "sink": None}

            def step(now):
                if st["conn"] is None:
                    try:
                        st["conn"], _ = srv.accept()
                        st["conn"].setblocking(False)
                        st["sink"] = Sink(lambda: st["conn"].recv(1 << 20))
                    except BlockingIOError:
                        pass
                if c.state == TcpState.ESTABLISHED and st["sent"] < NBYTES:
                    st["sent"] += tcp_sendmsg(c, data[st["sent"]:st["sent"] + (1 << 20)], now)
                    if not st["ss"] and st["sent"] > NBYTES // 2:
                        st["ss"] = kernel_ss(peer)
                        st["info"] = st["conn"].getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
                    if st["sent"] == NBYTES:
                        tcp_close(c, now)
                return st["sink"] is not None and st["sink"].drain()

            loop(stack, peer.dev, [srv], step)
            st["conn"].close()
        assert st["sink"].n == NBYTES
        assert st["sink"].sha.hexdigest() == hashlib.sha256(data).hexdigest()
        # the kernel agreed to timestamps and window scaling (its tcp_info: tcpi_options,
        # tcpi_snd_wscale = our shift 7), and its MSS is the path's less the TS option
        options, wscales = st["info"][5], st["info"][6]
        assert options & TCPI_OPT_TIMESTAMPS and options & TCPI_OPT_WSCALE
        assert wscales & 0x0F == 7
        assert "wscale:7," in st["ss"] and "mss:1448" in st["ss"]


@pytest.mark.parametrize("offload", [False, True], ids=["no-tso", "tso"])
def test_kernel_client_sends_to_pynet_server(offload):
    data = random.Random(6).randbytes(NBYTES)
    with kernel_peer("tap", offload=offload) as peer:
        stack = pynet_on(peer)
        ls = tcp_v4_init_sock(stack)
        inet_listen(ls, ls.hashinfo, 0, 8080, 16)
        cli = peer.ns.run_in(socket.socket, socket.AF_INET, socket.SOCK_STREAM)
        with cli:
            cli.setblocking(False)
            cli.connect_ex((peer.pynet_addr(), 8080))
            st = {"s": None, "sent": 0, "closed": False, "sink": None}

            def step(now):
                if st["s"] is None:
                    try:
                        st["s"] = inet_accept(ls)
                        st["sink"] = Sink(lambda: tcp_recvmsg(st["s"], 1 << 22, time.monotonic()))
                    except BlockingIOError:
                        return False
                if st["sent"] < NBYTES:
                    try:
                        st["sent"] += cli.send(data[st["sent"]:st["sent"] + (1 << 20)])
                    except BlockingIOError:
                        pass
                elif not st["closed"]:
                    cli.shutdown(socket.SHUT_WR)
                    st["closed"] = True
                return st["sink"].drain()

            loop(stack, peer.dev, [cli], step)
            # our close reaches the kernel as EOF
            tcp_close(st["s"], time.monotonic())
            kernel_eof = Sink(lambda: cli.recv(10))
            loop(stack, peer.dev, [cli], lambda now: kernel_eof.drain(), limit=5)
        assert st["sink"].n == NBYTES
        assert st["sink"].sha.hexdigest() == hashlib.sha256(data).hexdigest()
