"""`pynet get`, `pynet serve` and `pynet demo`: stdlib HTTP and plain TCP
services running over pynet through its socket API (pynet.patch makes the
stdlib's socket calls land on a pynet stack)."""
import hashlib
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse
from contextlib import contextmanager

from pynet.cli.output import Progress, emit_json, fmt_rate

CHUNK = 256 * 1024


@contextmanager
def running_host(args, command):
    """open_host(args), its runner thread started and a control socket answering."""
    from pynet.cli.control import ControlServer
    from pynet.cli.topology import open_host
    from pynet.runner import runner_of
    with open_host(args) as host:
        host.stack.start()
        lock = runner_of(host.stack).lock
        try:
            with ControlServer(host.stack, command) as ctl:
                ctl.serve_in_thread(lock)
                yield host
                drain(host.stack, lock)
        finally:
            host.stack.stop()


def drain(stack, lock, timeout=10.0):
    """Let closed connections finish sending before the process (and with it
    the stack) goes: the kernel keeps a socket's data after close(), a stack
    inside the process only as long as the process runs. Bounded by timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with lock:
            h = getattr(stack, "tcp_hashinfo", None)
            busy = h is not None and any(sk.write_queue or sk.rtx_queue for sk in h.ehash.values())
        if not busy:
            return True
        time.sleep(0.02)
    return False


# -- get -------------------------------------------------------------------------------
def fetch(url, out, progress=True, timeout=30.0):
    """GET url with http.client (already patched onto a stack) into the binary file out.

    Returns a dict of figures; "complete" is True only when the whole body
    arrived (Content-Length met, or a chunked body's end seen)."""
    u = urllib.parse.urlsplit(url)
    if u.scheme != "http" or not u.hostname:
        raise ValueError(f"{url}: only http://HOST[:PORT]/PATH URLs")
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    sha = hashlib.sha256()
    got = 0
    complete = False
    t0 = time.monotonic()
    try:
        conn.request("GET", urllib.parse.urlunsplit(("", "", u.path or "/", u.query, "")))
        resp = conn.getresponse()
        length = resp.getheader("Content-Length")
        length = int(length) if length and length.isdigit() else None
        t_first = time.monotonic()
        with Progress(os.path.basename(u.path) or u.hostname, length, enabled=progress) as bar:
            try:
                while True:
                    chunk = resp.read(CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    sha.update(chunk)
                    got += len(chunk)
                    bar.advance(len(chunk))
                complete = 200 <= resp.status < 300 and (length is None or got == length)
            except (http.client.IncompleteRead, OSError) as exc:
                error = str(exc) or type(exc).__name__
            else:
                error = None if complete else f"HTTP {resp.status} {resp.reason}"
        info = tcp_info_of(conn.sock) if conn.sock is not None else None
    finally:
        conn.close()
    elapsed = time.monotonic() - t0
    return dict(url=url, status=resp.status, bytes=got, content_length=length, complete=complete,
                error=error, seconds=round(elapsed, 6), body_seconds=round(time.monotonic() - t_first, 6),
                rate_bps=int(got * 8 / elapsed) if elapsed > 0 else None, sha256=sha.hexdigest(),
                tcp_info=info)


# struct tcp_info (include/uapi/linux/tcp.h): 8 u8 fields, then u32 fields in this order
TCP_INFO_U32 = ("rto", "ato", "snd_mss", "rcv_mss", "unacked", "sacked", "lost", "retrans",
                "fackets", "last_data_sent", "last_ack_sent", "last_data_recv", "last_ack_recv",
                "pmtu", "rcv_ssthresh", "rtt", "rttvar", "snd_ssthresh", "snd_cwnd", "advmss",
                "reordering", "rcv_rtt", "rcv_space", "total_retrans")


def tcp_info_of(sock):
    """getsockopt(TCP_INFO) decoded as a user of the stdlib would do it."""
    import socket
    import struct
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
    u8 = struct.unpack_from("8B", raw)
    u32 = struct.unpack_from(f"={len(TCP_INFO_U32)}I", raw, 8)
    info = dict(zip(("state", "ca_state", "retransmits", "probes", "backoff", "options"), u8))
    info.update(snd_wscale=u8[6] & 15, rcv_wscale=u8[6] >> 4)
    info.update(zip(TCP_INFO_U32, u32))
    return info


def cmd_get(args):
    import pynet
    out_path = args.output or os.path.basename(urllib.parse.urlsplit(args.url).path) or "index.html"
    with running_host(args, "get") as host:
        out = sys.stdout.buffer if out_path == "-" else open(out_path, "wb")
        try:
            with pynet.patch(host.stack):
                r = fetch(args.url, out, progress=out_path != "-")
        except (OSError, ValueError, http.client.HTTPException) as exc:
            print(f"pynet get: {exc}", file=sys.stderr)
            return 1
        finally:
            if out is not sys.stdout.buffer:
                out.close()
    r["output"] = out_path
    say = sys.stderr if out_path == "-" else sys.stdout
    if args.json:
        emit_json(r)
    else:
        state = "complete" if r["complete"] else f"INCOMPLETE ({r['error']})"
        print(f"{out_path}: {r['bytes']} bytes in {r['seconds']:.2f} s, "
              f"{fmt_rate(r['bytes'], r['seconds'])}, {state}, sha256 {r['sha256']}", file=say)
    return 0 if r["complete"] else 1


# -- serve -----------------------------------------------------------------------------
def _stream_service(kind, conn, peer, log):
    """echo: send back what arrives; discard: read and drop. Logs one line per connection."""
    t0 = time.monotonic()
    n = 0
    with conn:
        try:
            while True:
                data = conn.recv(CHUNK)
                if not data:
                    break
                n += len(data)
                if kind == "echo":
                    conn.sendall(data)
        except OSError as exc:
            log(f"{peer[0]}:{peer[1]} {kind}: {exc}", peer=f"{peer[0]}:{peer[1]}", service=kind,
                bytes=n, error=str(exc))
            return
    dt = time.monotonic() - t0
    log(f"{peer[0]}:{peer[1]} {kind}: {n} bytes in {dt:.3f} s ({fmt_rate(n, dt)})",
        peer=f"{peer[0]}:{peer[1]}", service=kind, bytes=n, seconds=round(dt, 6))


def cmd_serve(args):
    import http.server
    import pynet
    port = args.port or {"echo": 7, "discard": 9, "http": 80}[args.service]

    def log(msg, **fields):
        """One line per event: text, or with --json one JSON object per line."""
        if args.json:
            print(json.dumps(dict(time=round(time.time(), 6), event=msg, **fields)), flush=True)
        else:
            print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)

    with running_host(args, "serve") as host, pynet.patch(host.stack):
        if args.service == "http":
            handler = http.server.SimpleHTTPRequestHandler
            directory = args.dir or os.getcwd()

            class Handler(handler):
                def __init__(self, *a, **kw):
                    super().__init__(*a, directory=directory, **kw)

                def log_message(self, fmt, *a):
                    peer = f"{self.client_address[0]}:{self.client_address[1]}"
                    log(f"{peer} " + fmt % a, peer=peer, service="http")

            server = http.server.HTTPServer((host.addr, port), Handler)
        else:
            server = pynet.create_server(host.stack, (host.addr, port))
        log(f"serving {args.service} on {host.addr}:{port}" +
            (f" from {args.dir or os.getcwd()}" if args.service == "http" else ""))
        served = 0
        workers = []
        try:
            while args.count is None or served < args.count:
                if args.service == "http":
                    server.handle_request()     # one connection (HTTP/1.0: one request each)
                else:
                    conn, peer = server.accept()
                    t = threading.Thread(target=_stream_service, args=(args.service, conn, peer, log),
                                         daemon=True)
                    t.start()
                    workers.append(t)
                served += 1
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close() if args.service == "http" else server.close()
        for t in workers:          # --count: the last connections finish first
            t.join()
        log(f"{served} connections served", connections=served)
    return 0


def add_parsers(sub, common):
    p = sub.add_parser("get", parents=[common], help="HTTP GET over pynet (http.client)")
    p.add_argument("url")
    p.add_argument("-o", dest="output", metavar="FILE", help="where the body goes (- for stdout; "
                   "default: the URL's file name)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_get)

    p = sub.add_parser("serve", parents=[common], help="serve echo, discard or http over pynet")
    p.add_argument("service", choices=["echo", "discard", "http"])
    p.add_argument("--port", type=int, help="default 7, 9 or 80")
    p.add_argument("--dir", help="http: the directory to serve (default: current)")
    p.add_argument("--count", type=int, help="stop after N connections")
    p.add_argument("--json", action="store_true", help="one JSON object per log line")
    p.set_defaults(func=cmd_serve)
