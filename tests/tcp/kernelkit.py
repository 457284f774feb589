"""Kit for TCP tests against the Linux kernel in a namespace (pynet.netns.kernel_peer):
pynet's stack on the TAP, a real-time loop, kernel listeners and bulk transfers both
ways with their bytes counted and hashed."""
import hashlib
import select
import socket
import time

from pynet.dev.fault import FaultInjector
from pynet.stack import Stack
from pynet.tcp.tcp import TcpState
from pynet.tcp.tcp_ipv4 import tcp_v4_connect, tcp_v4_init_sock
from pynet.tcp.tcp_user import inet_accept, inet_listen, tcp_close, tcp_recvmsg, tcp_sendmsg
from pynet.wire.ipv4 import ip_aton


def kernel_listener(peer, backlog=128):
    """A listening kernel socket at the peer's address, any port."""
    srv = peer.ns.run_in(socket.socket, socket.AF_INET, socket.SOCK_STREAM)
    srv.bind((peer.kernel_addr, 0))
    srv.listen(backlog)
    return srv


def connect_to_kernel(stack, dev, srv):
    """pynet connects to the kernel listener srv: (pynet's socket, the kernel's accepted one)."""
    c = tcp_v4_init_sock(stack)
    addr, port = srv.getsockname()
    tcp_v4_connect(c, ip_aton(addr), port, time.monotonic())
    loop(stack, dev, [srv], lambda now: c.state == TcpState.ESTABLISHED, limit=5)
    conn, _ = srv.accept()
    return c, conn


def pynet_on(peer, **faults):
    """A stack on the TAP (through a seeded fault injector if faults are given)."""
    dev = FaultInjector(peer.dev, seed=11, **faults) if faults else peer.dev
    stack = Stack(seed=1)
    stack.add_device(dev)
    stack.add_address(dev, f"{peer.pynet_addr()}/{peer.prefixlen}")
    return stack, dev


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


def pynet_to_kernel(peer, data, on_half=None, watch=None, limit=60.0, **faults):
    """pynet connects to a kernel listener, sends data, closes; returns the
    kernel side's Sink and pynet's socket. on_half(conn) runs mid-transfer;
    watch(now, pynet_sock, kernel_sock) runs every round once connected."""
    stack, dev = pynet_on(peer, **faults)
    with kernel_listener(peer) as srv:
        srv.setblocking(False)
        c = tcp_v4_init_sock(stack)
        tcp_v4_connect(c, ip_aton(peer.kernel_addr), srv.getsockname()[1], time.monotonic())
        st = {"conn": None, "sent": 0, "sink": None}

        def step(now):
            if st["conn"] is None:
                try:
                    st["conn"], _ = srv.accept()
                except BlockingIOError:
                    pass
                else:
                    st["conn"].setblocking(False)
                    st["sink"] = Sink(lambda: st["conn"].recv(1 << 20))
            if c.state == TcpState.ESTABLISHED and st["sent"] < len(data):
                before = st["sent"]
                st["sent"] += tcp_sendmsg(c, data[before:before + (1 << 20)], now)
                if on_half and before < len(data) // 2 <= st["sent"]:
                    on_half(st["conn"])
                if st["sent"] == len(data):
                    tcp_close(c, now)
            if watch and st["conn"] is not None:
                watch(now, c, st["conn"])
            return st["sink"] is not None and st["sink"].drain()

        loop(stack, dev, [srv], step, limit)
        st["conn"].close()
    return st["sink"], c


def kernel_to_pynet(peer, data, watch=None, limit=60.0, **faults):
    """The kernel connects to a pynet listener, sends data, shuts down;
    pynet reads to EOF and closes. Returns pynet's Sink and socket.
    watch(now, pynet_sock, kernel_sock) runs every round once accepted."""
    stack, dev = pynet_on(peer, **faults)
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
                except BlockingIOError:
                    return False
                st["sink"] = Sink(lambda: tcp_recvmsg(st["s"], 1 << 22, time.monotonic()))
            if st["sent"] < len(data):
                try:
                    st["sent"] += cli.send(data[st["sent"]:st["sent"] + (1 << 20)])
                except BlockingIOError:
                    pass
            elif not st["closed"]:
                cli.shutdown(socket.SHUT_WR)
                st["closed"] = True
            if watch:
                watch(now, st["s"], cli)
            return st["sink"].drain()

        loop(stack, dev, [cli], step, limit)
        # our close reaches the kernel as EOF
        tcp_close(st["s"], time.monotonic())
        kernel_eof = Sink(lambda: cli.recv(10))
        loop(stack, dev, [cli], lambda now: kernel_eof.drain(), limit=5)
    return st["sink"], st["s"]
