"""Differential tests: each body runs twice against the Linux kernel in a
namespace, once with stdlib sockets (made inside the namespace, so they are
the kernel's own, reaching its server over its local route) and once with
pynet sockets (over the TAP). Exception types, errnos and option values
must be the same."""
import contextlib
import errno
import ipaddress
import select
import socket
import struct
import time

import pytest

from pynet.netns import kernel_peer
from pynet.stack import Stack

pytestmark = pytest.mark.priv
LINGER0 = struct.pack("ii", 1, 0)


class Side:
    """What a test body gets: sockets of one kind, the kernel's address, a
    local address for bind, and kernel-side servers."""

    def __init__(self, peer, new_socket, local_addr):
        self.peer = peer
        self.new_socket = new_socket
        self.local_addr = local_addr
        self.server_addr = peer.kernel_addr
        net = peer.network
        other = "198.19.0.1" if net.network_address in ipaddress.ip_network("198.18.0.0/16") \
            else "198.18.0.1"
        self.no_route = other                        # in 198.18/15 but routed nowhere
        self.no_host = str(net.network_address + 77)  # on the link, nobody answers ARP

    def socket(self, type=socket.SOCK_STREAM):
        return self.new_socket(socket.AF_INET, type)

    def kernel_listener(self):
        srv = self.peer.ns.run_in(socket.socket, socket.AF_INET, socket.SOCK_STREAM)
        srv.bind((self.server_addr, 0))
        srv.listen(8)
        return srv

    @contextlib.contextmanager
    def connected(self):
        """(client of this side, the kernel's accepted end)."""
        srv = self.kernel_listener()
        cli = self.socket()
        cli.settimeout(5)
        try:
            cli.connect(srv.getsockname())
            conn, _ = srv.accept()
            with conn:
                yield cli, conn
        finally:
            cli.close()
            srv.close()


@pytest.fixture(scope="module")
def sides():
    with kernel_peer("tap") as peer:
        stack = Stack(seed=11)
        stack.add_device(peer.dev)
        stack.add_address(peer.dev, f"{peer.pynet_addr()}/{peer.prefixlen}")
        with stack:
            yield {"stdlib": Side(peer, lambda f, t: peer.ns.run_in(socket.socket, f, t),
                                  peer.kernel_addr),
                   "pynet": Side(peer, stack.socket, peer.pynet_addr())}


def outcome(fn, *args):
    """What a call did: ("ok", value) or (exception type, errno or args)."""
    try:
        return "ok", fn(*args)
    except OSError as exc:
        return type(exc).__name__, exc.errno if exc.errno is not None else exc.args


def both(sides, body):
    got = {kind: body(side) for kind, side in sides.items()}
    assert got["pynet"] == got["stdlib"]
    return got["pynet"]


def test_refused(sides):
    def body(side):
        srv = side.kernel_listener()
        port = srv.getsockname()[1]
        srv.close()
        with side.socket() as s:
            r1 = outcome(s.connect, (side.server_addr, port))
        with side.socket() as s:
            r2 = outcome(s.connect_ex, (side.server_addr, port))
        return r1, r2
    assert both(sides, body) == (("ConnectionRefusedError", errno.ECONNREFUSED),
                                 ("ok", errno.ECONNREFUSED))


def test_reset(sides):
    def body(side):
        with side.connected() as (cli, conn):
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
            conn.close()
            return outcome(cli.recv, 10), outcome(cli.recv, 10)
    assert both(sides, body) == (("ConnectionResetError", errno.ECONNRESET), ("ok", b""))


def test_broken_pipe(sides):
    def body(side):
        with side.connected() as (cli, conn):
            cli.shutdown(socket.SHUT_WR)
            after_shutdown = outcome(cli.send, b"x")
        with side.connected() as (cli, conn):
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
            conn.close()
            select.select([cli], [], [], 5)
            after_reset = [outcome(cli.send, b"x") for _ in range(2)]
        return after_shutdown, after_reset
    assert both(sides, body) == (("BrokenPipeError", errno.EPIPE),
                                 [("ConnectionResetError", errno.ECONNRESET),
                                  ("BrokenPipeError", errno.EPIPE)])


def test_timeout(sides):
    def body(side):
        with side.connected() as (cli, conn):
            cli.settimeout(0.2)
            r = outcome(cli.recv, 1)
            srv = side.kernel_listener()
        with srv, side.socket() as s:
            s.bind((side.local_addr, 0))
            s.listen()
            s.settimeout(0.1)
            return r, outcome(s.accept)
    assert both(sides, body) == (("TimeoutError", ("timed out",)),) * 2


def test_address_in_use(sides):
    def body(side):
        with side.socket() as a, side.socket() as b, side.socket() as c:
            a.bind((side.local_addr, 0))
            a.listen()
            port = a.getsockname()[1]
            r1 = outcome(b.bind, (side.local_addr, port))
            c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            r2 = outcome(c.bind, (side.local_addr, port))     # a listener still holds it
            with side.socket() as d:
                r3 = outcome(d.bind, ("198.18.255.254", 0))
            return r1, r2, r3
    assert both(sides, body) == (("OSError", errno.EADDRINUSE),) * 2 + \
        (("OSError", errno.EADDRNOTAVAIL),)


def test_unreachable(sides):
    def body(side):
        with side.socket() as s:
            r1 = outcome(s.connect, (side.no_route, 80))
        with side.socket() as s:
            s.settimeout(10)
            r2 = outcome(s.connect, (side.no_host, 80))    # ARP fails after ~3 s
        return r1, r2
    assert both(sides, body) == (("OSError", errno.ENETUNREACH), ("OSError", errno.EHOSTUNREACH))


