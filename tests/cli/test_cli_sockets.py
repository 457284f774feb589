"""The commands built on the socket API: demo (two pynet stacks, and as root
the kernel), get from a kernel-side server, serve fetched by the kernel."""
import hashlib
import json
import os
import re
import subprocess
import sys
import time

import pytest

from clikit import Topology, netns_names, pynet, pynet_bg

from pynet.pcapfile import read_pcap

MIB = 1 << 20


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MIB), b""):
            h.update(block)
    return h.hexdigest()


def check_demo(r, pcap):
    assert r["complete"] and r["sha256_ok"] and r["status"] == 200
    assert r["bytes"] == r["content_length"] == 64 * MIB
    assert r["sha256"] == r["expected_sha256"]
    assert r["tcp_info"]["snd_mss"] == 1448 and r["tcp_info"]["state"] == 1   # ESTABLISHED
    assert r["handshake_ms"] > 0 and r["rate_bps"] > 0
    frames = [f for _, f in read_pcap(pcap)]
    assert len(frames) == 40
    # the capture starts with the handshake: a SYN from pynet, flags byte of TCP at 14+20+13
    assert any(len(f) > 47 and f[23] == 6 and f[47] == 0x02 for f in frames)


def test_demo_unprivileged(tmp_path):
    p = pynet("demo", "--no-kernel", "--json", run_dir=tmp_path, cwd=tmp_path, check=0)
    r = json.loads(p.stdout)
    assert "in-memory pipe" in r["path"]
    check_demo(r, tmp_path / "pynet-demo.pcap")
    text = pynet("demo", "--no-kernel", "--size", 4 * MIB, run_dir=tmp_path, cwd=tmp_path,
                 check=0).stdout
    assert re.search(r"HTTP GET +4194304 bytes in [\d.]+ s = [\d.]+ [kMG]?bit/s, sha256 matches", text)
    assert "TCP info" in text and "pynet-demo.pcap" in text


@pytest.mark.priv
def test_demo_as_root_against_the_kernel(tmp_path):
    p = pynet("demo", "--json", run_dir=tmp_path, cwd=tmp_path, check=0)
    r = json.loads(p.stdout)
    ns = re.search(r"in namespace (pyn\w+)", r["path"]).group(1)
    assert "Linux" in r["path"] and ns not in netns_names()
    check_demo(r, tmp_path / "pynet-demo.pcap")


