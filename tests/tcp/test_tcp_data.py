"""Data, ACKs, loss recovery and timers, segment by segment at exact times."""
import errno
import hashlib
import random

import pytest

from tcpkit import A_IP, B_IP, Host, client, link, run_until
from pynet.dev.netdevice import GSO_LEGACY_MAX_SIZE
from pynet.tcp.tcp import TCP_GSO_HEADROOM, TCP_NAGLE_OFF, TcpState
from pynet.tcp.tcp_ipv4 import tcp_v4_connect
from pynet.tcp.tcp_timer import tcp_set_keepalive
from pynet.tcp.tcp_user import inet_accept, inet_listen, tcp_close, tcp_recvmsg, tcp_sendmsg

MSS = 1448          # 1460 less the timestamp option
TSO_64K = GSO_LEGACY_MAX_SIZE - TCP_GSO_HEADROOM     # a TSO socket's super-segment payload


def test_delayed_ack_quick_acks_then_every_second_segment_then_timer():
    a = Host(A_IP)
    sk, peer = client(a)
    seg = bytes(MSS)
    off = 1
    t = 1.0
    for _ in range(16):                            # quick-ACK mode at the start
        a.deliver(peer("A", seq=off, payload=seg), t)
        off += MSS
        ack, = a.take()
        assert ack.ack == peer.iss + off
    a.deliver(peer("A", seq=off, payload=seg), 2.0)
    off += MSS
    assert a.take() == []                          # one full segment: the ACK waits
    a.run(2.039)
    assert a.take() == []
    a.run(2.040)                                   # delayed-ACK timer, 40 ms
    ack, = a.take()
    assert ack.ack == peer.iss + off
    a.deliver(peer("A", seq=off, payload=seg), 3.0)
    off += MSS
    assert a.take() == []
    a.deliver(peer("A", seq=off, payload=seg), 3.001)   # the second full segment: ACK now
    off += MSS
    ack, = a.take()
    assert ack.ack == peer.iss + off
    a.run(4.0)
    assert a.take() == []
    assert len(tcp_recvmsg(sk, 1 << 20, 4.0)) == 19 * MSS


def test_tso_super_segments_follow_cwnd():
    a = Host(A_IP, gso_max_size=TSO_64K)
    sk, peer = client(a, peer_wscale=7)
    assert tcp_sendmsg(sk, bytes(100_000), 1.0) == 100_000
    seg, = a.take()                                # IW10 as one GSO skb
    assert len(seg.payload) == 10 * MSS and seg.gso_size == MSS
    a.deliver(peer("A", ack=1 + 10 * MSS), 1.1)    # slow start: cwnd 20
    seg, = a.take()                                # 20 segments, still one skb
    assert len(seg.payload) == 20 * MSS and seg.gso_size == MSS
    assert seg.seq == sk.iss + 1 + 10 * MSS


def test_rto_backoff_on_data_then_recovery():
    a = Host(A_IP)
    sk, peer = client(a, rtt=0.1)                  # srtt 0.1, rttvar 0.05: RTO 0.3
    assert abs(sk.rto - 0.3) < 1e-9
    tcp_sendmsg(sk, b"x" * 100, 1.0)
    first, = a.take()
    sent = run_until(a, 6.0)
    assert all(s.seq == first.seq and s.payload == first.payload for _, s in sent)
    assert [t for t, _ in sent] == pytest.approx([1.3, 1.9, 3.1, 5.5])   # RFC 6298 §5.5
    assert sk.snd_cwnd == 1 and sk.snd_ssthresh == 5
    a.deliver(peer("A", ack=101), 6.0)
    assert sk.srtt == pytest.approx(0.1)           # Karn: no sample from a retransmission
    assert sk.packets_out == 0 and not sk.retransmit_timer.pending


def test_user_timeout_clamps_the_backed_off_rto():
    """TCP_USER_TIMEOUT (RFC 5482) fails the connection when the timeout has passed since
    the first retransmitted send, not at the next backed-off RTO (Linux clamps the RTO)."""
    a = Host(A_IP)
    sk, peer = client(a, rtt=0.1)                  # RTO 0.3
    sk.user_timeout = 1.0
    tcp_sendmsg(sk, b"x" * 100, 1.0)
    a.take()
    sent = run_until(a, 2.05)                      # unclamped, the next RTO is at 3.1
    assert [t for t, _ in sent] == pytest.approx([1.3, 1.9])
    assert sk.state == TcpState.CLOSE and sk.sk_err == errno.ETIMEDOUT


