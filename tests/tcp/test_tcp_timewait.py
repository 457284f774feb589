"""A SYN that finds a TIME_WAIT socket (RFC 6191, Linux's TCP_TW_SYN): a
provably new one reopens the 4-tuple through the listener with an ISN past
the old connection; anything else keeps TIME_WAIT's answer."""
import gc
import weakref

from tcpkit import A_IP, B_IP, Host, Seg
from pynet.tcp.sock import TcpTimewaitSock
from pynet.tcp.tcp import TcpState
from pynet.tcp.tcp_user import inet_accept, inet_listen, tcp_close, tcp_recvmsg, tcp_sendmsg

PEER_ISS = 100000


def server_in_time_wait(ts=True):
    """A listener on A:80 and a served connection from B:4000 that A closed
    first, so A holds it in TIME_WAIT. Returns (host, listener, tw)."""
    a = Host(A_IP)
    ls = a.sock()
    inet_listen(ls, a.hashinfo, A_IP, 80, 8)
    opts = {"timestamp": (100, 0)} if ts else {}
    a.deliver(Seg("S", PEER_ISS, 0, mss=1460, **opts), 0.0)
    synack, = a.take()
    tsecr = synack.th.timestamp[0] if ts else 0

    def topts(tsval):
        return {"timestamp": (tsval, tsecr)} if ts else {}

    a.deliver(Seg("PA", PEER_ISS + 1, synack.seq + 1, payload=b"x", **topts(101)), 0.01)
    sk = inet_accept(ls)
    assert tcp_recvmsg(sk, 1, 0.01) == b"x"
    tcp_sendmsg(sk, b"x", 0.01)
    tcp_close(sk, 0.01)
    assert [s.flags for s in a.take()][-1] == "FA"
    a.deliver(Seg("FA", PEER_ISS + 2, sk.snd_nxt, **topts(102)), 0.02)
    assert sk.state == TcpState.CLOSE
    tw = a.tw(sk)
    assert type(tw) is TcpTimewaitSock and tw.state == TcpState.TIME_WAIT
    assert (tw.snd_nxt, tw.rcv_nxt) == (sk.snd_nxt, PEER_ISS + 3)
    assert [s.flags for s in a.take()] == ["A"]
    return a, ls, tw


def test_new_syn_after_rcv_nxt_reopens_through_listener_with_isn_past_old():
    a, ls, tw = server_in_time_wait(ts=False)
    old_snd_nxt = tw.snd_nxt
    a.deliver(Seg("S", PEER_ISS + 100000, 0, mss=1460), 1.0)
    synack, = a.take()
    assert not tw.timer.pending and a.hashinfo.ehash == {}
    assert synack.flags == "SA" and synack.ack == PEER_ISS + 100001
    assert synack.seq == (old_snd_nxt + 65535 + 2) & 0xFFFFFFFF
    a.deliver(Seg("A", PEER_ISS + 100001, synack.seq + 1), 1.01)
    child = inet_accept(ls)
    assert child.state == TcpState.ESTABLISHED and child.iss == synack.seq
    a.run(200.0)
    assert a.take() == [] and child.state == TcpState.ESTABLISHED   # no old timer fired


def test_newer_tsval_reopens_even_with_an_old_seq():
    a, ls, tw = server_in_time_wait()
    a.deliver(Seg("S", PEER_ISS - 5000, 0, mss=1460, timestamp=(103, 0)), 1.0)
    synack, = a.take()
    assert synack.flags == "SA" and a.hashinfo.ehash == {}
    assert synack.th.timestamp[1] == 103


def test_syns_that_are_not_provably_new_keep_time_wait():
    a, ls, tw = server_in_time_wait()
    rcv_nxt, snd_nxt = tw.rcv_nxt, tw.snd_nxt
    t = 1.0
    for seg in (
        Seg("S", PEER_ISS + 2, 0, timestamp=(102, 0)),        # seq at rcv_nxt, same TSval
        Seg("S", PEER_ISS - 7, 0, timestamp=(90, 0)),         # old seq, old TSval
        Seg("S", PEER_ISS + 9999, 0, timestamp=(50, 0)),      # new seq, but PAWS rejects
        Seg("SA", PEER_ISS + 9999, 1, timestamp=(200, 0)),    # SYN-ACK is never a new SYN
        Seg("SR", PEER_ISS + 9999, 0, timestamp=(200, 0)),
    ):
        a.deliver(seg, t)
        sent = a.take()
        assert list(a.hashinfo.ehash.values()) == [tw] and not ls.syn_queue
        # TIME_WAIT's own answer: at most an ACK of what it holds (RFC 5961 §4)
        assert all((s.flags, s.seq, s.ack) == ("A", snd_nxt, rcv_nxt) for s in sent)
        t += 1.0
    assert len(a.hashinfo.ehash) == 1


def test_new_syn_without_listener_gets_time_wait_answer():
    a, ls, tw = server_in_time_wait(ts=False)
    tcp_close(ls, 0.5)
    a.deliver(Seg("S", PEER_ISS + 100000, 0), 1.0)
    sent = a.take()
    assert [s.flags for s in sent] == ["A"] and sent[0].ack == tw.rcv_nxt
    assert list(a.hashinfo.ehash.values()) == [tw]



