"""The stdlib socket interface over two pynet stacks joined by the pipe (no
privilege): data, addresses, timeouts, non-blocking calls, errors, options,
fileno() under select/selectors, threads, makefile, pynet.patch."""
import errno
import hashlib
import random
import select
import selectors
import socket
import struct
import threading
import time

import pytest

import pynet
from pynet.socket import socket as pynet_socket
from pynet.tcp.tcp import TcpState
from sockkit import A, B, open_fds, two_stacks


@pytest.fixture
def stacks():
    with two_stacks() as (a, b):
        yield a, b


def listener(stack, port=0, backlog=16):
    srv = stack.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind((B, port))
    srv.listen(backlog)
    return srv


def send_and_check(sender, receiver, data, chunk):
    """sendall data on one socket while a thread reads it on the other, `chunk`
    bytes a recv; the two ends' hashes must match."""
    got = bytearray()

    def read():
        while len(got) < len(data):
            got.extend(receiver.recv(chunk))
    t = threading.Thread(target=read)
    t.start()
    sender.sendall(data)
    t.join()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


def pair(a, b):
    """A connected (client on a, server side on b) pair and the listener."""
    srv = listener(b)
    cli = a.socket()
    cli.settimeout(5)
    cli.connect(srv.getsockname())
    conn, addr = srv.accept()
    conn.settimeout(5)
    assert addr == cli.getsockname()
    return cli, conn, srv


def test_stream_both_ways_with_addresses(stacks):
    a, b = stacks
    cli, conn, srv = pair(a, b)
    with cli, conn, srv:
        assert cli.getpeername() == (B, srv.getsockname()[1]) == conn.getsockname()
        assert (cli.family, cli.type, cli.proto) == (socket.AF_INET, socket.SOCK_STREAM, 0)
        send_and_check(cli, conn, random.Random(1).randbytes(3 << 20), 1 << 20)
        conn.sendall(b"back")
        buf = bytearray(10)
        assert cli.recv_into(buf, 4) == 4 and buf[:4] == b"back"
        cli.shutdown(socket.SHUT_WR)
        assert conn.recv(10) == b""            # EOF after the peer's FIN
        conn.sendall(b"still")                 # half-close: the other way still works
        assert cli.recv(10, socket.MSG_PEEK) == b"still"
        assert cli.recv(10) == b"still"


def test_makefile_lines(stacks):
    a, b = stacks
    cli, conn, srv = pair(a, b)
    with cli, conn, srv:
        w = cli.makefile("wb")
        w.write(b"one\r\ntwo\r\n")
        w.flush()
        w.close()
        r = conn.makefile("r", encoding="ascii", newline="")
        assert r.readline() == "one\r\n" and r.readline() == "two\r\n"
        cli.close()                      # the file held a reference; now it really closes
        assert r.read() == ""
        r.close()


def test_refused_and_connect_ex(stacks):
    a, b = stacks
    with a.socket() as s:
        with pytest.raises(ConnectionRefusedError) as e:
            s.connect((B, 9))
        assert e.value.args == (errno.ECONNREFUSED, "Connection refused")
    with a.socket() as s:
        assert s.connect_ex((B, 9)) == errno.ECONNREFUSED


def test_nonblocking_connect_in_progress_then_so_error(stacks):
    a, b = stacks
    srv = listener(b)
    with srv, a.socket() as s:
        s.setblocking(False)
        with pytest.raises(BlockingIOError) as e:
            s.connect(srv.getsockname())
        assert e.value.errno == errno.EINPROGRESS
        _, w, _ = select.select([], [s], [], 5)
        assert w == [s]
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        assert s.connect_ex(srv.getsockname()) == 0          # completes (SS_CONNECTED)
        assert s.connect_ex(srv.getsockname()) == errno.EISCONN
    with a.socket() as s:
        s.setblocking(False)
        assert s.connect_ex((B, 9)) == errno.EINPROGRESS
        assert select.select([], [s], [], 5)[1] == [s]
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNREFUSED
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0


