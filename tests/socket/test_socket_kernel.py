"""Unmodified stdlib programs over pynet against the Linux kernel in a
namespace (over a TAP): http.client and urllib.request fetch from the
kernel's `python -m http.server`; socketserver's ThreadingTCPServer with
SimpleHTTPRequestHandler on pynet serves concurrent curl clients; an
asyncio echo server on pynet serves many concurrent connections."""
import contextlib
import functools
import hashlib
import http.client
import http.server
import os
import socketserver
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request

import pytest

import pynet
import pynet.asyncio
from pynet.netns import kernel_peer
from pynet.stack import Stack

pytestmark = pytest.mark.priv
FETCH_BYTES = 100 << 20
CURL_CLIENTS = 50
CURL_BYTES = 256 << 10
ECHO_CONNECTIONS = 1000
ECHO_BYTES = 64 << 10


@contextlib.contextmanager
def pynet_peer(offload=True):
    """A kernel peer over TAP and a running pynet stack on its far end."""
    with kernel_peer("tap", offload=offload) as peer:
        stack = Stack(seed=7)
        stack.add_device(peer.dev)
        stack.add_address(peer.dev, f"{peer.pynet_addr()}/{peer.prefixlen}")
        with stack:
            yield peer, stack


def wait_listening(peer, port, proc, limit=20.0):
    """Until the kernel side listens on port (its own `ss`)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert proc.poll() is None, "kernel-side server died"
        out = peer.ns.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout
        if out.strip():
            return
        time.sleep(0.05)
    raise AssertionError("kernel-side server did not start")


@contextlib.contextmanager
def kernel_http_server(peer, directory, port=8000):
    proc = peer.ns.popen([sys.executable, "-m", "http.server", "--bind", peer.kernel_addr,
                          "--directory", str(directory), str(port)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(peer, port, proc)
        yield port
    finally:
        proc.kill()
        proc.wait()


def test_http_client_and_urllib_fetch_from_kernel(tmp_path):
    body = os.urandom(FETCH_BYTES)
    (tmp_path / "blob").write_bytes(body)
    want = hashlib.sha256(body).hexdigest()
    with pynet_peer() as (peer, stack), kernel_http_server(peer, tmp_path) as port, \
            pynet.patch(stack, hosts={"kernel.test": peer.kernel_addr}):
        conn = http.client.HTTPConnection("kernel.test", port, timeout=30)
        assert isinstance(conn, http.client.HTTPConnection)
        conn.request("GET", "/blob")
        resp = conn.getresponse()
        assert resp.status == 200
        sha = hashlib.sha256()
        while chunk := resp.read(1 << 20):
            sha.update(chunk)
        conn.close()
        assert sha.hexdigest() == want
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://{peer.kernel_addr}:{port}/blob", timeout=30) as f:
            assert hashlib.sha256(f.read()).hexdigest() == want


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_threading_tcp_server_serves_concurrent_curl(tmp_path):
    body = os.urandom(CURL_BYTES)
    (tmp_path / "page").write_bytes(body)
    want = hashlib.sha256(body).hexdigest()
    with pynet_peer() as (peer, stack), pynet.patch(stack):
        handler = functools.partial(QuietHandler, directory=str(tmp_path))
        socketserver.ThreadingTCPServer.request_queue_size = 128
        with socketserver.ThreadingTCPServer((peer.pynet_addr(), 8080), handler) as server:
            assert isinstance(server.socket, pynet.socket.socket)
            t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
            t.start()
            try:
                script = textwrap.dedent(f"""
                    for i in $(seq {CURL_CLIENTS}); do
                      curl -sS --max-time 50 -o {tmp_path}/got$i http://{peer.pynet_addr()}:8080/page &
                    done
                    wait
                    sha256sum {tmp_path}/got*
                """)
                out = peer.ns.run(["sh", "-c", script], capture_output=True, text=True, timeout=60)
            finally:
                server.shutdown()
                t.join()
    sums = [line.split()[0] for line in out.stdout.splitlines()]
    assert len(sums) == CURL_CLIENTS, out.stderr
    assert sums == [want] * CURL_CLIENTS


ECHO_CLIENT = """
import asyncio, os, resource, sys
host, port, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
async def one(i, sem):
    data = os.urandom(size)
    async with sem:
        r, w = await asyncio.open_connection(host, port)
    w.write(data)
    await w.drain()
    got = await r.readexactly(size)
    w.close()
    await w.wait_closed()
    return got == data
async def main():
    sem = asyncio.Semaphore(256)      # connects in flight: within the SYN backlog
    ok = await asyncio.gather(*(one(i, sem) for i in range(n)))
    print(sum(ok))
asyncio.run(main())
"""


def test_asyncio_echo_server_many_connections():
    import asyncio
    with pynet_peer() as (peer, stack):
        async def handle(reader, writer):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.close()

        async def main():
            server = await pynet.asyncio.start_server(handle, stack, peer.pynet_addr(), 7,
                                                      backlog=1024)
            client = [sys.executable, "-c", ECHO_CLIENT, peer.pynet_addr(), "7",
                      str(ECHO_CONNECTIONS), str(ECHO_BYTES)]
            done = await asyncio.to_thread(peer.ns.run, client, stdout=subprocess.PIPE,
                                           timeout=120, check=True)
            out = done.stdout
            server.close()
            await server.wait_closed()
            return out

        out = asyncio.run(main())
    assert int(out) == ECHO_CONNECTIONS
