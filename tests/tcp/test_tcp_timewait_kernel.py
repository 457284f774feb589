"""The kernel reconnects from one source port to a pynet server that closes
first and so holds each 4-tuple in TIME_WAIT: each new SYN must reopen the
4-tuple at once (RFC 6191, Linux's TCP_TW_SYN) instead of drawing a
challenge ACK, the kernel's RST and a SYN retransmitted a second later."""
import errno
import socket
import threading
import time

import pytest

from kernelkit import loop, pynet_on
from pynet.netns import kernel_peer
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
        stack, dev = pynet_on(peer)
        ls = tcp_v4_init_sock(stack)
        inet_listen(ls, ls.hashinfo, 0, SERVER_PORT, 16)
        before = peer.ns.counters()
        box = {"done": 0}
        th = threading.Thread(target=kernel_client, args=(peer, box), daemon=True)
        th.start()
        conns = []

        def time_waits():
            return [sk for sk in ls.hashinfo.ehash.values() if sk.state == TcpState.TIME_WAIT]

        def step(now):
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
            # until the client is done and the last connection's FIN has reached us
            return not th.is_alive() and time_waits()

        loop(stack, dev, [], step, limit=90)
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
