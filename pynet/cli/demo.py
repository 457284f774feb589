"""`pynet demo`: two pynet stacks over the in-memory pipe (or, as root, pynet
and the Linux kernel in a namespace over a TAP), a TCP handshake and an HTTP
GET with the stdlib's http.server and http.client, then the figures: the
throughput, the connection's TCP info and a capture of the first packets."""
import hashlib
import http.client
import http.server
import secrets
import subprocess
import sys
import time

from pynet.cli.http import fetch
from pynet.cli.output import emit_json, fmt_rate
from pynet.dev.netdevice import NETIF_F_HW_CSUM, NETIF_F_RXCSUM, NETIF_F_SG, NETIF_F_TSO
from pynet.dev.pcap import PcapWriter, wire_bytes

DEFAULT_SIZE = 64 << 20
BLOCK = bytes(range(256)) * 4096          # 1 MiB the body repeats: no disk, known sha256
CAPTURED_FRAMES = 40


def body_sha256(size):
    h = hashlib.sha256()
    whole, rest = divmod(size, len(BLOCK))
    for _ in range(whole):
        h.update(BLOCK)
    h.update(BLOCK[:rest])
    return h.hexdigest()


class DemoHandler(http.server.BaseHTTPRequestHandler):
    """GET /N answers N bytes of BLOCK repeated, HTTP/1.1 with Content-Length."""
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        try:
            size = int(self.path.lstrip("/"))
        except ValueError:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        view = memoryview(BLOCK)
        while size > 0:
            n = min(size, len(BLOCK))
            self.wfile.write(view[:n])
            size -= n

    def log_message(self, fmt, *args):
        pass


def demo_server(addr, port):
    """The kernel side of the root demo: the same handler on kernel sockets."""
    server = http.server.HTTPServer((addr, port), DemoHandler)
    print("ready", flush=True)
    server.serve_forever()


class FirstFrames(PcapWriter):
    """A PcapWriter that records only the first `limit` frames: the handshake
    and the start of the transfer, not 64 MiB."""

    def __init__(self, lower, path, limit=CAPTURED_FRAMES):
        super().__init__(lower, path)
        self.limit = limit
        self.frames = 0

    def ndo_start_xmit(self, skb):
        if self.frames >= self.limit:
            return super(PcapWriter, self).ndo_start_xmit(skb)
        self.frames += 1
        return super().ndo_start_xmit(skb)

    def ndo_poll(self, budget, now):
        skbs = super(PcapWriter, self).ndo_poll(budget, now)
        for skb in skbs[:max(self.limit - self.frames, 0)]:
            self.pcap.write(wire_bytes(skb), self.clock())
            self.frames += 1
        return skbs


class _Discard:
    def write(self, data):
        return len(data)


def _get(stack, addr, port, size):
    """Handshake timed on its own, then the GET; fetch's figures plus handshake_ms."""
    import pynet
    with pynet.patch(stack):
        t0 = time.monotonic()
        probe = http.client.HTTPConnection(addr, port, timeout=30)
        probe.connect()
        handshake = time.monotonic() - t0
        probe.close()
        r = fetch(f"http://{addr}:{port}/{size}", _Discard(), progress=True)
    r["handshake_ms"] = round(handshake * 1000, 3)
    return r


def run_pipe(size, pcap):
    import threading
    import pynet
    from pynet.runner import Runner
    from pynet.stack import pipe_stacks
    server_addr, client_addr = "198.18.0.1", "198.18.0.2"
    # offloads as a veth has them: 64 KB TSO super-segments cross the pipe whole
    server, client = pipe_stacks((server_addr, client_addr),
                                 wraps=(None, lambda dev: FirstFrames(dev, pcap)),
                                 features=NETIF_F_SG | NETIF_F_HW_CSUM | NETIF_F_RXCSUM | NETIF_F_TSO)
    (ds,), (dc,) = server.devices.values(), client.devices.values()
    runner = Runner(server, client).start()
    try:
        with pynet.patch(server):
            httpd = http.server.HTTPServer((server_addr, 80), DemoHandler)
        t = threading.Thread(target=httpd.serve_forever, daemon=True)
        t.start()
        try:
            r = _get(client, server_addr, 80, size)
        finally:
            httpd.shutdown()
            httpd.server_close()
    finally:
        runner.stop()
        dc.stop()
        ds.stop()
    r["path"] = f"pynet {client_addr} -> pynet {server_addr}:80 over the in-memory pipe"
    return r


