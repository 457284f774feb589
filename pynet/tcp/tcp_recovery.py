"""RACK loss detection (RFC 8985; Linux's net/ipv4/tcp_recovery.c).

A segment is lost when a segment sent after it has been delivered and more
than one RTT plus a reordering window has passed since it was sent. Time,
not a count of duplicate ACKs, decides: a lost retransmission, a lost tail
with one SACK above it, and a lost segment in a flight of two are all found
without waiting for the RTO. The state lives on the socket: rack_mstamp /
rack_end_seq (the most recently sent delivered segment), rack_rtt (its RTT),
rack_advanced (a new delivery since the last detection), reord_seen.
"""
from pynet.tcp.tcp import TCP_CA_Recovery, TCPCB_EVER_RETRANS, TCPCB_LOST, TCPCB_SACKED_ACKED, \
    TCPCB_SACKED_RETRANS, after


def tcp_rack_sent_after(t1, t2, seq1, seq2):
    """RFC 8985 §6.2 RACK_sent_after: sent later, or at the same time and
    higher in sequence (segments of one burst share a timestamp)."""
    return t1 > t2 or (t1 == t2 and after(seq1, seq2))


def tcp_rack_advance(sk, tcb):
    """RFC 8985 §6.2 step 2: a segment was delivered (cumulatively or by
    SACK); remember the latest-sent one. An ACK that came back faster than
    the minimum RTT after a retransmission acknowledges the original, so it
    says nothing about when the retransmission was delivered."""
    rtt = sk.tcp_mstamp - tcb.tx_time
    if tcb.sacked & TCPCB_EVER_RETRANS and sk.rtt_min is not None and rtt < sk.rtt_min:
        return
    sk.rack_advanced = True
    sk.rack_rtt = rtt
    if sk.rack_mstamp is None or tcp_rack_sent_after(tcb.tx_time, sk.rack_mstamp,
                                                     tcb.end_seq, sk.rack_end_seq):
        sk.rack_mstamp = tcb.tx_time
        sk.rack_end_seq = tcb.end_seq


def tcp_rack_reo_wnd(sk):
    """RFC 8985 §6.2 step 4: a quarter of the minimum RTT per step, bounded
    by SRTT; zero (dupthresh behaviour) while no reordering was ever seen
    and recovery is on or dupthresh segments are SACKed."""
    if not sk.reord_seen:
        if sk.ca_state >= TCP_CA_Recovery or sk.sacked_out >= sk.reordering:
            return 0.0
    return min((sk.rtt_min or 0.0) / 4 * sk.rack_reo_wnd_steps, sk.srtt or 0.0)


def tcp_rack_dsack_seen(sk):
    """RFC 8985 §6.2 step 4: a D-SACK says a retransmission was spurious,
    so the reordering window was too small: widen it a step (Linux's
    reo_wnd_steps, at most 255)."""
    sk.reord_seen = True
    sk.rack_reo_wnd_steps = min(sk.rack_reo_wnd_steps + 1, 255)


def tcp_mark_skb_lost(sk, tcb):
    """Linux's tcp_mark_skb_lost: a lost retransmission is to be sent again."""
    sacked = tcb.sacked
    if sacked & TCPCB_SACKED_ACKED:
        return
    if sacked & TCPCB_LOST:
        if sacked & TCPCB_SACKED_RETRANS:
            tcb.sacked &= ~TCPCB_SACKED_RETRANS
            sk.retrans_out -= tcb.pcount
            sk.stats["TCPLostRetransmit"] += 1
    else:
        tcb.sacked |= TCPCB_LOST
        sk.lost_out += tcb.pcount


def tcp_rack_detect_loss(sk):
    """RFC 8985 §6.2 step 5: mark lost every outstanding segment sent
    before the RACK segment whose deadline (send time + RACK RTT + reo_wnd)
    has passed. Returns the time left until the earliest remaining deadline
    (0.0: none), for the reordering timer."""
    if sk.rack_mstamp is None:
        return 0.0
    reo_wnd = tcp_rack_reo_wnd(sk)
    now = sk.tcp_mstamp
    rack_mstamp, rack_end_seq, rack_rtt = sk.rack_mstamp, sk.rack_end_seq, sk.rack_rtt
    timeout = 0.0
    for skb in sk.rtx_queue:
        tcb = skb.cb
        sacked = tcb.sacked
        if sacked & TCPCB_SACKED_ACKED:
            continue
        if sacked & TCPCB_LOST and not sacked & TCPCB_SACKED_RETRANS:
            continue                       # marked, not yet retransmitted
        if not tcp_rack_sent_after(rack_mstamp, tcb.tx_time, rack_end_seq, tcb.end_seq):
            continue                       # sent after the RACK segment: no verdict yet
        remaining = tcb.tx_time + rack_rtt + reo_wnd - now
        if remaining <= 1e-6:              # the clock's microsecond, as Linux counts
            tcp_mark_skb_lost(sk, tcb)
        elif remaining > timeout:
            timeout = remaining
    return timeout


def tcp_rack_mark_lost(sk):
    """Run detection after an ACK that delivered something new; returns
    the reordering timeout to arm (0.0: none)."""
    if not sk.rack_advanced:
        return 0.0
    sk.rack_advanced = False
    return tcp_rack_detect_loss(sk)