def test_third_dupack_fast_retransmit_limited_transmit_and_newreno_partial_ack():
    a = Host(A_IP)
    sk, peer = client(a, peer_win=65535)
    sk.nonagle = TCP_NAGLE_OFF
    tcp_sendmsg(sk, bytes(10 * MSS), 1.0)
    segs = a.take()
    assert len(segs) == 10 and all(len(s.payload) == MSS for s in segs)
    s = [sk.iss + 1 + i * MSS for i in range(16)]         # segment starts

    def ack(n, t, win=65535):
        a.deliver(peer("A", ack=s[n] - sk.iss, win=win), t)

    ack(1, 1.1)                                     # cwnd 11, 9 in flight
    assert a.take() == []
    tcp_sendmsg(sk, bytes(4 * MSS), 1.15)
    assert [x.seq for x in a.take()] == [s[10], s[11]]
    ack(1, 1.2)                                     # 1st dupACK: limited transmit (RFC 3042)
    assert [x.seq for x in a.take()] == [s[12]]
    ack(1, 1.21)                                    # 2nd dupACK
    assert [x.seq for x in a.take()] == [s[13]]
    assert sk.snd_cwnd == 11
    ack(1, 1.22)                                    # 3rd: fast retransmit of segment 1
    rtx, = a.take()
    assert rtx.seq == s[1] and len(rtx.payload) == MSS
    assert sk.snd_ssthresh == 5 and sk.snd_cwnd == 5 and sk.high_seq == s[14]
    ack(1, 1.23)
    assert a.take() == []
    ack(5, 1.3)                                     # partial ACK (RFC 6582): resend the next hole
    rtx, = a.take()
    assert rtx.seq == s[5]
    ack(14, 1.4)                                    # full ACK: recovery ends, cwnd = ssthresh
    assert sk.snd_cwnd == 5 and sk.in_recovery() is False and sk.packets_out == 0
    assert a.take() == []


def test_zero_window_probe_cadence_then_window_opens():
    a = Host(A_IP)
    sk, peer = client(a, peer_win=0, rtt=0.1)       # RTO 0.3
    tcp_sendmsg(sk, b"y" * 500, 1.0)
    assert a.take() == []                           # the window is zero: nothing may go
    probes = run_until(a, 10.0)
    assert all(s.seq == sk.iss and not s.payload for _, s in probes)  # one old byte, no data
    # the persist timer backs off like the RTO
    assert [t for t, _ in probes] == pytest.approx([1.3, 1.9, 3.1, 5.5])
    a.deliver(peer("A", win=65535), 10.0)
    data, = a.take()
    assert data.payload == b"y" * 500 and sk.backoff == 0


def test_out_of_order_queue_is_bounded_and_gap_fill_acks_at_once():
    a = Host(A_IP)
    sk, peer = client(a)
    sk.ofo_limit = 4
    for i in range(2, 8):                           # segment 1 missing
        a.deliver(peer("A", seq=1 + (i - 1) * 100, payload=bytes([i]) * 100), 1.0)
    dups = a.take()
    assert [d.ack for d in dups] == [peer.iss + 1] * 6    # each out-of-order segment: dupACK
    assert len(sk.out_of_order_queue) == 4 and sk.ofo_drops == 2
    a.deliver(peer("A", seq=1, payload=bytes([1]) * 100), 1.1)
    ack, = a.take()
    assert ack.ack == peer.iss + 1 + 500            # holes 6 and 7 were dropped
    assert tcp_recvmsg(sk, 1000, 1.1) == b"".join(bytes([i]) * 100 for i in range(1, 6))
    assert sk.sk_rmem_alloc == 0 and not sk.out_of_order_queue


def test_paws_drops_old_timestamp():
    a = Host(A_IP)
    sk, peer = client(a)
    a.deliver(peer("A", payload=b"new", timestamp=(2000, 0)), 1.0)
    a.take()
    a.deliver(peer("A", seq=4, payload=b"old", timestamp=(1500, 0)), 1.1)
    dup, = a.take()
    assert dup.ack == peer.iss + 4 and sk.stats["PAWSDrop"] == 1
    assert tcp_recvmsg(sk, 100, 1.1) == b"new"