def run_kernel(size, pcap):
    from pynet.netns import kernel_peer
    from pynet.stack import Stack
    with kernel_peer("tap", offload=True) as peer:
        srv = peer.ns.popen([sys.executable, "-c", "from pynet.cli.demo import demo_server; "
                             f"demo_server({peer.kernel_addr!r}, 80)"], stdout=subprocess.PIPE, text=True)
        try:
            if srv.stdout.readline().strip() != "ready":
                raise RuntimeError("the kernel-side HTTP server did not start")
            dev = FirstFrames(peer.dev, pcap)
            stack = Stack(seed=1)
            stack.add_device(dev)
            addr = peer.pynet_addr()
            stack.add_address(dev, f"{addr}/{peer.prefixlen}")
            stack.start()
            try:
                r = _get(stack, peer.kernel_addr, 80, size)
            finally:
                stack.stop()
                stack.remove_device(dev)
                dev.pcap.close()
        finally:
            srv.kill()
            srv.wait()
        r["path"] = (f"pynet {addr} -> Linux {peer.kernel_addr}:80 in namespace {peer.ns.name} "
                     f"over TAP {peer.ifname} (removed now)")
    return r


def cmd_demo(args):
    from pynet.cli.topology import privileged
    kernel = not args.no_kernel and privileged()
    t0 = time.monotonic()
    r = (run_kernel if kernel else run_pipe)(args.size, args.pcap)
    r["expected_sha256"] = body_sha256(args.size)
    r["sha256_ok"] = r["sha256"] == r["expected_sha256"]
    r["pcap"] = args.pcap
    r["total_seconds"] = round(time.monotonic() - t0, 3)
    ok = r["complete"] and r["sha256_ok"]
    if args.json:
        emit_json(r)
        return 0 if ok else 1
    i = r["tcp_info"] or {}
    print(r["path"])
    print(f"handshake     {r['handshake_ms']:.2f} ms")
    print(f"HTTP GET      {r['bytes']} bytes in {r['body_seconds']:.2f} s = "
          f"{fmt_rate(r['bytes'], r['body_seconds'])}, sha256 "
          f"{'matches' if r['sha256_ok'] else 'DIFFERS'}" + ("" if r["complete"] else f" ({r['error']})"))
    if i:
        print(f"TCP info      rtt {i['rtt'] / 1000:.3f}/{i['rttvar'] / 1000:.3f} ms, "
              f"mss {i['snd_mss']}/{i['rcv_mss']}, cwnd {i['snd_cwnd']}, wscale "
              f"{i['snd_wscale']},{i['rcv_wscale']}, rcv_space {i['rcv_space']}, "
              f"retrans {i['total_retrans']}")
    print(f"capture       {args.pcap}: the first {CAPTURED_FRAMES} frames "
          f"(tcpdump -nr {args.pcap}, or pynet plot {args.pcap})")
    return 0 if ok else 1


def add_parser(sub):
    p = sub.add_parser("demo", help="two stacks (or pynet and the kernel, as root), an HTTP GET, "
                                    "the figures")
    p.add_argument("--no-kernel", action="store_true",
                   help="two pynet stacks over the in-memory pipe even as root")
    p.add_argument("--size", type=int, default=DEFAULT_SIZE, help="bytes to GET (default 64 MiB)")
    p.add_argument("--pcap", default="pynet-demo.pcap", help="capture of the first frames")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_demo)
