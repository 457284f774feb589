"""RACK-TLP (RFC 8985) and Eifel undo (RFC 3522), segment by segment at
exact times on a fake clock."""
from tcpkit import A_IP, Host, client, run_until
from pynet.tcp.tcp import TCP_CA_Loss, TCP_CA_Open, TCP_NAGLE_OFF
from pynet.tcp.tcp_user import tcp_sendmsg

MSS = 1448


def sender(n):
    """A SACK connection (RTT 100 ms) that sent n segments at t=1.0."""
    a = Host(A_IP)
    sk, peer = client(a, sack_perm=True)
    sk.nonagle = TCP_NAGLE_OFF
    tcp_sendmsg(sk, bytes(n * MSS), 1.0)
    sent = a.take()
    assert len(sent) == n
    s = [(sk.iss + 1 + i * MSS) & 0xFFFFFFFF for i in range(n + 1)]
    return a, sk, peer, s, sent


def test_tail_loss_probe_then_rack_repairs_the_tail_without_rto():
    a, sk, peer, s, _ = sender(10)
    a.deliver(peer("A", ack=s[8] - sk.iss), 1.1)       # segments 8 and 9 lost
    assert a.take() == []
    # PTO = 2 * SRTT + 2 ms (two segments out), before the RTO (SRTT + 200 ms)
    (t, probe), = run_until(a, 1.35)
    assert abs(t - (1.1 + 2 * sk.srtt + 0.002)) < 1e-9 and probe.seq == s[9]
    assert sk.stats["TCPLossProbes"] == 1
    # the probe's SACK shows 8 missing; sent before the probe, over an RTT ago: lost
    a.deliver(peer("A", ack=s[8] - sk.iss, sack=((s[9], s[10]),)), t + 0.11)
    assert [x.seq for x in a.take()] == [s[8]]
    a.deliver(peer("A", ack=s[10] - sk.iss), 1.5)
    assert sk.packets_out == 0 and sk.stats["TCPTimeouts"] == 0


def test_rack_reordering_window_waits_a_quarter_rtt():
    a, sk, peer, s, _ = sender(10)
    a.deliver(peer("A", ack=s[0] - sk.iss, sack=((s[1], s[2]),)), 1.1)
    assert a.take() == []                              # one SACK: maybe reordering
    # deadline: sent at 1.0 + RACK RTT 0.1 + min_rtt / 4
    (t, rtx), = run_until(a, 1.2)
    assert abs(t - (1.0 + 0.1 + sk.rtt_min / 4)) < 1e-9 and rtx.seq == s[0]
    assert sk.in_recovery() and sk.stats["TCPTimeouts"] == 0


def rto_after_probe(a, s):
    """Nothing comes back: the loss probe (last segment), then the RTO
    (first segment) RTO after the probe."""
    (t1, probe), (t, rtx) = run_until(a, 1.9)
    assert (probe.seq, rtx.seq) == (s[-2], s[0])
    return t, rtx


def test_spurious_rto_is_undone_by_the_echoed_timestamp():
    a, sk, peer, s, sent = sender(4)
    cwnd, ssthresh = sk.snd_cwnd, sk.snd_ssthresh
    t, rtx = rto_after_probe(a, s)
    assert sk.ca_state == TCP_CA_Loss and sk.snd_cwnd == 1
    # the ACK for the originals comes late; it echoes their TSval, not the retransmission's
    a.deliver(peer("A", ack=s[4] - sk.iss, timestamp=(2000, sent[0].th.timestamp[0])), t + 0.01)
    assert sk.ca_state == TCP_CA_Open and sk.stats["TCPSpuriousRTOs"] == 1
    assert sk.snd_cwnd >= cwnd and sk.snd_ssthresh == ssthresh


def test_rto_answered_by_the_retransmission_is_not_undone():
    a, sk, peer, s, sent = sender(4)
    t, rtx = rto_after_probe(a, s)
    a.deliver(peer("A", ack=s[4] - sk.iss, timestamp=(2000, rtx.th.timestamp[0])), t + 0.1)
    assert sk.stats["TCPSpuriousRTOs"] == 0 and sk.snd_cwnd <= 2