def test_would_block(sides):
    def body(side):
        with side.connected() as (cli, conn):
            cli.setblocking(False)
            r1 = outcome(cli.recv, 1)
            conn.sendall(b"abc")
            select.select([cli], [], [], 5)
            r2 = outcome(cli.recv, 10, socket.MSG_PEEK), outcome(cli.recv, 10)
            cli.setblocking(True)
            r3 = outcome(cli.recv, 1, socket.MSG_DONTWAIT)
        with side.socket() as s:
            s.bind((side.local_addr, 0))
            s.listen()
            s.setblocking(False)
            r4 = outcome(s.accept)
        with side.socket(socket.SOCK_DGRAM) as u:
            u.setblocking(False)
            u.bind((side.local_addr, 0))
            r5 = outcome(u.recvfrom, 10)
        return r1, r2, r3, r4, r5
    eagain = ("BlockingIOError", errno.EAGAIN)
    assert both(sides, body) == (eagain, (("ok", b"abc"), ("ok", b"abc")), eagain, eagain, eagain)


def test_connect_in_progress(sides):
    def body(side):
        srv = side.kernel_listener()
        port = srv.getsockname()[1]
        with srv, side.socket() as s:
            s.setblocking(False)
            r1 = outcome(s.connect, srv.getsockname())
            ready = select.select([], [s], [], 5)[1] == [s]
            r2 = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            r3 = outcome(s.connect, srv.getsockname())
            r4 = outcome(s.connect, srv.getsockname())
        with side.socket() as s:
            s.setblocking(False)
            r5 = s.connect_ex((side.server_addr, port))     # closed now: refused
            select.select([], [s], [], 5)
            r6 = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            r7 = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        return r1, ready, r2, r3, r4, r5, r6, r7
    assert both(sides, body)[:2] == (("BlockingIOError", errno.EINPROGRESS), True)


TCP_OPTS = [(socket.SOL_SOCKET, o) for o in ("SO_REUSEADDR", "SO_KEEPALIVE", "SO_ERROR")] + \
    [(socket.IPPROTO_TCP, o) for o in ("TCP_NODELAY", "TCP_CORK", "TCP_KEEPIDLE", "TCP_KEEPINTVL",
                                       "TCP_KEEPCNT", "TCP_USER_TIMEOUT")] + \
    [(socket.IPPROTO_IP, o) for o in ("IP_TTL", "IP_TOS")]
SETS = [(socket.SOL_SOCKET, "SO_REUSEADDR", 1), (socket.SOL_SOCKET, "SO_KEEPALIVE", 1),
        (socket.SOL_SOCKET, "SO_RCVBUF", 65536), (socket.SOL_SOCKET, "SO_SNDBUF", 1000),
        (socket.SOL_SOCKET, "SO_LINGER", struct.pack("ii", 1, 5)),
        (socket.IPPROTO_TCP, "TCP_NODELAY", 1), (socket.IPPROTO_TCP, "TCP_CORK", 1),
        (socket.IPPROTO_TCP, "TCP_MAXSEG", 1200), (socket.IPPROTO_TCP, "TCP_MAXSEG", 20),
        (socket.IPPROTO_TCP, "TCP_KEEPIDLE", 60), (socket.IPPROTO_TCP, "TCP_KEEPIDLE", 0),
        (socket.IPPROTO_TCP, "TCP_KEEPINTVL", 7), (socket.IPPROTO_TCP, "TCP_KEEPCNT", 200),
        (socket.IPPROTO_TCP, "TCP_USER_TIMEOUT", 2500), (socket.IPPROTO_TCP, "TCP_USER_TIMEOUT", -1),
        (socket.IPPROTO_IP, "IP_TTL", 9), (socket.IPPROTO_IP, "IP_TTL", 300),
        (socket.IPPROTO_IP, "IP_TOS", 0xB9)]


def _opts(s):
    out = {name: s.getsockopt(level, getattr(socket, name)) for level, name in TCP_OPTS}
    out["SO_LINGER"] = s.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)
    return out


def test_socket_options(sides):
    def body(side):
        with side.socket() as s:
            defaults = _opts(s)
            defaults["TCP_MAXSEG"] = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
            sets = []
            for level, name, value in SETS:
                r = outcome(s.setsockopt, level, getattr(socket, name), value)
                size = 8 if name == "SO_LINGER" else None
                args = (level, getattr(socket, name)) + ((size,) if size else ())
                sets.append((name, value, r, s.getsockopt(*args)))
            info_len = len(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1024))
        with side.connected() as (cli, conn):
            connected = _opts(cli)
            info = cli.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1024)
            state, options = info[0], info[5]
        with side.socket(socket.SOCK_DGRAM) as u:
            udp = {name: outcome(u.getsockopt, level, getattr(socket, name))
                   for level, name in TCP_OPTS}
            u.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0xB9)
            udp["tos set"] = u.getsockopt(socket.IPPROTO_IP, socket.IP_TOS)
        return defaults, sets, info_len, connected, state, options, udp
    result = both(sides, body)
    assert result[4] == 1                             # TCP_ESTABLISHED in tcp_info
    assert result[5] & 1                              # timestamps negotiated


def test_kernel_sees_pynet_options(sides):
    """TCP_MAXSEG set on a pynet socket reaches the wire: the kernel's MSS
    toward pynet is capped by what pynet's SYN announced."""
    side = sides["pynet"]
    srv = side.kernel_listener()
    with srv, side.socket() as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1000)
        s.settimeout(5)
        s.connect(srv.getsockname())
        conn, _ = srv.accept()
        with conn:
            assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG) <= 1000
            start = time.monotonic()
            s.sendall(b"y" * 100_000)
            got = 0
            while got < 100_000 and time.monotonic() - start < 10:
                got += len(conn.recv(65536))
            assert got == 100_000
