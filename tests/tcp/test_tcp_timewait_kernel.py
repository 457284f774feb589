"""The kernel reconnects from one source port to a pynet server that closes
first and so holds each 4-tuple in TIME_WAIT: each new SYN must reopen the
4-tuple at once (RFC 6191, Linux's TCP_TW_SYN) instead of drawing a
challenge ACK, the kernel's RST and a SYN retransmitted a second later."""
import errno
import select
import socket
import threading
import time

import pytest

from pynet.netns import kernel_peer
from pynet.stack import Stack
from pynet.tcp.tcp import TcpState
from pynet.tcp.tcp_ipv4 import tcp_v4_init_sock
from pynet.tcp.tcp_user import inet_accept, inet_listen, tcp_close, tcp_recvmsg, tcp_sendmsg

pytestmark = pytest.mark.priv
CONNECTIONS = 40
SERVER_PORT = 8080
CLIENT_PORT = 40000


def kernel_client(peer, box):
    """CONNECTIONS times from CLIENT_PORT: connect, 1 byte each way, read
    the server's FIN, close. A connect refused because the previous
    connection's LAST_ACK is not over yet is tried again."""
    try:
        for n in range(CONNECTIONS):
            while True:
                s = peer.ns.run_in(socket.socket, socket.AF_INET, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.settimeout(10)
                s.bind((peer.kernel_addr, CLIENT_PORT))
                try:
                    s.connect((peer.pynet_addr(), SERVER_PORT))
                    break
                except OSError as exc:
                    s.close()
                    if exc.errno != errno.EADDRNOTAVAIL:
                        raise
                    time.sleep(0.005)
            with s:
                b = bytes((n,))
                s.sendall(b)
                assert s.recv(1) == b and s.recv(1) == b""
            box["done"] = n + 1
    except BaseException as exc:
        box["error"] = exc


@pytest.mark.timeout(120)
def test_kernel_reconnects_through_time_wait_without_syn_retransmits():
    with kernel_peer("tap") as peer:
        stack = Stack(seed=3)
        stack.add_device(peer.dev)
        stack.add_address(peer.dev, f"{peer.pynet_addr()}/{peer.prefixlen}")
        ls = tcp_v4_init_sock(stack)
        inet_listen(ls, ls.hashinfo, 0, SERVER_PORT, 16)
        before = peer.ns.counters()
        box = {"done": 0}
        th = threading.Thread(target=kernel_client, args=(peer, box), daemon=True)
        th.start()
        conns = []
        deadline = time.monotonic() + 90

        def time_waits():
            return [sk for sk in ls.hashinfo.ehash.values() if sk.state == TcpState.TIME_WAIT]

        # until the client is done and the last connection's FIN has reached us
        while th.is_alive() or not time_waits():
            now = time.monotonic()
            assert now < deadline, f"stalled after {box['done']} connections"
            stack.poll(now)
            while True:
                try:
                    conns.append(inet_accept(ls))
                except BlockingIOError:
                    break
            for s in list(conns):
                try:
                    d = tcp_recvmsg(s, 16, now)
                except BlockingIOError:
                    continue
                tcp_sendmsg(s, d, now)
                tcp_close(s, now)             # pynet closes first: TIME_WAIT is ours
                conns.remove(s)
            nt = stack.next_timer()
            select.select([peer.dev], [], [], 0.002 if nt is None else min(0.002, max(0, nt - now)))
        th.join()
        after = peer.ns.counters()
    assert "error" not in box, box.get("error")
    assert box["done"] == CONNECTIONS
    # every connection but the first found its 4-tuple in TIME_WAIT here
    # (the last one is still there), yet the kernel never had to retry
    tws = time_waits()
    assert len(tws) == 1 and tws[0].dport == CLIENT_PORT
    assert after["TcpExt"]["TCPSynRetrans"] - before["TcpExt"]["TCPSynRetrans"] == 0
    assert after["Tcp"]["OutRsts"] - before["Tcp"]["OutRsts"] == 0
    assert after["Tcp"]["ActiveOpens"] - before["Tcp"]["ActiveOpens"] == CONNECTIONS
