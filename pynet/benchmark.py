"""`pynet bench`: pynet's TCP side by side with the Linux kernel's, in one run.

Every item makes its own namespaces (pyn + random suffix) and removes them.
The kernel's side of every item runs this module's peer program
(`python -m pynet.benchmark peer ...`) inside a namespace: blocking sockets,
256 KiB writes, congestion control named explicitly (cubic: the machine's
default, bbr, caps a kernel sender into a TAP far lower), so only the stack
differs between the kernel baseline and the pynet runs.

Every byte stream is a repeated random pattern whose length (1 MiB + 7) is
prime to every segment size, checked at the receiver against its position:
lost, duplicated, reordered or corrupted data fails the item with an error
and no figure. CPU seconds per GB add the process time of both ends (user +
system, which includes the kernel's receive work done inside a write to a
TAP or a veth; softirq work done elsewhere is not counted).

    pynet bench                      # 10 s per item, a table
    pynet bench --seconds 2 --json out.json --only tap-tx-offload kernel-veth
"""
import argparse
import contextlib
import dataclasses
import gc
import json
import os
import random
import resource
import secrets
import select
import socket
import subprocess
import sys
import time
import tracemalloc

PATTERN_LEN = (1 << 20) + 7          # prime to any MSS: a slip by whole segments is caught
WRITE = 256 * 1024
CONGESTION = b"cubic"
PORT = 5201
_pattern_cache = {}


def pattern(seed):
    """The stream: PATTERN_LEN random bytes, stored twice so that any slice
    of up to PATTERN_LEN bytes at any offset is one contiguous bytes object."""
    p = _pattern_cache.get(seed)
    if p is None:
        p = random.Random(seed).randbytes(PATTERN_LEN)
        p = _pattern_cache[seed] = p + p
    return p


class DataError(Exception):
    """A transfer lost or corrupted data: the item has no figure."""


class NotAvailable(Exception):
    """What an item needs is missing here: reported with the reason."""


class Verifier:
    """Checks a received stream against the pattern at its position."""

    def __init__(self, seed):
        self.pat = memoryview(pattern(seed))
        self.off = 0
        self.nbytes = 0

    def feed(self, data):
        """data: bytes or a bytearray. Compared in place (memcmp), no copies."""
        pos, n = 0, len(data)
        while pos < n:
            take = min(n - pos, PATTERN_LEN)
            if not data.startswith(self.pat[self.off:self.off + take], pos):
                raise DataError(f"stream differs from the pattern within bytes "
                                f"{self.nbytes}..{self.nbytes + take}")
            self.off = (self.off + take) % PATTERN_LEN
            self.nbytes += take
            pos += take


class Source:
    """The pattern as a sequence of writes."""

    def __init__(self, seed):
        self.view = memoryview(pattern(seed))
        self.off = 0
        self.nbytes = 0

    def chunk(self, size=WRITE):
        return self.view[self.off:self.off + size]

    def advance(self, n):
        self.off = (self.off + n) % PATTERN_LEN
        self.nbytes += n


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# -- the kernel's side: a peer program run inside a namespace ------------------------------
def _ksock():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, CONGESTION)
    return s


def _listen(host, port):
    s = _ksock()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(1024)
    print("READY", flush=True)
    return s


def _connect(host, port):
    s = _ksock()
    s.connect((host, port))
    return s


def _peer_sink(sock, seed):
    """Read to EOF, verifying; the clock runs from the first byte to EOF."""
    v = Verifier(seed)
    buf = bytearray(WRITE)
    mv = memoryview(buf)
    t0 = None
    c0 = cpu_seconds()
    while True:
        n = sock.recv_into(buf)
        if not n:
            break
        if t0 is None:
            t0 = time.monotonic()
        v.feed(buf if n == len(buf) else mv[:n].tobytes())
    t1 = time.monotonic()
    return {"bytes": v.nbytes, "seconds": t1 - (t0 or t1), "cpu": cpu_seconds() - c0,
            "verified": True}


def _peer_source(sock, seed, seconds):
    """Write the pattern for `seconds`, then FIN."""
    src = Source(seed)
    c0 = cpu_seconds()
    t0 = time.monotonic()
    end = t0 + seconds
    while time.monotonic() < end:
        src.advance(sock.send(src.chunk()))
    sock.shutdown(socket.SHUT_WR)
    sock.recv(1)                      # the receiver closes once it has read everything
    return {"bytes": src.nbytes, "seconds": time.monotonic() - t0, "cpu": cpu_seconds() - c0}


def _peer_echo_server(lsock):
    """Echo each connection until EOF; then close (the server closes first, so
    TIME_WAIT stays here and the client's ports are free at once)."""
    while True:
        c, _ = lsock.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with c:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                c.sendall(d)


def _peer_crr_server(lsock):
    """One request per connection: read 1 byte, echo it, close first (as
    pynet's server does), so TIME_WAIT stays on the server."""
    while True:
        c, _ = lsock.accept()
        with c:
            d = c.recv(1)
            if d:
                c.sendall(d)


