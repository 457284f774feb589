"""`pynet serve --fastopen`: the kernel's curl --tcp-fastopen gets a cookie on
its first connection and sends its request in the SYN on the second."""
import json
import subprocess
import sys

import pytest

from clikit import Topology, pynet, pynet_bg
from test_cli_sockets import wait_for_line

pytestmark = pytest.mark.priv


def test_serve_fastopen_with_kernel_curl(tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "a.txt").write_bytes(b"fast open\n")
    with Topology(tmp_path) as t:
        srv = pynet_bg("serve", "http", "--netns", t.name, "--port", 8080, "--dir", www,
                       "--fastopen", run_dir=tmp_path)
        try:
            wait_for_line(srv, r"serving http on")
            for _ in range(2):
                curl = t.run(["curl", "-sS", "--tcp-fastopen", "--max-time", "20",
                              f"http://{t.pynet_addr}:8080/a.txt"],
                             capture_output=True, text=True, timeout=30)
                assert curl.stdout == "fast open\n", curl.stderr
            n = json.loads(pynet("nstat", "--json", run_dir=tmp_path, check=0).stdout)
            assert n["TcpExtTCPFastOpenCookieReqd"] == 1
            assert n["TcpExtTCPFastOpenPassive"] == 1
        finally:
            srv.kill()
            srv.wait()


def kernel_tcpext(t, name):
    text = t.run(["cat", "/proc/net/netstat"], capture_output=True, text=True).stdout.splitlines()
    head, vals = [line.split() for line in text if line.startswith("TcpExt:")]
    return int(vals[head.index(name)])


def test_get_fastopen_asks_the_kernel_for_a_cookie(tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "a.txt").write_bytes(b"fast open\n")
    with Topology(tmp_path) as t:
        # client and server, and Fast Open on listeners that did not ask (0x400)
        t.run(["sysctl", "-qw", "net.ipv4.tcp_fastopen=1027"], check=True)
        srv = t.popen([sys.executable, "-u", "-m", "http.server", "-b", t.kernel_addr, "8000", "-d", str(www)],
                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            wait_for_line(srv, r"Serving HTTP")
            before = kernel_tcpext(t, "TCPFastOpenCookieReqd")
            p = pynet("get", "--netns", t.name, "--fastopen", f"http://{t.kernel_addr}:8000/a.txt",
                      "-o", tmp_path / "a.txt", "--json", run_dir=tmp_path, check=0)
            assert json.loads(p.stdout)["complete"]
            assert (tmp_path / "a.txt").read_bytes() == b"fast open\n"
            assert kernel_tcpext(t, "TCPFastOpenCookieReqd") == before + 1
        finally:
            srv.kill()
            srv.wait()