@pytest.mark.priv
def test_get_a_file_from_the_kernel(tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "blob.bin").write_bytes(os.urandom(100 * MIB))     # the 100 MiB
    with Topology(tmp_path) as t:
        srv = t.popen([sys.executable, "-m", "http.server", "-b", t.kernel_addr, "8000", "-d", str(www)],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://{t.kernel_addr}:8000/blob.bin"
            for _ in range(50):      # until the server listens
                if pynet("get", "--netns", t.name, url, "-o", tmp_path / "out.bin", "--json",
                         run_dir=tmp_path).returncode == 0:
                    break
                time.sleep(0.1)
            p = pynet("get", "--netns", t.name, url, "-o", tmp_path / "out.bin", "--json",
                      run_dir=tmp_path, check=0)
            r = json.loads(p.stdout)
            assert r["complete"] and r["bytes"] == 100 * MIB
            assert r["sha256"] == sha256_file(www / "blob.bin") == sha256_file(tmp_path / "out.bin")
            # default name, text summary with the rate
            p = pynet("get", "--netns", t.name, url, run_dir=tmp_path, cwd=tmp_path, check=0)
            assert re.match(r"blob\.bin: 104857600 bytes in [\d.]+ s, [\d.]+ [kMG]?bit/s, complete",
                            p.stdout)
            p = pynet("get", "--netns", t.name, f"http://{t.kernel_addr}:8000/nothing", "-o",
                      tmp_path / "x", run_dir=tmp_path, check=1)
            assert "HTTP 404" in p.stdout
        finally:
            srv.kill()
            srv.wait()


@pytest.mark.priv
def test_get_over_a_veth_without_offloads(tmp_path):
    """--no-offload on a recorded veth: pynet's packet socket has no vnet header, so the
    kernel's end must send MSS frames (its TSO/GSO off), or the transfer stalls."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "f.bin").write_bytes(os.urandom(8 * MIB))
    with Topology(tmp_path, veth=True) as t:
        srv = t.popen([sys.executable, "-m", "http.server", "-b", t.kernel_addr, "8000", "-d", str(www)],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait = (f"import socket,time\nfor _ in range(100):\n try: socket.create_connection("
                    f"('{t.kernel_addr}', 8000)).close(); break\n except OSError: time.sleep(0.05)")
            t.run([sys.executable, "-c", wait], check=True)       # the server listens
            p = pynet("get", "--netns", t.name, "--no-offload", f"http://{t.kernel_addr}:8000/f.bin",
                      "-o", tmp_path / "out.bin", "--json", run_dir=tmp_path, check=0)
            r = json.loads(p.stdout)
            assert r["complete"] and r["sha256"] == sha256_file(www / "f.bin")
        finally:
            srv.kill()
            srv.wait()


TRUNCATING_SERVER = """
import socket, sys
s = socket.create_server((sys.argv[1], 8001)); print("ready", flush=True)
c, _ = s.accept(); c.recv(4096)
c.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 100000\\r\\n\\r\\n" + b"x" * 50000); c.close()
"""


@pytest.mark.priv
def test_get_exits_1_when_the_body_is_cut_short(tmp_path):
    with Topology(tmp_path) as t:
        srv = t.popen([sys.executable, "-c", TRUNCATING_SERVER, t.kernel_addr],
                      stdout=subprocess.PIPE, text=True)
        try:
            assert srv.stdout.readline().strip() == "ready"
            p = pynet("get", "--netns", t.name, f"http://{t.kernel_addr}:8001/f", "-o",
                      tmp_path / "cut", "--json", run_dir=tmp_path, check=1)
            r = json.loads(p.stdout)
            assert not r["complete"] and r["bytes"] == 50000 and r["content_length"] == 100000
        finally:
            srv.kill()
            srv.wait()


def wait_for_line(proc, pattern, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if re.search(pattern, line):
            return line
    raise AssertionError(f"no line matching {pattern!r}")


@pytest.mark.priv
def test_serve_http_fetched_by_curl(tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "page.bin").write_bytes(os.urandom(8 * MIB))
    with Topology(tmp_path) as t:
        srv = pynet_bg("serve", "http", "--netns", t.name, "--port", 8080, "--dir", www,
                       "--count", 1, run_dir=tmp_path)
        try:
            wait_for_line(srv, r"serving http on 198\.18\.7\.2:8080")
            ss = json.loads(pynet("ss", "--json", run_dir=tmp_path, check=0).stdout)
            assert [(s["state"], s["local"]) for s in ss] == [("LISTEN", f"{t.pynet_addr}:8080")]
            curl = t.run(["curl", "-sS", "--max-time", "30", "-o", str(tmp_path / "got.bin"),
                          "-w", "%{http_code} %{size_download}", f"http://{t.pynet_addr}:8080/page.bin"],
                         capture_output=True, text=True, timeout=40)
            assert curl.stdout == f"200 {8 * MIB}", curl.stderr
            assert sha256_file(tmp_path / "got.bin") == sha256_file(www / "page.bin")
            out, err = srv.communicate(timeout=20)
            assert srv.returncode == 0, err
            assert re.search(rf"{t.kernel_addr}:\d+ \"GET /page.bin HTTP/1.1\" 200", out)
            assert "1 connections served" in out
        finally:
            srv.kill()
            srv.wait()


ECHO_CLIENT = """
import os, socket, sys, threading
data = os.urandom(1000000)
s = socket.create_connection((sys.argv[1], 7), timeout=20)
def send():     # while the echo comes back: neither side's buffers fill up
    s.sendall(data); s.shutdown(socket.SHUT_WR)
threading.Thread(target=send).start()
got = b"".join(iter(lambda: s.recv(65536), b""))
print(got == data, len(got))
"""


@pytest.mark.priv
def test_serve_echo_and_discard(tmp_path):
    with Topology(tmp_path) as t:
        srv = pynet_bg("serve", "echo", "--netns", t.name, "--count", 1, run_dir=tmp_path)
        try:
            wait_for_line(srv, r"serving echo on")
            c = t.run([sys.executable, "-c", ECHO_CLIENT, t.pynet_addr], capture_output=True,
                      text=True, timeout=30)
            assert c.stdout.split() == ["True", "1000000"], c.stderr
            out, _ = srv.communicate(timeout=20)
            assert re.search(rf"{t.kernel_addr}:\d+ echo: 1000000 bytes in", out)
        finally:
            srv.kill()
            srv.wait()
        srv = pynet_bg("serve", "discard", "--netns", t.name, "--count", 1, "--json", run_dir=tmp_path)
        try:
            wait_for_line(srv, r"serving discard on .*:9\"")
            c = t.run([sys.executable, "-c", "import socket, sys; s = socket.create_connection("
                       "(sys.argv[1], 9), timeout=20); s.sendall(bytes(300000)); s.close()",
                       t.pynet_addr], capture_output=True, text=True, timeout=30)
            out, _ = srv.communicate(timeout=20)
            events = [json.loads(line) for line in out.splitlines()]
            conn = [e for e in events if e.get("service") == "discard"]
            assert len(conn) == 1 and conn[0]["bytes"] == 300000, (out, c.stderr)
            assert events[-1]["connections"] == 1
        finally:
            srv.kill()
            srv.wait()
