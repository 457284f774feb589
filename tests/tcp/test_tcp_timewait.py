"""A SYN that finds a TIME_WAIT socket (RFC 6191, Linux's TCP_TW_SYN): a
provably new one reopens the 4-tuple through the listener with an ISN past
the old connection; anything else keeps TIME_WAIT's answer."""
import gc
import weakref

from tcpkit import A_IP, Host, Seg
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
    tw = inet_accept(ls)
    assert tcp_recvmsg(tw, 1, 0.01) == b"x"
    tcp_sendmsg(tw, b"x", 0.01)
    tcp_close(tw, 0.01)
    assert [s.flags for s in a.take()][-1] == "FA"
    a.deliver(Seg("FA", PEER_ISS + 2, tw.snd_nxt, **topts(102)), 0.02)
    assert tw.state == TcpState.TIME_WAIT
    assert [s.flags for s in a.take()] == ["A"]
    return a, ls, tw


def test_new_syn_after_rcv_nxt_reopens_through_listener_with_isn_past_old():
    a, ls, tw = server_in_time_wait(ts=False)
    old_snd_nxt = tw.snd_nxt
    a.deliver(Seg("S", PEER_ISS + 100000, 0, mss=1460), 1.0)
    synack, = a.take()
    assert tw.state == TcpState.CLOSE and a.hashinfo.ehash == {}
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
    assert synack.flags == "SA" and tw.state == TcpState.CLOSE
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
        assert tw.state == TcpState.TIME_WAIT and not ls.syn_queue
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
    assert tw.state == TcpState.TIME_WAIT



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
        assert not left & {"TcpSock", "TcpRequestSock", "Timer"}, left
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
