"""TCP Fast Open (RFC 7413) segment by segment on the fake clock: each
branch of the client (cookie request, SYN data acked / not acked, SYN
timeout, back-off) and of the server (valid, invalid and missing cookie,
queue full, key rotation, cookie-less mode, the experimental option)."""
import errno

import pytest

from tcpkit import A_IP, B_IP, Host, Seg, run_until
from pynet.cli.views import tcp_info
from pynet.tcp import fastopen as tfo
from pynet.tcp.tcp import TcpState
from pynet.tcp.tcp_ipv4 import tcp_v4_connect
from pynet.tcp.tcp_user import inet_accept, inet_listen, tcp_recvmsg, tcp_sendmsg

REQ = b"GET / HTTP/1.0\r\n\r\n"
RESP = b"HTTP/1.0 200 OK\r\n\r\nhello"


def server(host, qlen=16, sysctl=tfo.TFO_CLIENT_ENABLE | tfo.TFO_SERVER_ENABLE, port=80):
    tfo.tcp_fastopen_net(host).sysctl = sysctl
    ls = host.sock()
    tfo.tcp_fastopen_listen(ls, qlen)
    inet_listen(ls, host.hashinfo, host.addr, port, 16)
    return ls


def ext(host, name):
    return host.mib.tcpext[name]


def handshake_ack(c_host, s_host, now):
    """Hand the client's segments to the server, the server's back, until quiet."""
    while True:
        a, b = c_host.take(), s_host.take()
        if not a and not b:
            return
        for seg in a:
            s_host.deliver(seg, now)
        for seg in b:
            c_host.deliver(seg, now)


def test_cookie_request_then_syn_data_acked_one_rtt_sooner():
    a, b = Host(A_IP), Host(B_IP)
    ls = server(b)
    # first connection: no cookie cached, the SYN asks for one and carries no data
    c1 = a.sock()
    assert tfo.tcp_sendmsg_fastopen(c1, REQ, 0.0, B_IP, 80) == 0
    syn, = a.take()
    assert syn.flags == "S" and syn.th.fastopen == b"" and not syn.th.fastopen_exp
    assert syn.payload == b""
    b.deliver(syn, 0.01)
    synack, = b.take()
    cookie = tfo.tcp_fastopen_net(b).ctx.cookie(A_IP, B_IP)
    assert synack.th.fastopen == cookie and len(cookie) == 8
    assert synack.ack == c1.iss + 1
    assert ext(b, "TCPFastOpenCookieReqd") == 1 and ext(b, "TCPFastOpenPassive") == 0
    a.deliver(synack, 0.02)
    entry = tfo.tcp_fastopen_net(a).cache[B_IP]
    assert entry.cookie == cookie and entry.mss == 1460
    handshake_ack(a, b, 0.03)
    assert c1.state == TcpState.ESTABLISHED and not c1.syn_data_acked
    assert inet_accept(ls).state == TcpState.ESTABLISHED

    # second connection: cookie and request in the SYN; the server's child is
    # readable and answers before the handshake's third segment
    c2 = a.sock()
    assert tfo.tcp_sendmsg_fastopen(c2, REQ, 1.0, B_IP, 80) == len(REQ)
    syn, = a.take()
    assert syn.flags == "S" and syn.th.fastopen == cookie and syn.payload == REQ
    assert c2.snd_nxt == (c2.iss + 1 + len(REQ)) & 0xFFFFFFFF and len(c2.rtx_queue) == 2
    b.deliver(syn, 1.01)
    synack, = b.take()
    assert synack.flags == "SA" and synack.ack == (c2.iss + 1 + len(REQ)) & 0xFFFFFFFF
    assert synack.th.fastopen is None                 # a valid cookie is not re-sent
    child = inet_accept(ls)
    assert child.state == TcpState.SYN_RECV and child.syn_data_acked
    assert tcp_recvmsg(child, 100, 1.01) == REQ
    assert tcp_sendmsg(child, RESP, 1.01) == len(RESP)
    resp, = b.take()
    assert resp.payload == RESP and child.state == TcpState.SYN_RECV
    assert ext(b, "TCPFastOpenPassive") == 1
    # the client gets SYN-ACK and response in one round trip
    a.deliver(synack, 1.02)
    a.deliver(resp, 1.02)
    assert c2.state == TcpState.ESTABLISHED and c2.syn_data_acked
    assert tfo.tcpi_options_fastopen(c2) == tfo.TCPI_OPT_SYN_DATA and tcp_info(c2)["syn_data_acked"]
    assert tcp_recvmsg(c2, 100, 1.02) == RESP
    assert not c2.rtx_queue and ext(a, "TCPFastOpenActive") == 1
    handshake_ack(a, b, 1.03)
    assert child.state == TcpState.ESTABLISHED and ls.fastopenq.qlen() == 0
    # nothing is resent later: the SYN-ACK timer stopped with the handshake
    assert run_until(b, 30.0) == [] and run_until(a, 30.0) == []