def test_timeouts_and_would_block(stacks):
    a, b = stacks
    cli, conn, srv = pair(a, b)
    with cli, conn, srv:
        cli.settimeout(0.2)
        with pytest.raises(TimeoutError) as e:
            cli.recv(1)
        assert e.value.args == ("timed out",) and e.value.errno is None
        cli.settimeout(0.0)
        assert not cli.getblocking() and cli.gettimeout() == 0.0
        with pytest.raises(BlockingIOError) as e:
            cli.recv(1)
        assert e.value.args == (errno.EAGAIN, "Resource temporarily unavailable")
        cli.settimeout(None)
        with pytest.raises(BlockingIOError):
            cli.recv(1, socket.MSG_DONTWAIT)
        srv.settimeout(0.1)
        with pytest.raises(TimeoutError):
            srv.accept()
        # a full send buffer: a non-blocking send takes part, then nothing
        cli.setblocking(False)
        sent = 0
        with pytest.raises(BlockingIOError):
            while True:
                sent += cli.send(b"x" * 65536)
        assert sent > 0


def test_reset_and_broken_pipe(stacks):
    a, b = stacks
    cli, conn, srv = pair(a, b)
    with cli, srv:
        cli.sendall(b"unread")
        # close with unread data: RST (RFC 2525 s2.17)
        select.select([conn], [], [], 5)
        conn.close()
        with pytest.raises(ConnectionResetError) as e:
            cli.recv(10)
        assert e.value.errno == errno.ECONNRESET
        assert cli.recv(10) == b""               # then EOF, as Linux
        with pytest.raises(BrokenPipeError) as e:
            cli.send(b"x")
        assert e.value.args == (errno.EPIPE, "Broken pipe")


def test_address_errors(stacks):
    a, b = stacks
    srv = listener(b, 8080)
    with srv, b.socket() as s, b.socket() as t:
        with pytest.raises(OSError) as e:
            s.bind((B, 8080))
        assert e.value.errno == errno.EADDRINUSE and str(e.value) == "[Errno 98] Address already in use"
        with pytest.raises(OSError) as e:
            t.bind(("198.18.0.99", 1))
        assert e.value.errno == errno.EADDRNOTAVAIL
        with pytest.raises(OSError) as e:
            t.connect(("203.0.113.1", 80))         # no route: pynet never sends it
        assert e.value.errno == errno.ENETUNREACH
        s.bind((B, 0))
        assert 32768 <= s.getsockname()[1] <= 60999
    with pytest.raises(OSError) as e:
        srv.recv(1)
    assert e.value.errno == errno.EBADF
    assert srv.fileno() == -1


def test_reuseaddr_after_close(stacks):
    a, b = stacks
    cli, conn, srv = pair(a, b)
    port = srv.getsockname()[1]
    conn.close()                 # the server side closes first: its end lingers in TIME_WAIT
    assert cli.recv(1) == b""
    cli.close()
    srv.close()
    with b.socket() as s:
        with pytest.raises(OSError) as e:
            s.bind((B, port))
        assert e.value.errno == errno.EADDRINUSE
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((B, port))


BAD_CALLS = [
    ("connect", ("x",)), ("connect", (("a",),)), ("connect", ((1, 80),)),
    ("connect", ((A, 70000),)), ("bind", ((A, -1),)), ("connect", ((A, "80"),)),
    ("bind", ((A, 1, 2),)), ("recv", (-1,)), ("recv", ("a",)),
    ("recv_into", (bytearray(2), 5)), ("recv_into", (b"xx",)),
    ("recvfrom_into", (bytearray(2), 5)), ("recvfrom", (-5,)), ("settimeout", (-1,)),
    ("settimeout", ("a",)), ("setsockopt", (socket.SOL_SOCKET, socket.SO_REUSEADDR, "x")),
    ("shutdown", (5,)), ("send", ("str",)), ("sendall", ("str",)), ("listen", ("a",)),
    ("getpeername", ()), ("recv", (1, 1 << 40)), ("send", (b"x", "a")),
    ("sendto", (b"x", (A, 70000))), ("setsockopt", (socket.SOL_SOCKET, 9999, 1)),
    ("getsockopt", (socket.SOL_SOCKET, 9999)), ("getsockopt", (socket.SOL_SOCKET, 2, 0)),
    ("setsockopt", (socket.IPPROTO_TCP, socket.TCP_MAXSEG, 10)),
    ("setsockopt", (socket.IPPROTO_IP, socket.IP_TTL, 0)),
    ("setsockopt", (socket.SOL_SOCKET, socket.SO_LINGER, 1)),
    ("accept", ()), ("shutdown", (socket.SHUT_WR,)), ("recv", (1,)), ("send", (b"x",)),
]