def test_rst_in_window_gets_challenge_ack_exact_rst_resets():
    a = Host(A_IP)
    sk, peer = client(a)
    a.deliver(peer("R", seq=100), 1.0)              # in window, not rcv_nxt (RFC 5961 §3.2)
    ch, = a.take()
    assert ch.flags == "A" and ch.seq == sk.iss + 1 and ch.ack == peer.iss + 1
    a.deliver(peer("S", seq=50), 1.1)               # SYN while established (RFC 5961 §4)
    assert a.take() == []                           # rate limit: one per 500 ms
    a.deliver(peer("S", seq=50), 1.6)
    assert [x.flags for x in a.take()] == ["A"]
    a.deliver(peer("R", seq=1 << 30), 1.7)          # out of window: ignored
    assert a.take() == [] and sk.state == TcpState.ESTABLISHED
    a.deliver(peer("R", seq=1), 1.8)
    assert sk.state == TcpState.CLOSE and sk.sk_err == errno.ECONNRESET
    assert not a.hashinfo.ehash


def test_keepalive_probes_then_etimedout():
    a = Host(A_IP)
    sk, peer = client(a, keepalive_time=10.0, keepalive_intvl=2.0, keepalive_probes=3)
    tcp_set_keepalive(sk, True)
    sent = []
    t = 0.1
    while t < 30:
        t = round(t + 0.5, 1)
        a.run(t)
        sent += [(t, s.flags, s.seq - sk.iss) for s in a.take()]
        if t == 12.1:
            a.deliver(peer("A"), t)                 # the peer answers the first two probes
    assert sent[:2] == [(10.1, "A", 0), (12.1, "A", 0)]
    # after the answer at 12.1: idle again 10 s, then three unanswered probes and a RST
    assert sent[2:] == [(22.1, "A", 0), (24.1, "A", 0), (26.1, "A", 0), (28.1, "RA", 1)]
    assert sk.state == TcpState.CLOSE and sk.sk_err == errno.ETIMEDOUT


def test_time_wait_acks_retransmitted_fin_and_restarts():
    a = Host(A_IP)
    sk, peer = client(a)
    tcp_close(sk, 1.0)
    fin, = a.take()
    assert fin.flags == "FA" and sk.state == TcpState.FIN_WAIT1
    a.deliver(peer("FA", ack=2), 1.1)               # ACK of our FIN with the peer's FIN
    ack, = a.take()
    # the full socket is done; a TIME_WAIT sock holds the 4-tuple (tcp_time_wait)
    tw = a.tw(sk)
    assert ack.ack == peer.iss + 2 and sk.state == TcpState.CLOSE
    assert tw.state == TcpState.TIME_WAIT and tw.rcv_nxt == peer.iss + 2
    a.deliver(peer("FA", ack=2), 30.0)              # our ACK was lost: the FIN again
    ack2, = a.take()
    assert (ack2.flags, ack2.seq, ack2.ack, ack2.win) == ("A", ack.seq, ack.ack, ack.win)
    assert ack2.th.timestamp[1] == ack.th.timestamp[1]   # TS.Recent still echoed
    a.run(89.9)
    assert a.tw(sk) is tw
    a.run(90.0)
    assert not a.hashinfo.ehash and not tw.timer.pending


def test_simultaneous_close():
    a, b = Host(A_IP), Host(B_IP)
    ls = b.sock()
    inet_listen(ls, b.hashinfo, B_IP, 80, 4)
    c = a.sock()
    tcp_v4_connect(c, B_IP, 80, 0.0)
    link(a, b, 0.01)
    s = inet_accept(ls)
    tcp_close(c, 1.0)
    tcp_close(s, 1.0)
    fa, = a.take()
    fb, = b.take()
    a.deliver(fb, 1.01)
    b.deliver(fa, 1.01)
    assert c.state == s.state == TcpState.CLOSING
    link(a, b, 1.02)
    assert c.state == s.state == TcpState.CLOSE
    assert a.tw(c).state == b.tw(s).state == TcpState.TIME_WAIT


def test_nagle_holds_small_segment_until_ack():
    a = Host(A_IP)
    sk, peer = client(a)
    tcp_sendmsg(sk, b"a", 1.0)
    assert len(a.take()) == 1
    tcp_sendmsg(sk, b"b", 1.01)
    tcp_sendmsg(sk, b"c", 1.02)
    assert a.take() == []                           # a small segment is unacknowledged
    a.deliver(peer("A", ack=2), 1.1)
    seg, = a.take()
    assert seg.payload == b"bc"


@pytest.mark.parametrize("gso,loss", [(0, 0.0), (TSO_64K, 0.0), (0, 0.03),
                                      (TSO_64K, 0.03)])