def cached_client(a, cookie=b"\x01" * 8, mss=1400):
    e = tfo.tcp_fastopen_net(a).cache_entry(B_IP, create=True)
    e.cookie, e.mss = cookie, mss
    return e


def test_syn_data_not_acked_is_sent_again_after_the_handshake():
    a = Host(A_IP)
    cached_client(a)
    c = a.sock()
    assert tfo.tcp_sendmsg_fastopen(c, REQ, 0.0, B_IP, 80) == len(REQ)
    syn, = a.take()
    assert syn.th.fastopen == b"\x01" * 8 and syn.payload == REQ
    fresh = b"\x02" * 8
    # the server did not take the data: its SYN-ACK acknowledges the SYN only
    a.deliver(Seg("SA", 9000, c.iss + 1, 65535, sport=80, dport=c.sport, mss=1460,
                  fastopen=fresh), 0.05)
    again, = a.take()
    assert again.flags == "PA" and again.seq == c.iss + 1 and again.payload == REQ
    assert again.ack == 9001
    assert c.state == TcpState.ESTABLISHED and not c.syn_data_acked
    assert c.fastopen_client_fail == tfo.TFO_DATA_NOT_ACKED
    assert ext(a, "TCPFastOpenActiveFail") == 1 and ext(a, "TCPFastOpenActive") == 0
    e = tfo.tcp_fastopen_net(a).cache[B_IP]
    assert e.cookie == fresh and e.mss == 1460 and e.syn_loss == 0


def test_syn_timeout_retried_without_data_then_backoff():
    a = Host(A_IP)
    cached_client(a)
    t = 0.0
    for attempt in (1, 2):
        c = a.sock()
        assert tfo.tcp_sendmsg_fastopen(c, REQ, t, B_IP, 80) == len(REQ)
        syn, = a.take()
        assert syn.payload == REQ and syn.th.fastopen is not None
        (when, retry), = [(w, s) for w, s in run_until(a, t + 1.5) if s.th.source == c.sport]
        assert when == t + 1.0 and retry.flags == "S" and retry.payload == b""
        assert retry.th.fastopen is None and retry.seq == c.iss
        # the SYN-ACK answers the plain retry: no cookie, data not acknowledged
        a.deliver(Seg("SA", 9000, c.iss + 1, 65535, sport=80, dport=c.sport, mss=1460), t + 1.6)
        data, = a.take()
        assert data.payload == REQ and data.seq == c.iss + 1
        a.deliver(Seg("A", 9001, data.seq + len(REQ), 65535, sport=80, dport=c.sport), t + 1.7)
        assert c.fastopen_client_fail == tfo.TFO_SYN_RETRANSMITTED
        assert tfo.tcp_fastopen_net(a).cache[B_IP].syn_loss == attempt
        t += 10.0
    # two SYN-data losses in a row: a plain SYN, no option, for 60 s << 2
    c = a.sock()
    assert tfo.tcp_sendmsg_fastopen(c, REQ, t, B_IP, 80) == 0
    syn, = a.take()
    assert syn.payload == b"" and syn.th.fastopen is None
    c = a.sock()
    assert tfo.tcp_sendmsg_fastopen(c, REQ, 20.0 + 240.0, B_IP, 80) == len(REQ)
    assert a.take()[0].payload == REQ