def _peer_rr(sock, seconds):
    """1-byte request, 1-byte response; each response must echo its request."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    n = 0
    c0 = cpu_seconds()
    t0 = time.monotonic()
    end = t0 + seconds
    while True:
        b = bytes((n & 0xFF,))
        sock.sendall(b)
        r = sock.recv(1)
        if r != b:
            raise DataError(f"transaction {n}: sent {b!r}, got {r!r}")
        n += 1
        if not n & 63 and time.monotonic() >= end:
            break
    return {"transactions": n, "seconds": time.monotonic() - t0, "cpu": cpu_seconds() - c0,
            "verified": True}


def _peer_crr(host, port, seconds):
    """Connect, 1 byte each way (checked), wait for the server's FIN, close."""
    n = 0
    c0 = cpu_seconds()
    t0 = time.monotonic()
    end = t0 + seconds
    while time.monotonic() < end:
        with _connect(host, port) as s:
            b = bytes((n & 0xFF,))
            s.sendall(b)
            if s.recv(1) != b or s.recv(1) != b"":
                raise DataError(f"connection {n}: echo wrong or no FIN")
        n += 1
    return {"connections": n, "seconds": time.monotonic() - t0, "cpu": cpu_seconds() - c0,
            "verified": True}


def peer_main(argv):
    """peer MODE HOST PORT [SECONDS] [SEED]: prints READY when listening and
    one JSON line with its result (or {"error": ...}) at the end."""
    mode, host, port = argv[0], argv[1], int(argv[2])
    seconds = float(argv[3]) if len(argv) > 3 else 0.0
    seed = int(argv[4]) if len(argv) > 4 else 0
    try:
        if mode == "sink":
            with _listen(host, port) as ls:
                c, _ = ls.accept()
                with c:
                    res = _peer_sink(c, seed)
        elif mode == "source":
            with _listen(host, port) as ls:
                c, _ = ls.accept()
                with c:
                    res = _peer_source(c, seed, seconds)
        elif mode == "connect-sink":
            with _connect(host, port) as c:
                res = _peer_sink(c, seed)
        elif mode == "connect-source":
            with _connect(host, port) as c:
                res = _peer_source(c, seed, seconds)
        elif mode == "echo":
            with _listen(host, port) as ls:
                _peer_echo_server(ls)
            res = {}
        elif mode == "crr-server":
            with _listen(host, port) as ls:
                _peer_crr_server(ls)
            res = {}
        elif mode == "rr":
            with _connect(host, port) as c:
                res = _peer_rr(c, seconds)
        elif mode == "crr":
            res = _peer_crr(host, port, seconds)
        else:
            raise ValueError(f"unknown peer mode {mode!r}")
    except (DataError, OSError) as exc:
        res = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(res), flush=True)
    return 0