def test_finished_connections_leave_no_cycles_for_the_collector():
    """Socket timers hold their socket weakly and a request sock lets go of
    its timer when it leaves the SYN queue, so the socket a new SYN took out
    of TIME_WAIT and the request sock of the new connection are freed by
    reference counting, not by the cycle collector."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        a, ls, tw = server_in_time_wait(ts=False)
        ref = weakref.ref(tw)
        del tw
        a.deliver(Seg("S", PEER_ISS + 100000, 0, mss=1460), 1.0)   # TCP_TW_SYN
        assert ref() is None
        synack, = a.take()
        a.deliver(Seg("A", PEER_ISS + 100001, synack.seq + 1), 1.01)
        child = inet_accept(ls)
        assert child.state == TcpState.ESTABLISHED
        gc.collect()
        left = {type(o).__name__ for o in gc.garbage}
        assert not left & {"TcpSock", "TcpTimewaitSock", "TcpRequestSock", "Timer"}, left
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_time_wait_sock_replaces_the_full_socket():
    """tcp_time_wait: the full socket leaves the tables and is freed once its
    user lets go; only the small TIME_WAIT sock (one timer) remains, and
    `ss` lists it."""
    from types import SimpleNamespace
    from pynet.cli.views import ss
    a = Host(A_IP)
    ls = a.sock()
    inet_listen(ls, a.hashinfo, A_IP, 80, 8)
    a.deliver(Seg("S", PEER_ISS, 0, mss=1460), 0.0)
    synack, = a.take()
    a.deliver(Seg("A", PEER_ISS + 1, synack.seq + 1), 0.01)
    sk = inet_accept(ls)
    ref = weakref.ref(sk)
    tcp_close(sk, 0.02)
    a.take()
    timers_before = len(a.timers)
    a.deliver(Seg("FA", PEER_ISS + 1, sk.snd_nxt), 0.03)
    tw = a.tw(sk)
    del sk
    assert ref() is None                       # the full socket is gone at once
    assert type(tw) is TcpTimewaitSock and tw.timer.pending
    assert len(a.timers) <= timers_before      # one timer for the TIME_WAIT sock
    rows = [r for r in ss(SimpleNamespace(tcp_hashinfo=a.hashinfo)) if r["state"] == "TIME-WAIT"]
    assert [(r["local"], r["peer"], r["info"]) for r in rows] == \
        [("198.18.0.1:80", "198.18.0.2:4000", None)]


def test_time_wait_rst_exact_hit_ends_it_in_window_rst_is_challenged():
    """RFC 5961 §3.2 in TIME_WAIT: a RST at rcv_nxt ends it at once, one
    elsewhere in the window gets a challenge ACK, one outside is dropped."""
    a, ls, tw = server_in_time_wait(ts=False)
    a.deliver(Seg("R", tw.rcv_nxt + 10, 0), 1.0)
    sent = a.take()
    assert [(s.flags, s.seq, s.ack) for s in sent] == [("A", tw.snd_nxt, tw.rcv_nxt)]
    assert list(a.hashinfo.ehash.values()) == [tw]
    a.deliver(Seg("R", tw.rcv_nxt + 10_000_000, 0), 2.0)
    assert a.take() == [] and list(a.hashinfo.ehash.values()) == [tw]
    a.deliver(Seg("R", tw.rcv_nxt, 0), 3.0)
    assert a.take() == [] and a.hashinfo.ehash == {} and not tw.timer.pending
    a.deliver(Seg("A", tw.rcv_nxt, tw.snd_nxt), 4.0)
    rst, = a.take()                            # nobody holds the 4-tuple now
    assert rst.flags == "R"


def test_time_wait_answers_old_duplicates_with_its_ack_rate_limited():
    """PAWS (RFC 7323 §5.3) and the sequence test in TIME_WAIT: an old
    duplicate gets the ACK of what the connection held, at most one per
    500 ms for segments without data."""
    a, ls, tw = server_in_time_wait()
    a.deliver(Seg("A", PEER_ISS + 1, tw.snd_nxt, timestamp=(50, 0)), 1.0)   # PAWS
    old, = a.take()
    assert (old.flags, old.seq, old.ack) == ("A", tw.snd_nxt, tw.rcv_nxt)
    assert old.th.timestamp[1] == 102          # TS.Recent of the peer's FIN
    a.deliver(Seg("A", PEER_ISS + 1, tw.snd_nxt, timestamp=(51, 0)), 1.1)
    assert a.take() == []                      # rate limited
    a.deliver(Seg("A", tw.rcv_nxt, tw.snd_nxt, timestamp=(104, 0)), 1.2)
    assert a.take() == []                      # a bare ACK at rcv_nxt needs no answer
    a.deliver(Seg("FA", PEER_ISS + 2, tw.snd_nxt, timestamp=(105, 0)), 1.3)
    fin_ack, = a.take()                        # a retransmitted FIN is never rate limited
    assert (fin_ack.flags, fin_ack.ack) == ("A", tw.rcv_nxt)
    assert tw.timer.expires == 1.3 + 60.0      # and restarts TIME_WAIT (RFC 9293 §3.10.7.4)


def test_icmp_error_for_a_time_wait_tuple_is_ignored():
    from pynet.tcp.tcp_ipv4 import tcp_v4_err
    from pynet.skbuff import SKB
    from pynet.wire.icmp import ICMP_DEST_UNREACH
    a, ls, tw = server_in_time_wait(ts=False)
    quoted = bytearray(28)
    quoted[0] = 0x45
    quoted[12:16] = A_IP.to_bytes(4, "big")
    quoted[16:20] = B_IP.to_bytes(4, "big")
    quoted[20:22] = (80).to_bytes(2, "big")
    quoted[22:24] = (4000).to_bytes(2, "big")
    quoted[24:28] = tw.snd_nxt.to_bytes(4, "big")
    skb = SKB(len(quoted))
    skb.put_data(bytes(quoted))
    tcp_v4_err(a.hashinfo, skb, ICMP_DEST_UNREACH, 1, 0)
    assert list(a.hashinfo.ehash.values()) == [tw] and tw.timer.pending