def syn_to(b, cookie, payload=REQ, sport=4000, exp=False, seq=100):
    b.deliver(Seg("S", seq, 0, 65535, payload=payload, sport=sport, mss=1460,
                  fastopen=cookie, fastopen_exp=exp), b.now + 0.01)
    return b.take()


def test_invalid_cookie_gets_a_fresh_one_and_its_data_is_dropped():
    b = Host(A_IP)        # the server; tcpkit's Seg comes from B_IP
    ls = server(b)
    synack, = syn_to(b, b"\xee" * 8)
    valid = tfo.tcp_fastopen_net(b).ctx.cookie(B_IP, A_IP)
    assert synack.ack == 101 and synack.th.fastopen == valid
    assert not ls.accept_queue and ext(b, "TCPFastOpenPassiveFail") == 1
    b.deliver(Seg("A", 101, synack.seq + 1, 65535), b.now + 0.01)
    child = inet_accept(ls)
    with pytest.raises(BlockingIOError):
        tcp_recvmsg(child, 100, b.now)
    assert ext(b, "TCPFastOpenPassive") == 0
    # a request without data gets the same cookie; the valid one is taken
    synack, = syn_to(b, b"", payload=b"", sport=4001)
    assert synack.th.fastopen == valid and ext(b, "TCPFastOpenCookieReqd") == 1
    synack, = syn_to(b, valid, sport=4002)
    assert synack.ack == 101 + len(REQ) and tcp_recvmsg(inet_accept(ls), 100, b.now) == REQ


def test_queue_full_falls_back_to_a_normal_handshake():
    b = Host(A_IP)
    ls = server(b, qlen=1)
    valid = tfo.tcp_fastopen_net(b).ctx.cookie(B_IP, A_IP)
    first, = syn_to(b, valid, sport=4000)
    assert first.ack == 101 + len(REQ)
    second, = syn_to(b, valid, sport=4001)
    assert second.ack == 101 and ext(b, "TCPFastOpenListenOverflow") == 1
    assert len(ls.accept_queue) == 1 and ls.fastopenq.qlen() == 1
    # the first child's handshake completes: room for the next one
    b.deliver(Seg("A", 101 + len(REQ), first.seq + 1, 65535, sport=4000), b.now + 0.01)
    assert ls.fastopenq.qlen() == 0
    third, = syn_to(b, valid, sport=4002)
    assert third.ack == 101 + len(REQ) and ext(b, "TCPFastOpenPassive") == 2


def test_key_rotation_keeps_the_previous_key():
    b = Host(A_IP)
    ls = server(b)
    k1, k2, k3 = b"\x11" * 16, b"\x22" * 16, b"\x33" * 16
    tfo.tcp_fastopen_set_key(b, k1, ls)
    old = tfo.TcpFastOpenContext(k1).cookie(B_IP, A_IP)
    new = tfo.TcpFastOpenContext(k2).cookie(B_IP, A_IP)
    tfo.tcp_fastopen_rotate_key(b, k2, ls)
    assert tfo.tcp_fastopen_get_key(b, ls) == k2 + k1
    synack, = syn_to(b, old, sport=4000)
    # accepted under the backup key, and the SYN-ACK hands out the new cookie
    assert synack.ack == 101 + len(REQ) and synack.th.fastopen == new
    assert ext(b, "TCPFastOpenPassiveAltKey") == 1
    tfo.tcp_fastopen_set_key(b, k3, ls)
    synack, = syn_to(b, old, sport=4001)
    assert synack.ack == 101 and ext(b, "TCPFastOpenPassiveFail") == 1
    with pytest.raises(OSError) as e:
        tfo.tcp_fastopen_set_key(b, b"short", ls)
    assert e.value.errno == errno.EINVAL