@pytest.mark.parametrize("name,args", BAD_CALLS, ids=[f"{n}{a!r}"[:40] for n, a in BAD_CALLS])
def test_bad_arguments_raise_as_stdlib(stacks, name, args):
    """Each call fails before any packet would leave (parsing, or an
    unconnected socket's state), so the stdlib socket touches no network."""
    a, _ = stacks

    def outcome(sock):
        try:
            return "ok", getattr(sock, name)(*args)
        except Exception as exc:
            return type(exc), exc.args

    with socket.socket() as ref, a.socket() as s:
        assert outcome(s) == outcome(ref)


def test_options_round_trip(stacks):
    a, _ = stacks
    with a.socket() as s, socket.socket() as ref:
        for level, opt, value in [
                (socket.SOL_SOCKET, socket.SO_REUSEADDR, 1), (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
                (socket.SOL_SOCKET, socket.SO_RCVBUF, 65536), (socket.SOL_SOCKET, socket.SO_SNDBUF, 1),
                (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1), (socket.IPPROTO_TCP, socket.TCP_CORK, 1),
                (socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1000), (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 30),
                (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 5), (socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3),
                (socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 1500), (socket.IPPROTO_IP, socket.IP_TTL, 7),
                (socket.IPPROTO_IP, socket.IP_TOS, 0xff)]:
            s.setsockopt(level, opt, value)
            ref.setsockopt(level, opt, value)
            assert s.getsockopt(level, opt) == ref.getsockopt(level, opt), (level, opt)
        linger = (1).to_bytes(4, "little") + (0).to_bytes(4, "little")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        ref.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8) == \
            ref.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)
        assert len(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 512)) == \
            len(ref.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 512))


def test_linger_zero_close_resets(stacks):
    a, b = stacks
    cli, conn, srv = pair(a, b)
    with conn, srv:
        cli.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, (1).to_bytes(4, "little") + bytes(4))
        cli.close()
        with pytest.raises(ConnectionResetError):
            conn.recv(1)


@pytest.mark.parametrize("linger", [None, (1, 10)])
def test_linger_close_waits_for_the_fin_ack(stacks, linger):
    a, b = stacks
    cli, conn, srv = pair(a, b)
    with conn, srv:
        if linger:
            cli.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", *linger))
        data = b"z" * (4 << 20)
        got = bytearray()
        t = threading.Thread(target=lambda: got.extend(conn.makefile("rb").read()))
        t.start()
        cli.sendall(data)
        sk = cli._sk
        cli.close()
        state = sk.state
        t.join()
        assert got == data
        # without SO_LINGER close returns with data and FIN still in flight
        assert (state == TcpState.FIN_WAIT1) == (linger is None)


def test_tcp_info_after_connect(stacks):
    a, b = stacks
    cli, conn, srv = pair(a, b)
    with cli, conn, srv:
        info = cli.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        assert info[0] == 1                                     # TCP_ESTABLISHED
        assert cli.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO) & 0xFF == 1
        assert cli.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG) == 1448  # 1500 - 40 - timestamps


def test_udp(stacks):
    a, b = stacks
    with a.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
            b.socket(socket.AF_INET, socket.SOCK_DGRAM) as v:
        v.bind((B, 5353))
        u.settimeout(5)
        v.settimeout(5)
        with pytest.raises(OSError) as e:
            u.send(b"x")
        assert e.value.errno == errno.EDESTADDRREQ
        assert u.sendto(b"hello", (B, 5353)) == 5
        src = (A, u.getsockname()[1])
        assert u.getsockname()[0] == "0.0.0.0"          # unbound: the wildcard, as Linux
        assert v.recvfrom(100, socket.MSG_PEEK) == (b"hello", src)
        buf = bytearray(3)
        assert v.recvfrom_into(buf) == (3, src) and buf == b"hel"   # the rest is dropped
        u.connect((B, 5353))
        u.send(b"again")
        assert v.recv(100) == b"again"
        with pytest.raises(OSError) as e:
            u.sendto(b"x" * 70000, (B, 5353))
        assert e.value.errno == errno.EMSGSIZE
        v.setblocking(False)
        with pytest.raises(BlockingIOError):
            v.recv(1)


def test_fileno_readiness_is_exact(stacks):
    a, b = stacks
    cli, conn, srv = pair(a, b)
    with cli, conn, srv:
        assert select.select([conn], [conn], [], 0) == ([], [conn], [])
        cli.sendall(b"ping")
        assert select.select([conn], [], [], 5)[0] == [conn]
        assert conn.recv(10) == b"ping"
        assert select.select([conn], [], [], 0)[0] == []
        assert select.select([srv], [], [], 0)[0] == []
        with a.socket() as c2:
            c2.connect(srv.getsockname())
            assert select.select([srv], [], [], 5)[0] == [srv]
            srv.accept()[0].close()