def test_transfer_over_lossy_link_sha256(gso, loss):
    rnd = random.Random(7)
    a, b = Host(A_IP, gso_max_size=gso), Host(B_IP, gso_max_size=gso)
    ls = b.sock()
    inet_listen(ls, b.hashinfo, B_IP, 80, 4)
    c = a.sock()
    tcp_v4_connect(c, B_IP, 80, 0.0)
    link(a, b, 0.01)
    s = inet_accept(ls)
    data = rnd.randbytes(2_000_000)
    t, sent, got = 0.01, 0, []
    while t < 120:
        t += 0.001
        if sent < len(data):
            sent += tcp_sendmsg(c, data[sent:sent + (1 << 20)], t)
            if sent == len(data):
                tcp_close(c, t)
        link(a, b, t, drop=lambda seg: rnd.random() < loss)
        a.run(t)
        b.run(t)
        try:
            d = tcp_recvmsg(s, 1 << 22, t)
        except BlockingIOError:
            continue
        if not d:
            break
        got.append(d)
    assert hashlib.sha256(b"".join(got)).hexdigest() == hashlib.sha256(data).hexdigest()
    assert c.state == TcpState.FIN_WAIT2 and s.state == TcpState.CLOSE_WAIT
    if loss:
        assert c.stats["RetransSegs"] > 0


def test_sack_blocks_in_our_acks_newest_first():
    a = Host(A_IP)
    sk, peer = client(a, sack_perm=True)
    assert sk.rx_opt.sack_ok
    base = peer.iss + 1
    a.deliver(peer("A", seq=201, payload=b"c" * 100), 1.0)      # hole at 1..200
    a.deliver(peer("A", seq=501, payload=b"f" * 100), 1.0)      # hole at 301..500
    a.deliver(peer("A", seq=301, payload=b"d" * 100), 1.0)      # extends the first block
    acks = a.take()
    assert [x.th.sack for x in acks] == [
        ((base + 200, base + 300),),
        ((base + 500, base + 600), (base + 200, base + 300)),
        ((base + 200, base + 400), (base + 500, base + 600)),
    ]
    a.deliver(peer("A", seq=1, payload=b"a" * 200), 1.1)        # first hole filled
    ack, = a.take()
    assert ack.ack == base + 400 and ack.th.sack == ((base + 500, base + 600),)


def test_sack_recovery_retransmits_only_the_holes():
    a = Host(A_IP)
    sk, peer = client(a, peer_win=65535, sack_perm=True)
    sk.nonagle = TCP_NAGLE_OFF
    tcp_sendmsg(sk, bytes(10 * MSS), 1.0)
    assert len(a.take()) == 10
    s = [sk.iss + 1 + i * MSS for i in range(11)]

    def ack(n, t, *blocks):
        a.deliver(peer("A", ack=s[n] - sk.iss,
                       sack=tuple((s[x] & 0xFFFFFFFF, s[y] & 0xFFFFFFFF) for x, y in blocks)), t)

    ack(0, 1.1, (1, 2))                             # segment 0 lost, 1 SACKed
    ack(0, 1.11, (1, 3))
    assert a.take() == [] and sk.sacked_out == 2
    ack(0, 1.12, (1, 3), (4, 5))                    # 3 SACKed (segment 3 lost too)
    rtx, = a.take()                                 # fast retransmit of 0 only
    assert rtx.seq == s[0] and sk.in_recovery() and sk.snd_cwnd == 5
    ack(0, 1.13, (1, 3), (4, 7))                    # 3 now has 3 SACKed above: lost, resent
    assert [x.seq for x in a.take()] == [s[3]]
    ack(3, 1.2, (4, 7))                             # partial ACK up to the second hole
    assert a.take() == [] and sk.in_recovery()
    ack(10, 1.3)
    assert not sk.in_recovery() and sk.packets_out == 0 and sk.sacked_out == 0


def test_sack_detects_a_lost_retransmission_without_waiting_for_rto():
    a = Host(A_IP)
    sk, peer = client(a, peer_win=65535, sack_perm=True)
    sk.nonagle = TCP_NAGLE_OFF
    tcp_sendmsg(sk, bytes(10 * MSS), 1.0)
    a.take()
    s = [sk.iss + 1 + i * MSS for i in range(13)]

    def sack(t, end):
        a.deliver(peer("A", ack=1, sack=((s[1], s[end]),)), t)

    sack(1.1, 4)                                    # 1..3 SACKed: retransmit 0
    assert [x.seq for x in a.take()] == [s[0]]
    sack(1.11, 10)                                  # the pipe empties
    tcp_sendmsg(sk, bytes(2 * MSS), 1.12)           # new data goes after the retransmission
    assert [x.seq for x in a.take()] == [s[10], s[11]]
    sack(1.13, 12)                                  # it arrived, segment 0's retransmission did not
    assert [x.seq for x in a.take()] == [s[0]]
    assert sk.stats["TCPTimeouts"] == 0 and sk.stats["RetransSegs"] == 2