def test_cookie_less_mode_and_no_fastopen_without_the_sysctl():
    a, b = Host(A_IP), Host(B_IP)
    ls = server(b, sysctl=tfo.TFO_SERVER_ENABLE | tfo.TFO_SERVER_COOKIE_NOT_REQD)
    c = a.sock(fastopen_no_cookie=True)
    assert tfo.tcp_sendmsg_fastopen(c, REQ, 0.0, B_IP, 80) == len(REQ)
    syn, = a.take()
    assert syn.th.fastopen is None and syn.payload == REQ
    b.deliver(syn, 0.01)
    synack, = b.take()
    assert synack.ack == (c.iss + 1 + len(REQ)) & 0xFFFFFFFF
    assert tcp_recvmsg(inet_accept(ls), 100, 0.01) == REQ
    # the server bit off: data in a SYN is never taken
    tfo.tcp_fastopen_net(b).sysctl = 0
    c = a.sock(fastopen_no_cookie=True)
    tfo.tcp_sendmsg_fastopen(c, REQ, 1.0, B_IP, 80)
    b.deliver(a.take()[0], 1.01)
    assert b.take()[0].ack == (c.iss + 1) & 0xFFFFFFFF
    tfo.tcp_fastopen_net(a).sysctl = 0
    with pytest.raises(OSError) as e:
        tfo.tcp_sendmsg_fastopen(a.sock(), REQ, 2.0, B_IP, 80)
    assert e.value.errno == errno.EOPNOTSUPP


def test_experimental_option_is_answered_in_kind():
    b = Host(A_IP)
    ls = server(b)
    synack, = syn_to(b, b"", payload=b"", exp=True)
    assert synack.th.fastopen_exp and len(synack.th.fastopen) == 8
    synack, = syn_to(b, synack.th.fastopen, exp=True, sport=4001)
    assert synack.ack == 101 + len(REQ) and len(ls.accept_queue) == 1


def test_fastopen_connect_defers_the_syn_to_the_first_send():
    a = Host(A_IP)
    cached_client(a)
    c = a.sock()
    tfo.tcp_sock_set_fastopen_connect(c, True)
    tcp_v4_connect(c, B_IP, 80, 0.0)
    assert a.take() == [] and c.state == TcpState.SYN_SENT
    assert tcp_sendmsg(c, REQ, 0.5) == len(REQ)
    syn, = a.take()
    assert syn.flags == "S" and syn.payload == REQ and syn.th.fastopen == b"\x01" * 8
    # without a cookie the SYN goes at connect(), asking for one
    a2 = Host(A_IP)
    c = a2.sock()
    tfo.tcp_sock_set_fastopen_connect(c, True)
    tcp_v4_connect(c, B_IP, 80, 0.0)
    syn, = a2.take()
    assert syn.th.fastopen == b"" and syn.payload == b""


def test_child_resends_its_synack_and_gives_up():
    b = Host(A_IP)
    ls = server(b)
    valid = tfo.tcp_fastopen_net(b).ctx.cookie(B_IP, A_IP)
    synack, = syn_to(b, valid)
    child = inet_accept(ls)
    # the client's plain SYN retry (its SYN-ACK was lost) is answered by the child
    again, = syn_to(b, None, payload=b"")
    assert again.flags == "SA" and again.ack == 101 + len(REQ) and again.seq == synack.seq
    sent = run_until(b, 100.0)
    # RTO 1 s doubling from the SYN at 0.01 s; after TCP_SYNACK_RETRIES the child dies
    assert [round(t, 2) for t, _ in sent] == [1.01, 3.01, 7.01, 15.01, 31.01]
    assert all(s.flags == "SA" and s.ack == 101 + len(REQ) for _, s in sent)
    assert child.state == TcpState.CLOSE and child.sk_err == errno.ETIMEDOUT