class Peer:
    """The peer program running in a namespace."""

    def __init__(self, ns, *args, ready=True):
        self.proc = ns.popen([sys.executable, "-m", "pynet.benchmark", "peer", *map(str, args)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if ready:
            line = self.proc.stdout.readline()
            if line.strip() != "READY":
                self.proc.kill()
                raise RuntimeError(f"peer did not start: {line!r} {self.proc.stderr.read()}")

    def result(self, timeout):
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise DataError("kernel peer did not finish in time")
        lines = out.strip().splitlines()
        if not lines:
            raise RuntimeError(f"kernel peer failed: {err.strip()[-500:]}")
        res = json.loads(lines[-1])
        if "error" in res:
            raise DataError(f"kernel peer: {res['error']}")
        return res

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()


# -- results ---------------------------------------------------------------------------------
@dataclasses.dataclass
class Result:
    item: str
    what: str
    unit: str
    value: float = None
    kernel: str = None               # the item whose figure this one is compared with
    kernel_value: float = None
    ratio: float = None
    cpu_s_per_gb: float = None
    seconds: float = None
    nbytes: int = None
    verified: bool = False
    status: str = "ok"               # ok | error | not available
    reason: str = None
    extra: dict = dataclasses.field(default_factory=dict)


def _bulk(item, what, nbytes, seconds, cpu, verified=True, **extra):
    if not nbytes or not seconds:
        # e.g. a short run under loss whose SYN was lost: no rate to give
        raise DataError("the transfer moved no data")
    return Result(item, what, "Gbit/s", nbytes * 8 / seconds / 1e9, nbytes=nbytes,
                  seconds=seconds, cpu_s_per_gb=cpu / (nbytes / 1e9),
                  verified=verified, extra=extra)


# -- namespaces --------------------------------------------------------------------------------
def _veth_between(ns_a, ns_b, cidr, gso_ipv4_max_size=None):
    """A veth with one end in each namespace, addressed from cidr: (addr_a, addr_b).
    gso_ipv4_max_size: both ends' (BIG TCP), if not the kernel's default."""
    from pyroute2 import IPRoute
    from pynet.netns import set_gso_ipv4_max_size, unique_name
    ia, ib = unique_name(), unique_name()
    with IPRoute() as ipr:
        ipr.link("add", ifname=ia, kind="veth", peer={"ifname": ib, "net_ns_fd": ns_b.name})
        ipr.link("set", index=ipr.link_lookup(ifname=ia)[0], net_ns_fd=ns_a.name)
    import ipaddress
    net = ipaddress.ip_network(cidr)
    hosts = net.hosts()
    a, b = str(next(hosts)), str(next(hosts))
    for ns, ifn, addr in ((ns_a, ia, a), (ns_b, ib, b)):
        with ns.iproute() as ipr:
            idx = ipr.link_lookup(ifname=ifn)[0]
            ipr.addr("add", index=idx, address=addr, prefixlen=net.prefixlen)
            ipr.link("set", index=idx, state="up")
        if gso_ipv4_max_size:
            set_gso_ipv4_max_size(ifn, gso_ipv4_max_size, ns.name)
    return a, b


def _drop_randomly(ns, percent, chains):
    """iptables `statistic` rules dropping percent of the packets crossing each chain in the
    namespace. The same rule makes the loss for the kernel's baseline and for pynet's peer,
    so a lost 64 KB super-segment costs both stacks alike (this kernel has no netem)."""
    for chain in chains:
        try:
            ns.run(["iptables", "-A", chain, "-m", "statistic", "--mode", "random",
                    "--probability", str(percent / 100), "-j", "DROP"], check=True,
                   capture_output=True)
        except (FileNotFoundError, subprocess.CalledProcessError) as exc:
            raise NotAvailable(f"iptables statistic rule failed: {exc}") from None


@contextlib.contextmanager
def _kernel_pair(loss=0.0, gso_ipv4_max_size=None):
    """Two namespaces joined by a veth: yields (ns_a, ns_b, a, b)."""
    from pynet.netns import NetNamespace
    with NetNamespace() as na, NetNamespace() as nb:
        a, b = _veth_between(na, nb, f"198.19.{secrets.randbelow(256)}.0/24", gso_ipv4_max_size)
        if loss:
            # each namespace drops on its way in: loss in both directions
            _drop_randomly(na, loss, ["INPUT"])
            _drop_randomly(nb, loss, ["INPUT"])
        yield na, nb, a, b


def _port():
    # old sockets of an earlier run must not meet a SYN reusing their port
    return PORT + secrets.randbelow(20000)


# -- pynet's side ------------------------------------------------------------------------------
def _stack_on(peer, loss=0.0):
    """A stack on the peer's device. loss: percent dropped each way -- by the peer
    namespace's INPUT rule on pynet's packets, as _kernel_pair does for the baseline, and
    by pynet's injector on the kernel's (an OUTPUT rule would fail the kernel's send with
    EPERM, which its TCP treats as local congestion, not as a packet lost on the wire)."""
    from pynet.dev.fault import FaultInjector, Faults
    from pynet.dev.netdevice import GSO_LEGACY_MAX_SIZE
    from pynet.gro import NETIF_F_GRO
    from pynet.stack import Stack
    stack = Stack(seed=secrets.randbits(32))
    dev = peer.dev
    if loss:
        # iptables drops a GSO skb whole: the kernel's baseline loses up to 64 KB a
        # drop, so pynet sends no BIG TCP frames here (one would lose 256 KB a drop)
        dev.gso_ipv4_max_size = GSO_LEGACY_MAX_SIZE
        _drop_randomly(peer.ns, loss, ["INPUT"])
        dev = FaultInjector(dev, seed=secrets.randbits(32), rx=Faults(drop=loss / 100))
    dev.features |= NETIF_F_GRO       # as Linux's default
    stack.add_device(dev)
    stack.add_address(dev, f"{peer.pynet_addr()}/{peer.prefixlen}")
    return stack


def _drive(stacks, step, deadline, fds):
    """Poll the stacks on real time calling step(now) until it returns True."""
    while True:
        now = time.monotonic()
        if now > deadline:
            raise DataError("transfer stalled")
        received = 0
        for s in stacks:
            received += s.poll(now)
        if step(now):
            return
        # Whatever step sent may have been answered already: on one CPU the
        # kernel's peer runs inside pynet's write and queues its answer before
        # the write returns. So a poll that found frames is followed by another
        # before sleeping; only an empty one sleeps (saves TCP_RR a select
        # per transaction: 8 % more transactions, 6 Dec 2026).
        if received:
            continue
        nt = min((t for t in (s.next_timer() for s in stacks) if t is not None), default=None)
        timeout = 0.002 if nt is None else min(0.002, max(0.0, nt - now))
        if fds:
            select.select(fds, [], [], timeout)


def _pynet_connect(stack, daddr, port, now):
    from pynet.tcp.tcp_ipv4 import tcp_v4_connect, tcp_v4_init_sock
    from pynet.wire.ipv4 import ip_aton
    c = tcp_v4_init_sock(stack)
    tcp_v4_connect(c, ip_aton(daddr), port, now)
    return c


def _pynet_send(c, src, now):
    """Fill the socket from the source; close once `seconds` have passed: True when closed."""
    from pynet.tcp.tcp import TcpState
    from pynet.tcp.tcp_user import tcp_close, tcp_sendmsg
    if c.sk_err:
        raise DataError(f"pynet socket error {c.sk_err}")
    if c.state != TcpState.ESTABLISHED:
        return c.state not in (TcpState.SYN_SENT, TcpState.CLOSE)
    if now >= src.end:
        tcp_close(c, now)
        return True
    while True:
        n = tcp_sendmsg(c, src.chunk(), now)
        if not n:
            return False
        src.advance(n)


def _pynet_recv(s, ver, now):
    """Read what is there into the verifier; True at EOF."""
    from pynet.tcp.tcp_user import tcp_recvmsg
    while True:
        try:
            d = tcp_recvmsg(s, 1 << 22, now)
        except BlockingIOError:
            return False
        if not d:
            return True
        ver.feed(d)


def bulk_pynet_tx(kind, offload, seconds, loss=0.0):
    """pynet sends to the kernel's sink over a TAP or a veth (AF_PACKET)."""
    from pynet.netns import kernel_peer
    seed = secrets.randbits(16)
    with kernel_peer(kind, offload=offload) as peer:
        stack = _stack_on(peer, loss)
        port = _port()
        with Peer(peer.ns, "sink", peer.kernel_addr, port, 0, seed) as kp:
            c0 = cpu_seconds()
            c = _pynet_connect(stack, peer.kernel_addr, port, time.monotonic())
            src = Source(seed)
            src.end = time.monotonic() + seconds
            closed = [False]

            def step(now):
                if not closed[0]:
                    closed[0] = _pynet_send(c, src, now)
                # on until the kernel has everything, FIN included: under loss the
                # tail may still need retransmitting when the write queue empties
                return closed[0] and not c.write_queue and not c.rtx_queue

            _drive([stack], step, time.monotonic() + seconds + 30, [peer.dev])
            res = kp.result(timeout=30)
            cpu = cpu_seconds() - c0
        if res["bytes"] != src.nbytes:
            raise DataError(f"sent {src.nbytes} bytes, the kernel read {res['bytes']}")
        return _bulk(None, None, res["bytes"], res["seconds"], cpu + res["cpu"],
                     segs_out=c.stats.get("OutSegs"), retrans=c.stats.get("RetransSegs"))


def bulk_pynet_rx(kind, offload, seconds, loss=0.0):
    """The kernel's source sends to pynet over a TAP or a veth (AF_PACKET)."""
    from pynet.netns import kernel_peer
    from pynet.tcp.tcp_user import inet_accept, inet_listen, tcp_close
    from pynet.tcp.tcp_ipv4 import tcp_v4_init_sock
    seed = secrets.randbits(16)
    with kernel_peer(kind, offload=offload) as peer:
        stack = _stack_on(peer, loss)
        port = _port()
        ls = tcp_v4_init_sock(stack)
        inet_listen(ls, ls.hashinfo, 0, port, 8)
        with Peer(peer.ns, "connect-source", peer.pynet_addr(), port, seconds, seed,
                  ready=False) as kp:
            ver = Verifier(seed)
            st = {"s": None, "t0": None, "t1": None}
            c0 = cpu_seconds()

            def step(now):
                if st["s"] is None:
                    try:
                        st["s"] = inet_accept(ls)
                    except BlockingIOError:
                        return False
                before = ver.nbytes
                eof = _pynet_recv(st["s"], ver, now)
                if st["t0"] is None and ver.nbytes > before:
                    st["t0"] = now
                if eof:
                    st["t1"] = now
                    tcp_close(st["s"], now)
                    return True
                return False

            _drive([stack], step, time.monotonic() + seconds + 30, [peer.dev])
            cpu = cpu_seconds() - c0
            # let our FIN out so the kernel's close completes
            _drive([stack], lambda now: kp.proc.poll() is not None, time.monotonic() + 10,
                   [peer.dev])
            res = kp.result(timeout=10)
        if res["bytes"] != ver.nbytes:
            raise DataError(f"the kernel sent {res['bytes']} bytes, pynet read {ver.nbytes}")
        s = st["s"]
        return _bulk(None, None, ver.nbytes, st["t1"] - st["t0"], cpu + res["cpu"],
                     segs_in=s.stats.get("InSegs"), gro_merged=stack.gro_stats.merged,
                     driver_gro_merged=peer.dev.gro_merged)


@contextlib.contextmanager
def _socket_stack(peer):
    """A running stack on the peer's TAP for the socket items, stopped at the end:
    pynet.socket objects run the kernel peer's own sender, receiver and RR client,
    so only the stack differs."""
    stack = _stack_on(peer)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def bulk_socket_tx(seconds):
    """pynet.socket's sendall-style writes (the peer program's source) to the kernel."""
    from pynet.netns import kernel_peer
    seed = secrets.randbits(16)
    port = _port()
    with kernel_peer("tap", offload=True) as peer, _socket_stack(peer) as stack, \
            Peer(peer.ns, "sink", peer.kernel_addr, port, 0, seed) as kp:
        c0 = cpu_seconds()
        with stack.socket() as s:
            s.settimeout(seconds + 30)
            s.connect((peer.kernel_addr, port))
            sent = _peer_source(s, seed, seconds)
        res = kp.result(timeout=30)
        cpu = cpu_seconds() - c0
    if res["bytes"] != sent["bytes"]:
        raise DataError(f"sent {sent['bytes']} bytes, the kernel read {res['bytes']}")
    return _bulk(None, None, res["bytes"], res["seconds"], cpu + res["cpu"])


def bulk_socket_rx(seconds):
    """The kernel's source to pynet.socket's recv_into loop (the peer program's sink)."""
    from pynet.netns import kernel_peer
    seed = secrets.randbits(16)
    port = _port()
    with kernel_peer("tap", offload=True) as peer, _socket_stack(peer) as stack, \
            stack.socket() as ls:
        ls.bind((peer.pynet_addr(), port))
        ls.listen(8)
        ls.settimeout(30)
        with Peer(peer.ns, "connect-source", peer.pynet_addr(), port, seconds, seed,
                  ready=False) as kp:
            c0 = cpu_seconds()
            c, _ = ls.accept()
            with c:
                c.settimeout(seconds + 30)
                got = _peer_sink(c, seed)
            res = kp.result(timeout=30)
            cpu = cpu_seconds() - c0
    if res["bytes"] != got["bytes"]:
        raise DataError(f"the kernel sent {res['bytes']} bytes, pynet read {got['bytes']}")
    return _bulk(None, None, got["bytes"], got["seconds"], cpu + res["cpu"])


def rr_socket(seconds):
    """The peer program's RR client on a pynet.socket against the kernel's echo server."""
    from pynet.netns import kernel_peer
    port = _port()
    with kernel_peer("tap", offload=True) as peer, _socket_stack(peer) as stack, \
            Peer(peer.ns, "echo", peer.kernel_addr, port), stack.socket() as s:
        s.settimeout(30)
        s.connect((peer.kernel_addr, port))
        res = _peer_rr(s, seconds)
    return Result(None, None, "trans/s", res["transactions"] / res["seconds"],
                  seconds=res["seconds"], verified=True,
                  extra={"transactions": res["transactions"]})


def bulk_pipe(seconds, offload=False):
    """Two pynet stacks over the in-memory pipe, one process, real time.
    Without offload every frame is one MSS, cut by the C GSO before the pipe;
    with it the pipe carries 64 KB super-segments as a vnet_hdr TAP does."""
    from pynet.dev.netdevice import NETIF_F_HW_CSUM, NETIF_F_RXCSUM, NETIF_F_SG, NETIF_F_TSO
    from pynet.tcp.tcp_user import inet_accept, inet_listen
    from pynet.tcp.tcp_ipv4 import tcp_v4_init_sock
    features = NETIF_F_SG | NETIF_F_HW_CSUM | NETIF_F_RXCSUM | NETIF_F_TSO if offload else 0
    from pynet.stack import pipe_stacks
    a, b = pipe_stacks(features=features, gro=True)
    seed = secrets.randbits(16)
    ls = tcp_v4_init_sock(b)
    inet_listen(ls, ls.hashinfo, 0, 80, 8)
    c0 = cpu_seconds()
    c = _pynet_connect(a, "198.18.0.2", 80, time.monotonic())
    src = Source(seed)
    src.end = time.monotonic() + seconds
    ver = Verifier(seed)
    st = {"s": None, "closed": False, "t0": time.monotonic()}

    def step(now):
        if not st["closed"]:
            st["closed"] = _pynet_send(c, src, now)
        if st["s"] is None:
            try:
                st["s"] = inet_accept(ls)
            except BlockingIOError:
                return False
        return _pynet_recv(st["s"], ver, now)

    _drive([a, b], step, time.monotonic() + seconds + 30, [])
    t = time.monotonic() - st["t0"]
    if ver.nbytes != src.nbytes:
        raise DataError(f"sent {src.nbytes}, received {ver.nbytes}")
    return _bulk(None, None, ver.nbytes, t, cpu_seconds() - c0)


def bulk_kernel(seconds, loss=0.0, gso_ipv4_max_size=None):
    """The baseline: the peer program at both ends of a veth between two namespaces
    (gso_ipv4_max_size: with BIG TCP super-segments of that size, as pynet's TAP)."""
    seed = secrets.randbits(16)
    with _kernel_pair(loss, gso_ipv4_max_size) as (na, nb, a, b):
        port = _port()
        with Peer(nb, "sink", b, port, 0, seed) as sink, \
                Peer(na, "connect-source", b, port, seconds, seed, ready=False) as src:
            rs = src.result(timeout=seconds + 30)
            rk = sink.result(timeout=30)
    if rs["bytes"] != rk["bytes"]:
        raise DataError(f"sent {rs['bytes']}, received {rk['bytes']}")
    return _bulk(None, None, rk["bytes"], rk["seconds"], rs["cpu"] + rk["cpu"])


def _kernel_client_server(server, client, seconds, unit, count):
    """The peer program's `server` and `client` at the two ends of a veth between
    namespaces: `count` of the client's result per second, in `unit`."""
    with _kernel_pair() as (na, nb, a, b):
        port = _port()
        with Peer(nb, server, b, port):
            res = Peer(na, client, b, port, seconds, ready=False).result(timeout=seconds + 60)
    return Result(None, None, unit, res[count] / res["seconds"], seconds=res["seconds"],
                  verified=True, extra={count: res[count]})


def rr_kernel(seconds):
    return _kernel_client_server("echo", "rr", seconds, "trans/s", "transactions")


def rr_pynet(seconds):
    """pynet's client against the kernel's echo server over a TAP with offloads."""
    from pynet.netns import kernel_peer
    from pynet.tcp.tcp import TcpState
    from pynet.tcp.tcp_user import tcp_close, tcp_recvmsg, tcp_sendmsg, tcp_sock_set_nodelay
    with kernel_peer("tap", offload=True) as peer:
        stack = _stack_on(peer)
        port = _port()
        with Peer(peer.ns, "echo", peer.kernel_addr, port):
            c = _pynet_connect(stack, peer.kernel_addr, port, time.monotonic())
            # the loop's state in closure variables: as lean as the kernel client's loop
            n, out, t0, end, t1, req = 0, False, None, None, None, b"\0"

            def step(now):
                nonlocal n, out, t0, end, t1, req
                if t0 is None:
                    if c.state != TcpState.ESTABLISHED:
                        if c.state == TcpState.CLOSE:
                            raise DataError("connection failed")
                        return False
                    tcp_sock_set_nodelay(c, True, now)
                    t0, end = now, now + seconds
                if out:                        # req: the request in flight, or the next
                    try:
                        r = tcp_recvmsg(c, 1, now)
                    except BlockingIOError:
                        return False
                    if r != req:
                        raise DataError(f"transaction {n}: sent {req!r}, got {r!r}")
                    out = False
                    n += 1
                    if now >= end:
                        t1 = now
                        tcp_close(c, now)
                        return True
                    req = bytes((n & 0xFF,))
                # the answer comes with a later poll: no read that must fail first
                out = tcp_sendmsg(c, req, now) == 1
                return False

            _drive([stack], step, time.monotonic() + seconds + 30, [peer.dev])
    return Result(None, None, "trans/s", n / (t1 - t0), seconds=t1 - t0, verified=True,
                  extra={"transactions": n})


def crr_kernel(seconds):
    return _kernel_client_server("crr-server", "crr", seconds, "conn/s", "connections")


def crr_pynet(seconds):
    """The kernel's client connects to pynet's server over a TAP with offloads:
    connect, 1 byte each way, pynet closes first."""
    from pynet.netns import kernel_peer
    from pynet.tcp.tcp_user import inet_accept, inet_listen, tcp_close, tcp_recvmsg, tcp_sendmsg
    from pynet.tcp.tcp_ipv4 import tcp_v4_init_sock
    with kernel_peer("tap", offload=True) as peer:
        stack = _stack_on(peer)
        port = _port()
        ls = tcp_v4_init_sock(stack)
        inet_listen(ls, ls.hashinfo, 0, port, 1024)
        cl = Peer(peer.ns, "crr", peer.pynet_addr(), port, seconds, ready=False)
        open_ = []
        served = [0]
        exit_check = [0.0]      # waitpid per poll cost pynet ~8% of this item's CPU

        def step(now):
            while True:
                try:
                    open_.append(inet_accept(ls))
                except BlockingIOError:
                    break
            for s in list(open_):
                try:
                    d = tcp_recvmsg(s, 16, now)
                except BlockingIOError:
                    continue
                except OSError:
                    open_.remove(s)
                    continue
                if d:
                    tcp_sendmsg(s, d, now)
                tcp_close(s, now)
                open_.remove(s)
                served[0] += 1
            if now < exit_check[0]:
                return False
            exit_check[0] = now + 0.01
            return cl.proc.poll() is not None

        with cl:
            _drive([stack], step, time.monotonic() + seconds + 60, [peer.dev, cl.proc.stdout])
            res = cl.result(timeout=10)
    return Result(None, None, "conn/s", res["connections"] / res["seconds"],
                  seconds=res["seconds"], verified=True,
                  extra={"connections": res["connections"], "served": served[0],
                         "listen_drops": ls.listen_drops})


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def mem_idle(nconn, seconds):
    """Idle established connections between two pynet stacks over the pipe:
    the Python heap's growth (tracemalloc) divided by the sockets, two per
    connection (the resident-set growth is reported too). Idle sockets have
    empty queues: this is the per-connection state itself."""
    from pynet.tcp.tcp import TcpState
    from pynet.tcp.tcp_user import inet_accept, inet_listen
    from pynet.tcp.tcp_ipv4 import tcp_v4_init_sock
    from pynet.stack import pipe_stacks
    a, b = pipe_stacks(rx_queue_len=4096, gro=True)
    ls = tcp_v4_init_sock(b)
    inet_listen(ls, ls.hashinfo, 0, 80, 4096)
    ls.max_syn_backlog = 4096
    clients, servers = [], []
    now = time.monotonic()
    # warm up: the first connection allocates the tables, routes and neighbours
    clients.append(_pynet_connect(a, "198.18.0.2", 80, now))
    _drive([a, b], lambda t: bool(ls.accept_queue), now + 10, [])
    servers.append(inet_accept(ls))
    gc.collect()
    base = _rss()
    tracemalloc.start()
    traced0 = tracemalloc.get_traced_memory()[0]
    deadline = time.monotonic() + seconds
    while len(clients) < nconn and time.monotonic() < deadline:
        now = time.monotonic()
        for _ in range(min(256, nconn - len(clients))):
            clients.append(_pynet_connect(a, "198.18.0.2", 80, now))
        for _ in range(50):
            a.poll(now, budget=1024)
            b.poll(now, budget=1024)
            while ls.accept_queue:
                servers.append(inet_accept(ls))
            if len(servers) == len(clients):
                break

    def settled(now):
        while ls.accept_queue:
            servers.append(inet_accept(ls))
        return len(servers) == len(clients)

    _drive([a, b], settled, time.monotonic() + 30, [])
    est = sum(1 for s in clients + servers if s.state == TcpState.ESTABLISHED)
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - traced0
    tracemalloc.stop()
    grown = _rss() - base
    n = len(clients) - 1
    if est != len(clients) + len(servers):
        raise DataError(f"{est} of {len(clients) + len(servers)} sockets established")
    return Result(None, None, "B/socket", traced / (2 * n), verified=True,
                  extra={"connections": n, "sockets": 2 * n, "traced_growth": traced,
                         "rss_growth": grown, "rss_per_socket": grown / (2 * n)})


# -- the run ---------------------------------------------------------------------------------
def _on_one_cpu(fn):
    """Run fn with this process, and the peers and threads it starts, on one CPU.

    Request/response and connection rates are bounded by a wake-up per message.
    Across two vCPUs of this VM such a wake-up costs tens of microseconds of the
    hypervisor's and its cost swings with the host's load: the kernel's TCP_RR
    was seen from 10k to 168k trans/s unpinned, 52k-64k on one CPU. On one CPU
    the figure is the two ends' own work per exchange, for the kernel and for
    pynet alike."""
    def pinned():
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {max(before)})
        try:
            return fn()
        finally:
            os.sched_setaffinity(0, before)
    return pinned


def _items(seconds, nconn):
    """(item, description, kernel item to compare with, function).

    pynet's sends with offloads are BIG TCP ones (256 KB) where the kernel
    takes them, so they are compared with the kernel sending the same
    (kernel-veth-big); everything else, the kernel's 64 KB included, with
    the kernel's defaults (kernel-veth)."""
    from pynet.dev.tap import TAP_BIG_TCP_MAX_SIZE, kernel_takes_big_tcp
    s = seconds
    big = TAP_BIG_TCP_MAX_SIZE if kernel_takes_big_tcp() else None
    return [
        ("kernel-veth", "kernel -> kernel, veth between namespaces", None, lambda: bulk_kernel(s)),
        ("kernel-veth-big", "kernel -> kernel, veth, BIG TCP (gso_ipv4_max_size 256 KB)", None,
         lambda: bulk_kernel(s, gso_ipv4_max_size=big)),
        ("tap-tx-offload", "pynet -> kernel, TAP with vnet_hdr offloads", "kernel-veth-big",
         lambda: bulk_pynet_tx("tap", True, s)),
        ("tap-rx-offload", "kernel -> pynet, TAP with vnet_hdr offloads", "kernel-veth",
         lambda: bulk_pynet_rx("tap", True, s)),
        ("tap-tx", "pynet -> kernel, TAP, one frame per write", "kernel-veth",
         lambda: bulk_pynet_tx("tap", False, s)),
        ("tap-rx", "kernel -> pynet, TAP, one frame per read", "kernel-veth",
         lambda: bulk_pynet_rx("tap", False, s)),
        ("packet-tx-offload", "pynet -> kernel, AF_PACKET on a veth, vnet_hdr",
         "kernel-veth-big", lambda: bulk_pynet_tx("veth", True, s)),
        ("packet-rx-offload", "kernel -> pynet, AF_PACKET on a veth, vnet_hdr", "kernel-veth",
         lambda: bulk_pynet_rx("veth", True, s)),
        ("packet-tx", "pynet -> kernel, AF_PACKET on a veth, per frame", "kernel-veth",
         lambda: bulk_pynet_tx("veth", False, s)),
        ("packet-rx", "kernel -> pynet, AF_PACKET on a veth, per frame", "kernel-veth",
         lambda: bulk_pynet_rx("veth", False, s)),
        ("kernel-veth-loss", "kernel -> kernel, veth, 1 % loss each way (iptables)", None,
         lambda: bulk_kernel(s, loss=1.0)),
        ("tap-tx-offload-loss", "pynet -> kernel, TAP with offloads, 1 % loss each way",
         "kernel-veth-loss", lambda: bulk_pynet_tx("tap", True, s, loss=1.0)),
        ("tap-rx-offload-loss", "kernel -> pynet, TAP with offloads, 1 % loss each way",
         "kernel-veth-loss", lambda: bulk_pynet_rx("tap", True, s, loss=1.0)),
        ("socket-tx-offload", "pynet.socket -> kernel, TAP with offloads, runner thread",
         "kernel-veth-big", lambda: bulk_socket_tx(s)),
        ("socket-rx-offload", "kernel -> pynet.socket, TAP with offloads, runner thread",
         "kernel-veth", lambda: bulk_socket_rx(s)),
        ("pipe", "pynet -> pynet, in-memory pipe, per-MSS frames", "kernel-veth",
         lambda: bulk_pipe(s)),
        ("pipe-offload", "pynet -> pynet, in-memory pipe, 64 KB super-segments", "kernel-veth",
         lambda: bulk_pipe(s, offload=True)),
        ("rr-kernel", "TCP_RR 1 byte, kernel client and server, veth, one CPU", None,
         _on_one_cpu(lambda: rr_kernel(s))),
        ("rr-pynet", "TCP_RR 1 byte, pynet client, kernel server, TAP, one CPU", "rr-kernel",
         _on_one_cpu(lambda: rr_pynet(s))),
        ("rr-socket", "TCP_RR 1 byte, pynet.socket client, kernel server, TAP, one CPU",
         "rr-kernel", _on_one_cpu(lambda: rr_socket(s))),
        ("crr-kernel", "connect+1 byte+close, kernel server, veth, one CPU", None,
         _on_one_cpu(lambda: crr_kernel(s))),
        ("crr-pynet", "connect+1 byte+close, pynet server, TAP, one CPU", "crr-kernel",
         _on_one_cpu(lambda: crr_pynet(s))),
        ("mem-idle", f"memory per idle established socket ({nconn} connections, pipe)", None,
         lambda: mem_idle(nconn, max(s * 3, 30.0))),
    ]


def available():
    """Why the privileged items cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun"
    return None


def run(seconds=10.0, only=None, nconn=10000, progress=None):
    """Run the items (all, or those named in `only`); returns a list of Result."""
    items = [it for it in _items(seconds, nconn) if not only or it[0] in only]
    if only:
        unknown = set(only) - {it[0] for it in _items(seconds, nconn)}
        if unknown:
            raise ValueError(f"unknown items: {', '.join(sorted(unknown))}")
    why = available()
    results = {}
    for i, (name, what, kname, fn) in enumerate(items):
        if progress:
            progress(i, len(items), name)
        needs_priv = name not in ("pipe", "pipe-offload", "mem-idle")
        if needs_priv and why:
            r = Result(name, what, "", status="not available", reason=why)
        else:
            try:
                r = fn()
            except DataError as exc:
                r = Result(name, what, "", status="error", reason=str(exc))
            except NotAvailable as exc:
                r = Result(name, what, "", status="not available", reason=str(exc))
            r.item, r.what = name, what
        if kname:
            r.kernel = kname
            k = results.get(kname)
            if k is not None and k.status == "ok" and r.status == "ok":
                r.kernel_value = k.value
                r.ratio = r.value / k.value if k.value else None
        results[name] = r
        gc.collect()
    if progress:
        progress(len(items), len(items), None)
    return list(results.values())


def _fmt(v, unit):
    if v is None:
        return "-"
    if unit == "Gbit/s":
        return f"{v:.2f}"
    return f"{v:,.0f}"


def print_table(results, file=None):
    file = file or sys.stdout
    rows = []
    for r in results:
        fig = _fmt(r.value, r.unit) if r.status == "ok" else r.status
        rows.append((r.item, r.what, fig, r.unit, _fmt(r.kernel_value, r.unit),
                     f"{r.ratio:.2f}x" if r.ratio is not None else "-",
                     f"{r.cpu_s_per_gb:.2f}" if r.cpu_s_per_gb is not None else "-",
                     "yes" if r.verified else "no", r.reason or ""))
    head = ("item", "what", "figure", "unit", "kernel", "ratio", "CPU s/GB", "verified", "note")
    if file.isatty():
        from rich.console import Console
        from rich.table import Table
        t = Table(title="pynet bench")
        for h in head:
            t.add_column(h, justify="right" if h in ("figure", "kernel", "ratio", "CPU s/GB")
                         else "left")
        for row in rows:
            t.add_row(*row)
        Console(file=file).print(t)
    else:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
        print("  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip(), file=file)
        for row in rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip(), file=file)


def markdown_table(runs):
    """The README's table from several `--json` outputs: what each item measures, each
    run's figure with its ratio to the kernel's figure of the same run, and the last
    run's CPU seconds per GB."""
    names = list(dict.fromkeys(r["item"] for run in runs for r in run["results"]))
    whats = {r["item"]: r["what"] for run in runs for r in run["results"] if r.get("what")}
    head = ["item", "what", "unit"] + [f"run {i}" for i in range(1, len(runs) + 1)] + \
        [f"CPU s/GB (run {len(runs)})"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        per_run = [{r["item"]: r for r in run["results"]}.get(name) for run in runs]
        unit = next((r["unit"] for r in per_run if r and r["unit"]), "")
        cells = []
        for r in per_run:
            if r is None:
                cells.append("-")
            elif r["status"] != "ok":
                cells.append(r["status"])
            else:
                ratio = f" ({r['ratio']:.2f}×)" if r.get("ratio") is not None else ""
                cells.append(_fmt(r["value"], unit) + ratio)
        last = per_run[-1]
        cpu = last.get("cpu_s_per_gb") if last else None
        cells.append(f"{cpu:.2f}" if cpu is not None else "-")
        lines.append(f"| `{name}` | {whats.get(name, '')} | {unit} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def to_json(results, seconds):
    return {"seconds_per_item": seconds, "congestion_control": CONGESTION.decode(),
            "kernel": os.uname().release, "cpus": os.cpu_count(),
            "results": [dataclasses.asdict(r) for r in results]}


def _only_items(p, only, nconn):
    """--only's names, split at commas too; an unknown one is a usage error (exit 2)."""
    if not only:
        return None
    names = [n for arg in only for n in arg.split(",") if n]
    unknown = sorted(set(names) - {it[0] for it in _items(0, nconn)})
    if unknown:
        p.error(f"unknown items: {', '.join(unknown)} (pynet bench --list names them)")
    return names


def add_arguments(p):
    p.add_argument("--seconds", type=float, default=10.0, help="duration of each item (10)")
    p.add_argument("--quick", action="store_true", help="1 s per item, 1,000 connections")
    p.add_argument("--connections", type=int, default=10000,
                   help="idle connections for the memory item (10,000)")
    p.add_argument("--only", nargs="+", metavar="ITEM",
                   help="run only these items (names as --list gives them, spaces or commas between)")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON ('-': stdout)")
    p.add_argument("--list", action="store_true", help="list the items and exit")
    p.add_argument("--report", nargs="+", metavar="JSON",
                   help="print the markdown table of earlier --json runs and exit")


def cmd_bench(args):
    only = _only_items(args.parser, args.only, args.connections)
    if args.report:
        runs = []
        for path in args.report:
            with open(path) as f:
                runs.append(json.load(f))
        print(markdown_table(runs))
        return 0
    if args.list:
        for name, what, _, _ in _items(0, args.connections):
            print(f"{name:20} {what}")
        return 0
    seconds, nconn = args.seconds, args.connections
    if args.quick:
        seconds, nconn = 1.0, min(nconn, 1000)
    err = sys.stderr

    def progress(i, n, name):
        if name:
            print(f"[{i + 1}/{n}] {name} ...", file=err, flush=True)

    results = run(seconds, only, nconn, progress)
    if args.json == "-":
        json.dump(to_json(results, seconds), sys.stdout, indent=1)
        print()
    else:
        print_table(results)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(to_json(results, seconds), f, indent=1)
    return 1 if any(r.status == "error" for r in results) else 0


def add_parser(sub):
    """`pynet bench`, registered by pynet.cli."""
    p = sub.add_parser("bench", help="pynet's TCP against the kernel's, side by side (root)")
    add_arguments(p)
    p.set_defaults(func=cmd_bench, parser=p)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "peer":
        return peer_main(argv[1:])
    p = argparse.ArgumentParser(prog="pynet bench", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    p.set_defaults(parser=p)
    return cmd_bench(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