def test_selectors_multiplex_100_sockets(stacks):
    a, b = stacks
    srv = listener(b, backlog=128)
    before = open_fds()
    clients, conns = [], []
    with selectors.DefaultSelector() as sel:
        srv.setblocking(False)
        sel.register(srv, selectors.EVENT_READ, "accept")
        for i in range(100):
            c = a.socket()
            c.setblocking(False)
            assert c.connect_ex(srv.getsockname()) == errno.EINPROGRESS
            clients.append(c)
            sel.register(c, selectors.EVENT_WRITE, ("client", i))
        pending = {i: f"msg {i}".encode() * 50 for i in range(100)}
        echoed, replies = {}, {}
        while len(echoed) < 100:
            events = sel.select(5)
            assert events, "stalled"
            for key, mask in events:
                if key.data == "accept":
                    conn, _ = srv.accept()
                    conns.append(conn)
                    conn.setblocking(False)
                    sel.register(conn, selectors.EVENT_READ, ("server", conn))
                elif key.data[0] == "client" and mask & selectors.EVENT_WRITE:
                    i = key.data[1]
                    c = clients[i]
                    c.sendall(pending[i])
                    sel.modify(c, selectors.EVENT_READ, ("reply", i))
                elif key.data[0] == "server":
                    conn = key.data[1]
                    d = conn.recv(65536)
                    if d:
                        conn.sendall(d)
                    else:
                        sel.unregister(conn)
                        conn.close()
                elif key.data[0] == "reply":
                    i = key.data[1]
                    replies[i] = replies.get(i, b"") + clients[i].recv(65536)
                    if len(replies[i]) == len(pending[i]):
                        echoed[i] = replies[i]
                        sel.unregister(clients[i])
        assert echoed == pending
    for s in clients + conns + [srv]:
        s.close()
    assert open_fds() == before      # every PollFd (a socketpair) closed with its socket


def test_threads_share_a_stack(stacks):
    a, b = stacks
    srv = listener(b, backlog=64)
    results = {}
    echoes = []

    def server():
        for _ in range(16):
            conn, _ = srv.accept()
            # daemon: a thread stuck in recv() must fail this test, not hang the interpreter
            echoes.append(threading.Thread(target=echo, args=(conn,), daemon=True))
            echoes[-1].start()

    def echo(conn):
        with conn:
            while d := conn.recv(65536):
                conn.sendall(d)

    def client(i):
        data = random.Random(i).randbytes(200_000)
        with pynet.create_connection(a, srv.getsockname(), timeout=20) as c:
            got = bytearray()
            t = threading.Thread(target=lambda: c.sendall(data))
            t.start()
            while len(got) < len(data):
                got += c.recv(65536)
            t.join()
            results[i] = got == data

    with srv:
        st = threading.Thread(target=server)
        st.start()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        st.join()
        for t in echoes:            # each server side saw its client's FIN
            t.join(timeout=20)
    assert results == {i: True for i in range(16)}
    assert not any(t.is_alive() for t in echoes), "an echo thread never saw EOF"


def test_patch_routes_stdlib_through_the_stack(stacks):
    a, b = stacks
    srv = pynet.create_server(b, (B, 0))
    port = srv.getsockname()[1]
    stdlib_socket, stdlib_cc, stdlib_gai = socket.socket, socket.create_connection, socket.getaddrinfo
    with srv:
        with pynet.patch(a, hosts={"server.test": B}):
            s = socket.socket()
            assert isinstance(s, pynet_socket) and isinstance(s, socket.socket)
            s.close()
            assert socket.getaddrinfo("server.test", port, type=socket.SOCK_STREAM)[0][4] == (B, port)
            with pytest.raises(socket.gaierror):
                socket.getaddrinfo("unknown.test", 80)
            with socket.create_connection(("server.test", port), timeout=5) as c:
                conn, _ = srv.accept()
                c.sendall(b"via patch")
                assert conn.recv(100) == b"via patch"
                conn.close()
            assert isinstance(socket.socket(socket.AF_UNIX), stdlib_socket)
    assert (socket.socket, socket.create_connection, socket.getaddrinfo) == \
        (stdlib_socket, stdlib_cc, stdlib_gai)


