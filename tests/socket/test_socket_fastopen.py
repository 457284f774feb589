"""Fast Open through the socket API, as a Linux program uses it:
sendto(data, MSG_FASTOPEN, addr), TCP_FASTOPEN_CONNECT, and a listener's
TCP_FASTOPEN and TCP_FASTOPEN_KEY, between two stacks on the pipe."""
import errno
import socket

import pytest

from sockkit import B, two_stacks
from pynet.socket import MSG_FASTOPEN
from pynet.tcp import fastopen as tfo

REQ = b"GET / HTTP/1.0\r\n\r\n"
RESP = b"HTTP/1.0 200 OK\r\n\r\nhi"


def exchange(ls, c, first):
    """The server reads the request and answers; returns the client's answer."""
    n = first()
    conn, _ = ls.accept()
    with conn:
        got = b""
        while len(got) < len(REQ):
            got += conn.recv(100)
        assert got == REQ
        conn.sendall(RESP)
    assert c.recv(100) == RESP
    return n


def test_sendto_msg_fastopen_and_fastopen_connect():
    with two_stacks() as (a, b):
        tfo.tcp_fastopen_net(b).sysctl = tfo.TFO_CLIENT_ENABLE | tfo.TFO_SERVER_ENABLE
        ls = b.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.settimeout(5)
        ls.setsockopt(socket.IPPROTO_TCP, tfo.TCP_FASTOPEN, 8)
        key = bytes(range(16))
        ls.setsockopt(socket.IPPROTO_TCP, tfo.TCP_FASTOPEN_KEY, key)
        assert ls.getsockopt(socket.IPPROTO_TCP, tfo.TCP_FASTOPEN) == 8
        assert ls.getsockopt(socket.IPPROTO_TCP, tfo.TCP_FASTOPEN_KEY, 16) == key
        ls.bind((B, 80))
        ls.listen()
        with pytest.raises(OSError) as e:
            ls.setsockopt(socket.IPPROTO_TCP, tfo.TCP_FASTOPEN_KEY, b"short")
        assert e.value.errno == errno.EINVAL

        # no cookie yet: a non-blocking sendto only starts the connection
        c = a.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setblocking(False)
        with pytest.raises(BlockingIOError) as e:
            c.sendto(REQ, MSG_FASTOPEN, (B, 80))
        assert e.value.errno == errno.EINPROGRESS
        c.settimeout(5)

        def late_send():
            c.sendall(REQ)
        exchange(ls, c, late_send)
        c.close()
        assert b.mib.tcpext["TCPFastOpenCookieReqd"] == 1

        # with the cookie, the request rides in the SYN
        c = a.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.settimeout(5)
        assert exchange(ls, c, lambda: c.sendto(REQ, MSG_FASTOPEN, (B, 80))) == len(REQ)
        info = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        assert info[5] & tfo.TCPI_OPT_SYN_DATA
        c.close()
        assert b.mib.tcpext["TCPFastOpenPassive"] == 1 and a.mib.tcpext["TCPFastOpenActive"] == 1

        # TCP_FASTOPEN_CONNECT: connect() returns at once, send() makes the SYN
        c = a.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.settimeout(5)
        c.setsockopt(socket.IPPROTO_TCP, tfo.TCP_FASTOPEN_CONNECT, 1)
        assert c.getsockopt(socket.IPPROTO_TCP, tfo.TCP_FASTOPEN_CONNECT) == 1
        c.connect((B, 80))
        port = c.getsockname()[1]
        assert not any(key[3] == port for key in b.tcp_hashinfo.ehash)   # no SYN has left yet
        assert exchange(ls, c, lambda: c.send(REQ)) == len(REQ)
        c.close()
        assert b.mib.tcpext["TCPFastOpenPassive"] == 2 and a.mib.tcpext["TCPFastOpenActive"] == 2

        # as Linux: MSG_FASTOPEN on a connect()ed socket is EISCONN
        c = a.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.settimeout(5)
        c.connect((B, 80))
        with pytest.raises(OSError) as e:
            c.sendto(REQ, MSG_FASTOPEN, (B, 80))
        assert e.value.errno == errno.EISCONN
        c.close()
        ls.accept()[0].close()
        ls.close()