def test_asyncio_stock_loop_and_helpers(stacks):
    import asyncio
    import pynet.asyncio as pa
    a, b = stacks

    async def handle(reader, writer):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    async def main():
        server = await pa.start_server(handle, b, B, 0)
        port = server.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        # the stock sock_* methods
        s = a.socket()
        s.setblocking(False)
        await loop.sock_connect(s, (B, port))
        await loop.sock_sendall(s, b"x" * 100_000)
        got = b""
        while len(got) < 100_000:
            got += await loop.sock_recv(s, 65536)
        s.close()
        # streams on a pynet socket, and pynet.asyncio's helper
        reader, writer = await pa.open_connection(a, B, port)
        writer.write(b"stream")
        await writer.drain()
        echoed = await reader.readexactly(6)
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return got, echoed

    got, echoed = asyncio.run(main())
    assert got == b"x" * 100_000 and echoed == b"stream"


def test_a_blocked_call_drives_the_stack_and_the_runner_takes_over_after(stacks):
    """A lone blocking recv polls the devices itself (Runner.poll_wait) and its
    data wakes it; once it has returned, frames that arrive while no call of
    ours runs are still taken in, by the runner."""
    a, b = stacks
    cli, conn, srv = pair(a, b)
    runner = a._runner
    got = []
    t = threading.Thread(target=lambda: got.append(cli.recv(10)), daemon=True)
    t.start()
    while not runner.pollers:
        t.join(0.01)
    assert runner.sleepers == 0
    conn.send(b"ping")
    t.join(10)
    assert got == [b"ping"] and runner.pollers == 0
    conn.send(b"pong", socket.MSG_DONTWAIT)
    for _ in range(1000):           # non-blocking recvs never poll: only the runner does
        try:
            got.append(cli.recv(10, socket.MSG_DONTWAIT))
            break
        except BlockingIOError:
            time.sleep(0.01)
    assert got == [b"ping", b"pong"]
    for s in (cli, conn, srv):
        s.close()


def test_stopping_the_stack_fails_blocked_calls(stacks):
    """A call blocked when its stack stops fails with ENETDOWN, and so does every later
    blocking call: nothing would ever wake it, and it must not restart the runner."""
    a, b = stacks
    cli, conn, srv = pair(a, b)
    cli.settimeout(None)
    runner = a._runner
    failed = []

    def blocked_recv():
        try:
            cli.recv(10)
        except OSError as exc:
            failed.append(exc.errno)

    t = threading.Thread(target=blocked_recv, daemon=True)
    t.start()
    while not (runner.pollers or runner.sleepers):     # the recv is blocked in its wait
        t.join(0.01)
    a.stop()
    t.join(10)
    assert failed == [errno.ENETDOWN]
    with pytest.raises(OSError) as exc:
        conn.recv(10)
    assert exc.value.errno == errno.ENETDOWN and not runner.running
    with pytest.raises(BlockingIOError):    # non-blocking calls still answer
        cli.recv(10, socket.MSG_DONTWAIT)
    for s in (cli, conn, srv):
        s.close()


def test_busy_poll_option_and_busy_polled_exchanges(stacks):
    """SO_BUSY_POLL (Linux's value 46): microseconds a blocking receive polls the devices
    itself before it sleeps; EINVAL below 0 as in sock_setsockopt. Request/response and a
    bulk send (whose waits for send space always poll for ACKs) stay exact with it on."""
    from pynet.socket import SO_BUSY_POLL
    a, b = stacks
    cli, conn, srv = pair(a, b)
    assert cli.getsockopt(socket.SOL_SOCKET, SO_BUSY_POLL) == 0
    with pytest.raises(OSError) as exc:
        cli.setsockopt(socket.SOL_SOCKET, SO_BUSY_POLL, -1)
    assert exc.value.errno == errno.EINVAL
    for s in (cli, conn):
        s.setsockopt(socket.SOL_SOCKET, SO_BUSY_POLL, 50)
    assert cli.getsockopt(socket.SOL_SOCKET, SO_BUSY_POLL) == 50
    def echo_200():
        for _ in range(200):
            conn.sendall(conn.recv(1))

    echo = threading.Thread(target=echo_200)
    echo.start()
    for i in range(200):
        cli.sendall(bytes((i,)))
        assert cli.recv(1) == bytes((i,))
    echo.join()
    send_and_check(cli, conn, random.Random(3).randbytes(4 << 20), 1 << 16)
    for s in (cli, conn, srv):
        s.close()
