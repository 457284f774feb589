"""Receiving (Linux's net/ipv4/tcp_input.c): RFC 9293 §3.10.7 "SEGMENT
ARRIVES" for every state, ACK processing with RTT estimation and loss
recovery, and in-order delivery with a bounded out-of-order queue.

Every function takes a segment whose TCP_SKB_CB (skb.cb) tcp_v4_rcv has
filled and whose data starts at the payload; the time is sk.tcp_mstamp.
"""
import bisect
import errno

from pynet.neighbour import dst_confirm_neigh
from pynet.skbuff import SKB
from pynet.tcp import fastopen
from pynet.tcp import tcp_output as out
from pynet.tcp.sock import TcpTimewaitSock, inet_twsk_kill
from pynet.tcp.tcp_recovery import (
    tcp_rack_advance, tcp_rack_detect_loss, tcp_rack_dsack_seen, tcp_rack_mark_lost,
)
from pynet.tcp.tcp import (
    RCV_SHUTDOWN, SEND_SHUTDOWN, TCP_CA_Disorder, TCP_CA_Loss, TCP_CA_Open, TCP_CA_Recovery,
    TCP_DELACK_MIN, TCP_INVALID_RATELIMIT, TCP_MAX_QUICKACKS, TCP_MAX_WSCALE, TCP_MSS_DEFAULT,
    TCP_PAWS_24DAYS, TCP_RTO_MAX, TCP_RTO_MIN, TCP_TIMEOUT_FALLBACK, TCP_TIMEWAIT_LEN,
    TCP_INIT_CWND, TCPCB_EVER_RETRANS, TCPCB_LOST, TCPCB_SACKED_ACKED, TCPCB_SACKED_RETRANS, TCPHDR_ACK, TCPHDR_FIN,
    TCPHDR_PSH, TCPHDR_RST, TCPHDR_SYN, TcpState, after, before, between, seq_add,
)

_S = TcpState
_CLOCK_G = 0.001      # RFC 6298 §2: the clock granularity G (the TSval clock ticks in ms)
SKB_TRUESIZE_OVERHEAD = SKB(0).truesize   # what an skb costs beyond its buffer
TCP_RCV_SMALL = 2048                      # buffer for small payloads copied out of big ones
TCP_COLLAPSE_SLACK = 256                  # spare buffer bytes worth a copy once rcvbuf is full


# -- RTT and RTO (RFC 6298) ----------------------------------------------------
def tcp_rtt_estimator(sk, rtt):
    """RFC 6298 §2.2/2.3 with alpha 1/8, beta 1/4."""
    if sk.srtt is None:
        sk.srtt = rtt
        sk.rttvar = rtt / 2
    else:
        sk.rttvar = 0.75 * sk.rttvar + 0.25 * abs(sk.srtt - rtt)
        sk.srtt = 0.875 * sk.srtt + 0.125 * rtt


def tcp_set_rto(sk):
    """RFC 6298 §2.4 with Linux's floor on the variance term, not on the
    sum (tcp_set_rto: rttvar >= tcp_rto_min): RTO >= SRTT + 200 ms, so an
    ACK the peer delays by up to its 200 ms maximum (TCP_DELACK_MAX) does
    not cause a spurious timeout. Ceiling 120 s."""
    sk.rto = min(sk.srtt + max(_CLOCK_G, 4 * sk.rttvar, TCP_RTO_MIN), TCP_RTO_MAX)


def tcp_ack_update_rtt(sk, seq_rtt, tsecr):
    """Take one RTT sample: from the send time of never-retransmitted data
    (Karn's rule), else from the echoed timestamp (RFC 7323 §4)."""
    if seq_rtt is None and tsecr:
        seq_rtt = ((sk.tcp_time_stamp() - tsecr) & 0xFFFFFFFF) / 1000.0
        if seq_rtt > TCP_RTO_MAX:          # an echo we never sent
            seq_rtt = None
    if seq_rtt is None:
        return None
    if sk.rtt_min is None or seq_rtt < sk.rtt_min:
        sk.rtt_min = seq_rtt
    tcp_rtt_estimator(sk, seq_rtt)
    tcp_set_rto(sk)
    sk.backoff = 0          # RFC 6298 §5.7: a fresh sample ends the backoff
    return seq_rtt


# -- connection end ------------------------------------------------------------------
def tcp_set_state(sk, state):
    sk.state = state


def tcp_done(sk):
    """The connection is over: stop timers, drop what can no longer be sent,
    leave the tables. Data already received stays readable."""
    tcp_set_state(sk, _S.CLOSE)
    sk.sk_shutdown = RCV_SHUTDOWN | SEND_SHUTDOWN
    out.inet_csk_clear_xmit_timer(sk)
    sk.delack_timer.delete()
    sk.keepalive_timer.delete()
    sk.write_queue.clear()
    sk.rtx_queue.clear()
    sk.packets_out = sk.retrans_out = sk.lost_out = sk.sacked_out = 0
    sk.sk_wmem_queued = 0
    sk.out_of_order_queue.clear()
    if sk.hashinfo is not None:
        sk.hashinfo.unhash(sk)
    sk.sk_state_change(sk)


def tcp_reset(sk):
    """An acceptable RST arrived (RFC 9293 §3.10.7.4 second check)."""
    if sk.state == _S.SYN_SENT:
        sk.sk_err = errno.ECONNREFUSED
    elif sk.state == _S.CLOSE_WAIT:
        sk.sk_err = errno.EPIPE
    else:
        sk.sk_err = errno.ECONNRESET
    tcp_done(sk)
    sk.sk_error_report(sk)


def tcp_write_err(sk):
    sk.sk_err = errno.ETIMEDOUT
    sk.sk_error_report(sk)
    tcp_done(sk)


def tcp_time_wait(sk):
    """Enter TIME_WAIT (RFC 9293 §3.6): linger to answer a lost last ACK's
    retransmitted FIN, then vanish. Linux waits 60 s, not 2*MSL. As in
    Linux, a small TcpTimewaitSock takes the socket's place in the tables
    (tcp_minisocks.tcp_timewait_state_process answers for it) and the full
    socket is done at once."""
    if sk.ack_sched:
        out.tcp_send_ack(sk)               # the FIN that brought us here (tcp_fin)
    hashinfo = sk.hashinfo
    tw = TcpTimewaitSock(sk, sk.timers, inet_twsk_kill) if hashinfo is not None else None
    tcp_done(sk)
    if tw is not None:
        hashinfo.hash(tw)                  # inet_twsk_hashdance
        tw.timer.mod(tw.tcp_mstamp + TCP_TIMEWAIT_LEN)


# -- rate-limited replies ---------------------------------------------------------------
def tcp_oow_rate_limited(sk, skb):
    """One reply per 500 ms to pure ACKs and SYNs that were out of window,
    so two stacks cannot ping-pong ACKs forever (Linux's tcp_invalid_ratelimit)."""
    tcb = skb.cb
    if tcb.seq != tcb.end_seq and not tcb.tcp_flags & TCPHDR_SYN:
        return False
    return __tcp_oow_rate_limited(sk)


def __tcp_oow_rate_limited(sk):
    now = sk.tcp_mstamp
    if sk.last_oow_ack_time is not None and now - sk.last_oow_ack_time < TCP_INVALID_RATELIMIT:
        return True
    sk.last_oow_ack_time = now
    return False


def tcp_send_dupack(sk, skb):
    if not tcp_oow_rate_limited(sk, skb):
        out.tcp_send_ack(sk)


def tcp_send_challenge_ack(sk, skb):
    """RFC 5961 §3.2/§4.2/§5.2: answer a suspicious RST, SYN or ACK with an
    ACK the true peer can act on, rate limited."""
    if __tcp_oow_rate_limited(sk):
        return
    sk.stats["ChallengeACK"] += 1
    out.tcp_send_ack(sk)


# -- options ---------------------------------------------------------------------------
def tcp_parse_syn_options(sk, tcb):
    """Adopt what the peer's SYN offered, where we offered it too."""
    ro = sk.rx_opt
    ro.mss_clamp = tcb.mss if tcb.mss else TCP_MSS_DEFAULT   # RFC 9293 §3.7.1
    ro.sack_ok = bool(tcb.sack_ok) and sk.sack_enabled
    if tcb.wscale is not None and sk.wscale_enabled:
        ro.wscale_ok = True
        ro.snd_wscale = min(tcb.wscale, TCP_MAX_WSCALE)      # RFC 7323 §2.3
    else:
        ro.wscale_ok = False
        ro.snd_wscale = 0
        ro.rcv_wscale = 0          # RFC 7323 §2.2: both sides or neither
        sk.rcv_wnd = min(sk.rcv_wnd, 65535)
    if tcb.tsval is not None and sk.tstamp_enabled:
        ro.tstamp_ok = True
        ro.ts_recent = tcb.tsval
        ro.ts_recent_stamp = sk.tcp_mstamp
    else:
        ro.tstamp_ok = False


def tcp_paws_discard(sk, tcb):
    """RFC 7323 §5.3: a TSval older than TS.Recent marks an old duplicate,
    unless TS.Recent itself is over 24 days old (§5.5)."""
    ro = sk.rx_opt
    if not ro.tstamp_ok or tcb.tsval is None or ro.ts_recent_stamp is None:
        return False
    if ((tcb.tsval - ro.ts_recent) & 0xFFFFFFFF) <= 0x7FFFFFFF:
        return False
    return sk.tcp_mstamp - ro.ts_recent_stamp < TCP_PAWS_24DAYS


def tcp_replace_ts_recent(sk, tcb):
    """RFC 7323 §4.3: remember the TSval of the segment that holds
    Last.ACK.sent (rcv_wup), so the echo measures the right RTT."""
    ro = sk.rx_opt
    if ro.tstamp_ok and tcb.tsval is not None and not after(tcb.seq, sk.rcv_wup):
        if ((tcb.tsval - ro.ts_recent) & 0xFFFFFFFF) <= 0x7FFFFFFF or ro.ts_recent_stamp is None:
            ro.ts_recent = tcb.tsval
            ro.ts_recent_stamp = sk.tcp_mstamp


# -- acceptability (RFC 9293 §3.10.7.4) ------------------------------------------------------
def tcp_sequence(sk, tcb):
    """The four-case acceptability test. With a zero window a segment at
    rcv_nxt passes, so its ACK and RST are still heard; its data is dropped
    later (the RFC's "special allowance")."""
    seq = tcb.seq
    seg_len = (tcb.end_seq - seq) & 0xFFFFFFFF
    wnd = sk.receive_window()
    rcv_nxt = sk.rcv_nxt
    if wnd == 0:
        return seq == rcv_nxt
    last = seq_add(rcv_nxt, wnd - 1)
    if seg_len == 0:
        return between(seq, rcv_nxt, last)
    return between(seq, rcv_nxt, last) or between(seq_add(tcb.end_seq, -1), rcv_nxt, last)


def tcp_validate_incoming(sk, skb):
    """PAWS, the sequence test, RST and SYN checks; False drops the segment."""
    tcb = skb.cb
    flags = tcb.tcp_flags
    if tcp_paws_discard(sk, tcb) and not flags & TCPHDR_RST:
        sk.stats["PAWSDrop"] += 1
        tcp_send_dupack(sk, skb)
        return False
    if not tcp_sequence(sk, tcb):
        if not flags & TCPHDR_RST:
            tcp_send_dupack(sk, skb)
        return False
    if flags & TCPHDR_RST:
        # RFC 5961 §3.2: only an exact hit resets; in window is challenged
        if tcb.seq == sk.rcv_nxt:
            tcp_reset(sk)
        else:
            tcp_send_challenge_ack(sk, skb)
        return False
    tcp_replace_ts_recent(sk, tcb)
    if flags & TCPHDR_SYN:
        # RFC 5961 §4.2: a SYN in a synchronized state is answered, never obeyed
        tcp_send_challenge_ack(sk, skb)
        return False
    return True


# -- ACK processing ------------------------------------------------------------------------
def tcp_may_update_window(sk, ack, ack_seq, nwin):
    """RFC 9293 §3.10.7.4: only a newer segment updates the window (snd_wl1/wl2)."""
    return (after(ack, sk.snd_una) or after(ack_seq, sk.snd_wl1) or
            (ack_seq == sk.snd_wl1 and nwin > sk.snd_wnd))


def tcp_ack_update_window(sk, tcb):
    nwin = tcb.window
    if not tcb.tcp_flags & TCPHDR_SYN:
        nwin <<= sk.rx_opt.snd_wscale      # RFC 7323 §2.3: a SYN's window is never scaled
    if not tcp_may_update_window(sk, tcb.ack_seq, tcb.seq, nwin):
        return False
    changed = nwin != sk.snd_wnd
    sk.snd_wl1 = tcb.seq
    sk.snd_wnd = nwin
    sk.max_window = max(sk.max_window, nwin)
    return changed


def tcp_clean_rtx_queue(sk, ack):
    """Free what `ack` covers; return (segments acked, RTT sample or None)."""
    rtx = sk.rtx_queue
    acked = 0
    first_tx = None
    retrans_acked = False
    mss = sk.mss_cache
    while rtx:
        skb = rtx[0]
        tcb = skb.cb
        if after(tcb.end_seq, ack):
            # a TSO skb acknowledged in part: drop the acknowledged head
            if tcb.pcount == 1 or not after(ack, tcb.seq) or tcb.tcp_flags & TCPHDR_SYN:
                break
            skb.pull((ack - tcb.seq) & 0xFFFFFFFF)
            tcb.seq = ack
            old = tcb.pcount
            out.tcp_set_skb_tso_segs(skb, mss)
            done = old - tcb.pcount
            sk.packets_out -= done
            if tcb.sacked & TCPCB_LOST:
                sk.lost_out -= done
            if tcb.sacked & TCPCB_SACKED_RETRANS:
                sk.retrans_out -= done
            acked += done
            break
        rtx.popleft()
        n = tcb.pcount
        acked += n
        sk.packets_out -= n
        if tcb.sacked & TCPCB_SACKED_ACKED:
            sk.sacked_out -= n
        elif tcb.tx_time is not None:
            tcp_rack_advance(sk, tcb)
            # never resent, acked below data SACKed before it: it came late
            if (not tcb.sacked & TCPCB_EVER_RETRANS and sk.highest_sack is not None
                    and before(tcb.seq, sk.highest_sack)):
                sk.reord_seen = True
        if tcb.sacked & TCPCB_SACKED_RETRANS:
            sk.retrans_out -= n
        if tcb.sacked & TCPCB_LOST:
            sk.lost_out -= n
        if tcb.sacked & TCPCB_EVER_RETRANS:
            retrans_acked = True
        elif first_tx is None:
            first_tx = tcb.tx_time
        sk.sk_wmem_queued -= skb.truesize
    seq_rtt = None
    if first_tx is not None and not retrans_acked:
        seq_rtt = sk.tcp_mstamp - first_tx
    return acked, seq_rtt


def tcp_mark_head_lost(sk):
    """The first unacknowledged segment is lost (3 dupACKs, or a NewReno
    partial ACK): split it from its TSO skb and mark it."""
    skb = sk.rtx_queue[0]
    tcb = skb.cb
    if len(skb) > sk.mss_cache:
        out.tcp_fragment(sk, sk.rtx_queue, 0, skb, sk.mss_cache)
    if not tcb.sacked & TCPCB_LOST:
        tcb.sacked |= TCPCB_LOST
        sk.lost_out += tcb.pcount
    # a segment already retransmitted once is sent again (NewReno)
    if tcb.sacked & TCPCB_SACKED_RETRANS:
        tcb.sacked &= ~TCPCB_SACKED_RETRANS
        sk.retrans_out -= tcb.pcount


def tcp_set_ca_state(sk, state):
    sk.ca_ops.set_state(sk, state)
    sk.ca_state = state
    if state == TCP_CA_Open:
        sk.undo_tsval = None               # the loss episode is over


def tcp_add_reno_sack(sk):
    """A duplicate ACK: one more segment has left the network (Reno's
    stand-in for SACK). Never more than are outstanding."""
    sk.sacked_out = min(sk.sacked_out + 1, max(sk.packets_out - 1, 0))


def tcp_enter_recovery(sk):
    """Fast retransmit (RFC 5681 §3.2) entering NewReno recovery (RFC 6582)."""
    sk.prior_ssthresh = sk.snd_ssthresh
    sk.prior_cwnd = sk.snd_cwnd
    sk.snd_ssthresh = sk.ca_ops.ssthresh(sk)
    sk.snd_cwnd = sk.snd_ssthresh
    sk.snd_cwnd_cnt = 0
    sk.high_seq = sk.snd_nxt           # RFC 6582 "recover"
    tcp_set_ca_state(sk, TCP_CA_Recovery)
    tcp_mark_head_lost(sk)
    out.tcp_retransmit_skb(sk, 0, 1)


def tcp_enter_loss(sk):
    """The RTO fired (RFC 5681 §3.1 eq. 4, RFC 6298 §5.5): everything in
    flight is presumed lost, cwnd restarts from one segment. An RTO within
    a loss episode keeps the episode's threshold and undo state (Linux)."""
    if sk.ca_state < TCP_CA_Recovery or not after(sk.high_seq, sk.snd_una):
        sk.prior_ssthresh = sk.snd_ssthresh
        sk.prior_cwnd = sk.snd_cwnd
        sk.snd_ssthresh = sk.ca_ops.ssthresh(sk)
    sk.snd_cwnd = 1
    sk.snd_cwnd_cnt = 0
    sk.lost_out = 0
    for skb in sk.rtx_queue:
        tcb = skb.cb
        tcb.sacked &= ~TCPCB_SACKED_RETRANS
        if not tcb.sacked & TCPCB_SACKED_ACKED:   # what the peer SACKed it still holds
            tcb.sacked |= TCPCB_LOST
            sk.lost_out += tcb.pcount
    sk.retrans_out = 0
    if not sk.rx_opt.sack_ok:
        sk.sacked_out = 0
    sk.high_seq = sk.snd_nxt
    sk.tlp_high_seq = None
    tcp_set_ca_state(sk, TCP_CA_Loss)


def tcp_check_dsack(sk, blocks, ack):
    """RFC 2883 §4: the first block is a D-SACK (data that arrived twice)
    when it lies below the cumulative ACK or inside the second block."""
    start, end = blocks[0]
    dsack = not after(end, ack)
    if not dsack and len(blocks) > 1:
        s2, e2 = blocks[1]
        dsack = not before(start, s2) and not after(end, e2)
    if dsack:
        sk.stats["TCPDSACKRecv"] += 1
        tcp_rack_dsack_seen(sk)
    return dsack


def tcp_sacktag_write_queue(sk, blocks):
    """Mark what the peer's SACK blocks (RFC 2018) say it holds. TSO skbs
    are split at block edges so marks cover whole skbs. Blocks below
    snd_una (D-SACK) or beyond snd_nxt are ignored. A never-retransmitted
    segment SACKed below the highest SACK arrived out of order: the path
    reorders (RACK then keeps a reordering window, RFC 8985 §6.2)."""
    rtx = sk.rtx_queue
    prior_highest = sk.highest_sack
    for start, end in blocks:
        if not after(end, start) or not after(end, sk.snd_una) or after(end, sk.snd_nxt):
            continue
        if sk.highest_sack is None or after(end, sk.highest_sack):
            sk.highest_sack = end
        i = 0
        while i < len(rtx):
            skb = rtx[i]
            tcb = skb.cb
            if not after(tcb.end_seq, start):
                i += 1
                continue
            if not before(tcb.seq, end):
                break
            if tcb.sacked & TCPCB_SACKED_ACKED:
                i += 1
                continue
            if before(tcb.seq, start):                     # block starts inside: split there
                n = (start - tcb.seq) & 0xFFFFFFFF
                if n < len(skb):
                    out.tcp_fragment(sk, rtx, i, skb, n)
                i += 1
                continue
            if after(tcb.end_seq, end):                    # block ends inside: keep the head
                n = (end - tcb.seq) & 0xFFFFFFFF
                if not 0 < n < len(skb):
                    break
                out.tcp_fragment(sk, rtx, i, skb, n)
            tcb.sacked |= TCPCB_SACKED_ACKED
            sk.sacked_out += tcb.pcount
            if tcb.tx_time is not None:
                tcp_rack_advance(sk, tcb)
            if (not tcb.sacked & TCPCB_EVER_RETRANS and prior_highest is not None
                    and before(tcb.end_seq, prior_highest)):
                sk.reord_seen = True
            if tcb.sacked & TCPCB_LOST:
                tcb.sacked &= ~TCPCB_LOST
                sk.lost_out -= tcb.pcount
            if tcb.sacked & TCPCB_SACKED_RETRANS:
                tcb.sacked &= ~TCPCB_SACKED_RETRANS
                sk.retrans_out -= tcb.pcount
            i += 1


def tcp_sack_fastretrans_alert(sk):
    """Loss recovery with SACK: RACK (RFC 8985) marks what is lost, by
    time; the first loss found starts recovery (RFC 6675), and holes are
    retransmitted as the pipe (packets_in_flight) allows. A deadline not
    yet passed arms the reordering timer."""
    state = sk.ca_state
    if state in (TCP_CA_Recovery, TCP_CA_Loss) and not before(sk.snd_una, sk.high_seq):
        if state == TCP_CA_Recovery:
            sk.snd_cwnd = sk.snd_ssthresh
        tcp_set_ca_state(sk, TCP_CA_Open)
        state = TCP_CA_Open
        if not sk.sacked_out:
            return
    timeout = tcp_rack_mark_lost(sk)
    if timeout:
        out.inet_csk_reset_xmit_timer(sk, out.ICSK_TIME_REO_TIMEOUT, timeout)
    if state in (TCP_CA_Recovery, TCP_CA_Loss):
        return
    if sk.lost_out:
        tcp_enter_sack_recovery(sk)
    elif sk.sacked_out:
        if state == TCP_CA_Open:
            tcp_set_ca_state(sk, TCP_CA_Disorder)
    elif state == TCP_CA_Disorder:
        tcp_set_ca_state(sk, TCP_CA_Open)


def tcp_enter_sack_recovery(sk):
    """Lost segments found outside recovery: reduce the window once for
    this loss event (RFC 6675 §5 step 4) and resend the first lost one,
    whatever the pipe says (the fast retransmit)."""
    sk.prior_ssthresh = sk.snd_ssthresh
    sk.prior_cwnd = sk.snd_cwnd
    sk.snd_ssthresh = sk.ca_ops.ssthresh(sk)
    sk.snd_cwnd = sk.snd_ssthresh
    sk.snd_cwnd_cnt = 0
    sk.high_seq = sk.snd_nxt
    tcp_set_ca_state(sk, TCP_CA_Recovery)
    for i, skb in enumerate(sk.rtx_queue):
        sacked = skb.cb.sacked
        if sacked & TCPCB_LOST and not sacked & (TCPCB_SACKED_RETRANS | TCPCB_SACKED_ACKED):
            out.tcp_retransmit_skb(sk, i, 1)
            break


def tcp_rack_reo_timeout(sk):
    """RFC 8985 §6.3: the reordering window of a suspect segment passed
    without its delivery: mark it lost, recover, retransmit."""
    prior_lost = sk.lost_out
    prior_retrans = sk.retrans_out
    timeout = tcp_rack_detect_loss(sk)
    if sk.lost_out != prior_lost or sk.retrans_out != prior_retrans:
        if sk.ca_state < TCP_CA_Recovery:
            tcp_enter_sack_recovery(sk)
        out.tcp_xmit_retransmit_queue(sk)
    if timeout:
        out.inet_csk_reset_xmit_timer(sk, out.ICSK_TIME_REO_TIMEOUT, timeout)
    elif not sk.pending:
        out.tcp_rearm_rto(sk)


def tcp_process_tlp_ack(sk, ack, dsack, advanced):
    """Linux's tcp_process_tlp_ack (RFC 8985 §7.4): the ACK for our loss
    probe tells whether it repaired a loss. A retransmitted probe that the
    peer reports as a duplicate (D-SACK) found none; an ACK beyond it
    repaired one, which is a congestion event: reduce cwnd once."""
    if before(ack, sk.tlp_high_seq):
        return
    if not sk.tlp_retrans or dsack:
        sk.tlp_high_seq = None
    elif after(ack, sk.tlp_high_seq):
        sk.tlp_high_seq = None
        sk.prior_ssthresh = sk.snd_ssthresh
        sk.snd_ssthresh = sk.ca_ops.ssthresh(sk)
        sk.snd_cwnd = min(sk.snd_cwnd, sk.snd_ssthresh)
        sk.snd_cwnd_cnt = 0
        sk.stats["TCPLossProbeRecovery"] += 1
    elif not advanced:
        sk.tlp_high_seq = None


def tcp_fastretrans_alert(sk, acked, is_dupack):
    """Loss detection and recovery without SACK (Linux's Reno path)."""
    state = sk.ca_state
    if state == TCP_CA_Loss:
        if not before(sk.snd_una, sk.high_seq):
            tcp_set_ca_state(sk, TCP_CA_Open)
        return
    if state == TCP_CA_Recovery:
        if not before(sk.snd_una, sk.high_seq):
            # RFC 6582 §3.2 step 3, full ACK: deflate to ssthresh, recovery over
            sk.snd_cwnd = sk.snd_ssthresh
            sk.sacked_out = 0
            tcp_set_ca_state(sk, TCP_CA_Open)
        elif is_dupack:
            tcp_add_reno_sack(sk)          # RFC 6582 step 4: inflate (in_flight shrinks)
        elif acked:
            # RFC 6582 step 5, partial ACK: the next hole is lost too
            sk.sacked_out = max(sk.sacked_out - acked, 0)
            tcp_mark_head_lost(sk)
            out.tcp_retransmit_skb(sk, 0, 1)
        return
    if is_dupack:
        tcp_add_reno_sack(sk)
        if state == TCP_CA_Open:
            tcp_set_ca_state(sk, TCP_CA_Disorder)
        # RFC 6582 §3.2 step 2: not while the ACK is still below "recover"
        # (duplicate ACKs for data sent before an RTO)
        if sk.sacked_out >= sk.reordering and not before(sk.snd_una, sk.high_seq):
            tcp_enter_recovery(sk)
    elif acked and state == TCP_CA_Disorder:
        sk.sacked_out = 0
        tcp_set_ca_state(sk, TCP_CA_Open)


def tcp_packet_delayed(sk, tsecr):
    """RFC 3522 (Eifel detection, Linux's tcp_packet_delayed): the ACK
    echoes a timestamp older than our first retransmission, so it was the
    original that arrived: the retransmissions were spurious."""
    return (sk.undo_tsval is not None and tsecr is not None and sk.rx_opt.tstamp_ok
            and ((tsecr - sk.undo_tsval) & 0xFFFFFFFF) > 0x7FFFFFFF)


def tcp_undo_cwnd_reduction(sk):
    """Undo a spurious RTO (RFC 4015 response, Linux's
    tcp_undo_cwnd_reduction): the window and threshold come back, nothing
    is lost any more, and the connection is Open again."""
    for skb in sk.rtx_queue:
        skb.cb.sacked &= ~TCPCB_LOST
    sk.lost_out = 0
    sk.stats["TCPSpuriousRTOs"] += 1
    sk.snd_cwnd = sk.ca_ops.undo_cwnd(sk)
    sk.snd_ssthresh = max(sk.snd_ssthresh, sk.prior_ssthresh)
    sk.snd_cwnd_cnt = 0
    if not sk.rx_opt.sack_ok:
        sk.sacked_out = 0
    tcp_set_ca_state(sk, TCP_CA_Open)


def tcp_ack(sk, skb):
    """Process the ACK field. Returns -1 to drop the segment, 0 for an old
    ACK (ignored, the segment's data still counts), 1 otherwise."""
    tcb = skb.cb
    ack = tcb.ack_seq
    prior_snd_una = sk.snd_una
    if before(ack, prior_snd_una):
        # RFC 5961 §5.2: older than anything the peer could have seen
        if before(ack, seq_add(prior_snd_una, -sk.max_window)):
            tcp_send_challenge_ack(sk, skb)
            return -1
        return 0
    if after(ack, sk.snd_nxt):
        tcp_send_challenge_ack(sk, skb)     # RFC 9293: ACK something not yet sent
        return -1
    sk.rcv_tstamp = sk.tcp_mstamp
    sk.probes_out = 0
    prior_packets = sk.packets_out
    window_changed = tcp_ack_update_window(sk, tcb)
    acked, seq_rtt = tcp_clean_rtx_queue(sk, ack)
    if acked:
        sk.sk_write_space(sk)           # send buffer space freed (tcp_check_space)
    sk.snd_una = ack
    if after(ack, prior_snd_una):
        rtt = tcp_ack_update_rtt(sk, seq_rtt, tcb.tsecr if sk.rx_opt.tstamp_ok else None)
        sk.retransmits = 0
        if not sk.retrans_out:
            sk.retrans_stamp = None
        out.tcp_set_xmit_timer(sk)
        sk.ca_ops.pkts_acked(sk, acked, rtt)
        if sk.sk_dst_cache is not None:
            # forward progress: the next hop answers, no need to ask ARP (Linux's sk_dst_confirm)
            dst_confirm_neigh(sk.net, sk.sk_dst_cache)
    # RFC 5681 §2: same ACK, no data, no SYN/FIN, same window, data outstanding
    is_dupack = (ack == prior_snd_una and tcb.seq == tcb.end_seq and not window_changed
                 and prior_packets and not tcb.tcp_flags & (TCPHDR_SYN | TCPHDR_FIN))
    # a spurious RTO is undone; in fast recovery RACK's reordering window
    # (reord_seen) is what keeps late segments from being resent again
    if (sk.ca_state == TCP_CA_Loss and after(ack, prior_snd_una)
            and tcp_packet_delayed(sk, tcb.tsecr)):
        tcp_undo_cwnd_reduction(sk)
    # the ACK that ends recovery does not grow cwnd too (RFC 5681 §3.2 step 6)
    may_raise_cwnd = sk.ca_state < TCP_CA_Recovery
    if sk.rx_opt.sack_ok:
        dsack = False
        if tcb.sack:
            dsack = tcp_check_dsack(sk, tcb.sack, ack)
            tcp_sacktag_write_queue(sk, tcb.sack)
        if sk.tlp_high_seq is not None:
            tcp_process_tlp_ack(sk, ack, dsack, after(ack, prior_snd_una))
        if sk.sacked_out or sk.ca_state != TCP_CA_Open:
            tcp_sack_fastretrans_alert(sk)
    elif is_dupack or sk.ca_state != TCP_CA_Open:
        tcp_fastretrans_alert(sk, acked, is_dupack)
    if acked and may_raise_cwnd:
        sk.ca_ops.cong_avoid(sk, ack, acked)
    if sk.lost_out > sk.retrans_out:
        out.tcp_xmit_retransmit_queue(sk)
    if sk.pending == out.ICSK_TIME_PROBE0:
        tcp_ack_probe(sk)
    return 1


def tcp_ack_probe(sk):
    """The window opened while probing: stop the persist timer, send."""
    wq = sk.write_queue
    if not wq:
        out.inet_csk_clear_xmit_timer(sk)
        return
    if out.tcp_snd_wnd_test(sk, wq[0], sk.mss_cache):
        sk.backoff = 0
        sk.probes_out = 0
        out.inet_csk_clear_xmit_timer(sk)


# -- receiving data ------------------------------------------------------------------------
def tcp_incr_quickack(sk):
    quickacks = sk.rcv_wnd // (2 * sk.rcv_mss)
    sk.ack_quick = max(sk.ack_quick, min(max(quickacks, 2), TCP_MAX_QUICKACKS))


def tcp_event_data_recv(sk, skb):
    """Delayed-ACK bookkeeping: the first data of a connection is acked at
    once for a while (quick ACKs, so the peer's slow start is not slowed)."""
    n = skb.gso_size or len(skb)
    if n > sk.rcv_mss:
        sk.rcv_mss = min(n, max(sk.advmss, TCP_MSS_DEFAULT))
    if len(skb) >= TCP_MSS_DEFAULT:
        # payload per byte charged, for the window (Linux's scaling_ratio)
        sk.scaling_ratio = min(len(skb) / skb.truesize, 1.0)
    if not sk.ack_ato:
        tcp_incr_quickack(sk)
        sk.ack_ato = TCP_DELACK_MIN
    sk.ack_lrcvtime = sk.tcp_mstamp


def tcp_rcv_rightsize(skb):
    """An skb whose buffer is over twice what its payload needs (a small
    segment in a 64 KB receive buffer) is copied before it is queued into
    one of its size, at least TCP_RCV_SMALL bytes so that following small
    segments coalesce into its room (tcp_queue_rcv). Memory then follows
    the data: a peer sending tiny segments cannot pin a big buffer per
    byte (Linux reaches the same with tcp_collapse; copying at once keeps
    the queues simple)."""
    n = len(skb)
    need = 2 * n                # max(2 * n, TCP_RCV_SMALL), without the builtin's
    if need < TCP_RCV_SMALL:    # call: this runs for every data segment
        need = TCP_RCV_SMALL
    if skb.truesize <= need + SKB_TRUESIZE_OVERHEAD:
        return skb
    return _skb_copy_into(skb, n if n > TCP_RCV_SMALL else TCP_RCV_SMALL)


def _skb_copy_into(skb, size):
    """skb's data, cb and gso_size in a new buffer of `size` bytes."""
    small = SKB(size)
    small.put_data(skb.data)
    small.gso_size = skb.gso_size
    small.cb = skb.cb
    return small


def _slack(skb):
    """Buffer bytes skb holds beyond its data and metadata."""
    return skb.truesize - SKB_TRUESIZE_OVERHEAD - len(skb)


def _skb_compact(skb):
    """skb, or a copy in a buffer its size when it has more than
    TCP_COLLAPSE_SLACK bytes to spare (a GSO frame shorter than the 64 KB it
    was read into, a head skb partly read, even a full frame's few hundred
    bytes: a window's worth of them adds up)."""
    return _skb_copy_into(skb, len(skb)) if _slack(skb) > TCP_COLLAPSE_SLACK else skb


def tcp_collapse(sk, queue):
    """Compact each skb of a receive or out-of-order queue; sk_rmem_alloc
    falls by what that frees. Linux's tcp_collapse, without merging
    neighbours: when the reader lags, the memory the window promised is
    found again by copying rather than by dropping data (the window
    assumes the payload-to-buffer ratio of recent segments, and a shorter
    frame breaks that promise)."""
    for i in range(len(queue)):
        skb = queue[i]
        compact = _skb_compact(skb)
        if compact is not skb:
            sk.sk_rmem_alloc -= skb.truesize - compact.truesize
            queue[i] = compact


def tcp_queue_rcv(sk, skb):
    """Append in-order data, into the tail skb's free room when it fits
    (Linux's tcp_try_coalesce): many small segments share one buffer."""
    tcb = skb.cb
    if len(skb):
        rq = sk.receive_queue
        if rq and len(skb) <= rq[-1].tailroom:
            rq[-1].put_data(skb.data)
        else:
            skb = tcp_rcv_rightsize(skb)
            rq.append(skb)
            sk.sk_rmem_alloc += skb.truesize
    sk.rcv_nxt = tcb.end_seq
    if tcb.tcp_flags & TCPHDR_FIN:
        tcp_fin(sk)


def tcp_ofo_queue(sk):
    """Move what the new in-order data reached from the out-of-order queue."""
    ofo = sk.out_of_order_queue
    nxt = sk.rcv_nxt
    i = 0
    while i < len(ofo) and not after(ofo[i].cb.seq, nxt):
        if after(ofo[i].cb.end_seq, nxt):
            nxt = ofo[i].cb.end_seq
        i += 1
    ready = ofo[:i]
    del ofo[:i]
    for skb in ready:
        sk.sk_rmem_alloc -= skb.truesize
        tcb = skb.cb
        if not after(tcb.end_seq, sk.rcv_nxt) or sk.sk_shutdown & RCV_SHUTDOWN:
            continue                       # wholly duplicate, or past the FIN
        skb.pull(min((sk.rcv_nxt - tcb.seq) & 0xFFFFFFFF, len(skb)))
        tcb.seq = sk.rcv_nxt
        tcp_queue_rcv(sk, skb)


def tcp_sack_update(sk, newest=None):
    """The SACK blocks for our ACKs (RFC 2018 §4): the out-of-order queue's
    contiguous ranges, the one holding the newest segment first."""
    if not sk.rx_opt.sack_ok:
        return
    ranges = []
    for skb in sk.out_of_order_queue:
        tcb = skb.cb
        if ranges and not after(tcb.seq, ranges[-1][1]):
            if after(tcb.end_seq, ranges[-1][1]):
                ranges[-1][1] = tcb.end_seq
        else:
            ranges.append([tcb.seq, tcb.end_seq])
    first = [r for r in ranges if newest is not None and between(newest, r[0], r[1])]
    rest = [r for r in reversed(ranges) if r not in first]
    sk.selective_acks = tuple((a, b) for a, b in first + rest)[:4]


def tcp_data_queue_ofo(sk, skb):
    """Hold a segment that arrived ahead of rcv_nxt; ACK at once so the
    sender counts a duplicate ACK (RFC 5681 §4.2). The queue is bounded:
    past ofo_limit skbs or the receive buffer, the newcomer is dropped."""
    sk.ack_now = True
    ofo = sk.out_of_order_queue
    tcb = skb.cb
    skb = tcp_rcv_rightsize(skb)
    if _rmem_over(sk):
        skb = tcp_make_room(sk, skb)
    if len(ofo) >= sk.ofo_limit or _rmem_over(sk):
        sk.ofo_drops += 1
        sk.stats["OfoDrop"] += 1
        return
    i = bisect.bisect_left(ofo, tcb.seq, key=lambda s: s.cb.seq)
    if i < len(ofo) and ofo[i].cb.seq == tcb.seq and not after(tcb.end_seq, ofo[i].cb.end_seq):
        return                             # a duplicate of what we hold
    ofo.insert(i, skb)
    sk.sk_rmem_alloc += skb.truesize
    tcp_sack_update(sk, tcb.seq)


def _rmem_over(sk):
    """Linux's test (tcp_try_rmem_schedule): a buffer not yet over its limit
    takes one more skb. The window is free space at the payload ratio of
    recent segments, which leaves out the metadata of the next one; this way
    a window offered is a window honoured, and memory stays within rcvbuf
    plus one skb."""
    return sk.sk_rmem_alloc > sk.sk_rcvbuf


def tcp_make_room(sk, skb):
    """The receive buffer is over its limit: compact both queues and skb
    itself (tcp_collapse). Returns skb, in a buffer its size if it had
    slack; the caller sees whether the buffer has room now."""
    tcp_collapse(sk, sk.receive_queue)
    tcp_collapse(sk, sk.out_of_order_queue)
    return _skb_compact(skb)


def tcp_rmem_schedule(sk, skb):
    """Room for in-order data (Linux's tcp_prune_queue): first by compacting
    what is queued (tcp_make_room), then by giving up out-of-order data from
    the highest sequence down (tcp_prune_ofo_queue), since only in-order
    data lets the connection progress. Returns the skb to queue, or None."""
    if not _rmem_over(sk):
        return skb
    skb = tcp_make_room(sk, skb)
    if not _rmem_over(sk):
        return skb
    ofo = sk.out_of_order_queue
    while _rmem_over(sk) and ofo:
        sk.sk_rmem_alloc -= ofo.pop().truesize
        sk.stats["RcvPruned"] += 1
    if ofo:
        tcp_sack_update(sk)
    else:
        sk.selective_acks = ()
    return None if _rmem_over(sk) else skb


def tcp_data_queue(sk, skb):
    tcb = skb.cb
    if tcb.seq == tcb.end_seq:
        return
    sk.ack_sched = True
    if tcb.tcp_flags & TCPHDR_SYN:
        tcb.seq = seq_add(tcb.seq, 1)      # the SYN is not data
    if not after(tcb.end_seq, sk.rcv_nxt):
        sk.ack_now = True                  # a retransmission: our ACK was lost
        return
    if not before(tcb.seq, seq_add(sk.rcv_nxt, sk.receive_window())) and len(skb):
        sk.ack_now = True                  # beyond the window
        return
    if after(tcb.seq, sk.rcv_nxt):
        tcp_data_queue_ofo(sk, skb)
        return
    if before(tcb.seq, sk.rcv_nxt):       # overlaps data we have: keep the new part
        skb.pull(min((sk.rcv_nxt - tcb.seq) & 0xFFFFFFFF, len(skb)))
        tcb.seq = sk.rcv_nxt
    if len(skb):
        skb = tcp_rcv_rightsize(skb)
        if sk.receive_window() == 0 or (skb := tcp_rmem_schedule(sk, skb)) is None:
            sk.stats["RcvDrop"] += 1
            sk.ack_now = True
            return
        tcp_event_data_recv(sk, skb)
    tcp_queue_rcv(sk, skb)
    if sk.out_of_order_queue:
        tcp_ofo_queue(sk)
        tcp_sack_update(sk)
        if not sk.out_of_order_queue:
            sk.ack_now = True              # RFC 5681 §4.2: a filled hole is acked at once
    sk.sk_data_ready(sk)                   # tcp_data_ready


def tcp_fin(sk):
    """The peer's FIN is in sequence (RFC 9293 §3.10.7.4 eighth check)."""
    sk.sk_shutdown |= RCV_SHUTDOWN
    sk.ack_now = True
    state = sk.state
    if state in (_S.SYN_RECV, _S.ESTABLISHED):
        tcp_set_state(sk, _S.CLOSE_WAIT)
    elif state == _S.FIN_WAIT1:
        tcp_set_state(sk, _S.CLOSING)      # simultaneous close
    elif state == _S.FIN_WAIT2:
        tcp_time_wait(sk)
    for skb in sk.out_of_order_queue:      # nothing after the FIN counts
        sk.sk_rmem_alloc -= skb.truesize
    sk.out_of_order_queue.clear()
    sk.selective_acks = ()
    sk.sk_state_change(sk)


def tcp_ack_snd_check(sk):
    """ACK now or later (RFC 1122 §4.2.3.2, RFC 5681 §4.2): at once for
    out-of-order or duplicate data (the sender counts duplicate ACKs);
    otherwise, inside a receive batch of the stack's poll, once at the
    batch's end (stack.rx_batch_end), so one ACK covers every segment the
    batch brought -- with GRO'd super-segments each already stands for
    many MSS, well past RFC 5681's one ACK per two full segments."""
    if not sk.ack_sched:
        return
    if sk.ack_now or sk.out_of_order_queue:
        out.tcp_send_ack(sk)
        return
    batch_end = getattr(sk.net, "rx_batch_end", None)
    if batch_end is not None:
        batch_end[sk] = __tcp_ack_snd_check
    else:
        __tcp_ack_snd_check(sk)


def __tcp_ack_snd_check(sk):
    """At once in quick-ACK mode or when more than one full segment is
    unacknowledged; else the delayed-ACK timer."""
    if not sk.ack_sched:
        return                             # a segment we sent carried it meanwhile
    if (sk.ack_now or sk.ack_quick or sk.out_of_order_queue or
            ((sk.rcv_nxt - sk.rcv_wup) & 0xFFFFFFFF) > sk.rcv_mss):
        out.tcp_send_ack(sk)
    else:
        out.tcp_send_delayed_ack(sk)


# -- the state machine ---------------------------------------------------------------------
def tcp_init_transfer(sk):
    """The connection is up: initial cwnd (RFC 6928 IW10, one segment if
    the handshake lost a segment, RFC 5681 §3.1), keepalive."""
    sk.snd_cwnd = 1 if sk.stats["RetransSegs"] else TCP_INIT_CWND
    sk.high_seq = sk.snd_una
    if sk.srtt is None:
        sk.rto = TCP_TIMEOUT_FALLBACK
    sk.ca_ops.init(sk)
    if sk.keepalive:
        sk.keepalive_timer.mod(sk.tcp_mstamp + sk.keepalive_time)


def tcp_rcv_synsent_state_process(sk, skb):
    """RFC 9293 §3.10.7.3. Returns True when the caller must send a RST."""
    tcb = skb.cb
    flags = tcb.tcp_flags
    if flags & TCPHDR_ACK:
        if not after(tcb.ack_seq, sk.iss) or after(tcb.ack_seq, sk.snd_nxt):
            return not flags & TCPHDR_RST
    if flags & TCPHDR_RST:
        if flags & TCPHDR_ACK:
            tcp_reset(sk)                  # ECONNREFUSED
        return False
    if not flags & TCPHDR_SYN:
        return False
    sk.irs = tcb.seq
    sk.rcv_nxt = seq_add(tcb.seq, 1)
    sk.rcv_wup = sk.rcv_nxt
    sk.copied_seq = sk.rcv_nxt
    tcp_parse_syn_options(sk, tcb)
    out.tcp_sync_mss(sk, sk.pmtu)
    if flags & TCPHDR_ACK:
        tcp_ack(sk, skb)
        tcp_set_state(sk, _S.ESTABLISHED)
        tcp_init_transfer(sk)
        sk.sk_state_change(sk)
        if (sk.syn_fastopen or sk.syn_data) and fastopen.tcp_rcv_fastopen_synack(sk, skb):
            return False                   # the resent SYN data carries the ACK
        out.tcp_send_ack(sk)
        return False
    # simultaneous open: both SYNs crossed (RFC 9293 §3.5 figure 8)
    tcp_set_state(sk, _S.SYN_RECV)
    sk.snd_wnd = tcb.window
    sk.snd_wl1 = tcb.seq
    sk.max_window = max(sk.max_window, sk.snd_wnd)
    out.tcp_send_synack(sk)
    return False


def tcp_listen_input(sk, skb):
    flags = skb.cb.tcp_flags
    if flags & TCPHDR_ACK:
        return True            # no connection: RST (RFC 9293 §3.10.7.2)
    if flags & TCPHDR_RST:
        return False
    if flags & TCPHDR_SYN:
        sk.af_ops.conn_request(sk, skb)
    return False


def _syn_recv_simultaneous_synack(sk, tcb):
    """Our SYN-ACK's twin from the peer in simultaneous open (Linux accepts
    it in SYN_RECV though its SYN lies just left of rcv_nxt)."""
    return (tcb.tcp_flags & (TCPHDR_SYN | TCPHDR_ACK)) == (TCPHDR_SYN | TCPHDR_ACK) and \
        seq_add(tcb.seq, 1) == sk.rcv_nxt and tcb.ack_seq == sk.snd_nxt


def tcp_rcv_established(sk, skb):
    """Header prediction (Van Jacobson's, Linux's tcp_rcv_established fast
    path): in ESTABLISHED, a segment with only ACK (and PSH) set, at
    rcv_nxt, the send window unchanged, no SACK blocks, and a timestamp
    PAWS lets in (RFC 7323 §5.3) is either in-order data, queued with the
    least bookkeeping, or a pure ACK of new data, handed straight to
    tcp_ack. It ends as the full RFC 9293 §3.10.7.4 path would (the
    acceptability test passes for a segment at rcv_nxt, nothing else
    applies). Returns False, having changed nothing, for anything else:
    the caller then takes the slow path."""
    tcb = skb.cb
    ro = sk.rx_opt
    if (tcb.tcp_flags & ~TCPHDR_PSH) != TCPHDR_ACK or tcb.seq != sk.rcv_nxt or tcb.sack or \
            (tcb.window << ro.snd_wscale) != sk.snd_wnd:
        return False
    if ro.tstamp_ok and (tcb.tsval is None or
                         ((tcb.tsval - ro.ts_recent) & 0xFFFFFFFF) > 0x7FFFFFFF):
        return False
    ack = tcb.ack_seq
    snd_una = sk.snd_una
    if before(ack, snd_una) or after(ack, sk.snd_nxt):
        return False                       # old or impossible: counted and answered there
    if not len(skb):
        if ack == snd_una:
            return False                   # a duplicate ACK (RFC 5681 §2): loss recovery's
        sk.stats["InSegs"] += 1
        tcp_replace_ts_recent(sk, tcb)
        tcp_ack(sk, skb)
    else:
        if sk.out_of_order_queue or sk.receive_window() == 0:
            return False                   # a hole to fill, or a closed window to enforce
        if ack == snd_una and (sk.ca_state != TCP_CA_Open or sk.sacked_out or sk.lost_out or
                               sk.tlp_high_seq is not None or sk.pending == out.ICSK_TIME_PROBE0):
            return False                   # our own data needs tcp_ack's recovery steps
        if _rmem_over(sk):
            return False                   # tcp_rmem_schedule decides what to drop
        rskb = tcp_rcv_rightsize(skb)
        sk.stats["InSegs"] += 1
        tcp_replace_ts_recent(sk, tcb)
        if ack != snd_una:
            tcp_ack(sk, skb)
        else:
            # all tcp_ack does for an ACK that moves nothing and a window
            # that stays (RFC 9293 §3.10.7.4: SND.WL1 follows the segment)
            sk.rcv_tstamp = sk.tcp_mstamp
            sk.probes_out = 0
            if after(tcb.seq, sk.snd_wl1):
                sk.snd_wl1 = tcb.seq
        sk.ack_sched = True
        tcp_event_data_recv(sk, rskb)
        tcp_queue_rcv(sk, rskb)
        sk.sk_data_ready(sk)
    if sk.state != _S.CLOSE:
        out.tcp_push_pending_frames(sk)
        tcp_ack_snd_check(sk)
    return True


def tcp_rcv_state_process(sk, skb):
    """Process one segment for sk in any state. Returns True when the
    caller must answer with a RST (tcp_v4_send_reset)."""
    tcb = skb.cb
    state = sk.state
    if state == _S.ESTABLISHED and tcp_rcv_established(sk, skb):
        return False
    if state == _S.CLOSE:
        return True
    if state == _S.LISTEN:
        return tcp_listen_input(sk, skb)
    if state == _S.SYN_SENT:
        return tcp_rcv_synsent_state_process(sk, skb)
    sk.stats["InSegs"] += 1
    if state == _S.SYN_RECV and sk.fastopen_rsk is not None and fastopen.tcp_fastopen_syn_again(sk, tcb):
        return False
    if state == _S.SYN_RECV and _syn_recv_simultaneous_synack(sk, tcb):
        tcp_replace_ts_recent(sk, tcb)
    elif not tcp_validate_incoming(sk, skb):
        return False
    if sk.state == _S.CLOSE:
        return False
    if not tcb.tcp_flags & TCPHDR_ACK:
        return False                       # RFC 9293: no ACK, drop
    ret = tcp_ack(sk, skb)
    if ret < 0:
        return False
    if state == _S.SYN_RECV:
        if not after(sk.snd_una, sk.iss):
            return True                    # not an ACK of our SYN: RST
        tcp_set_state(sk, _S.ESTABLISHED)
        sk.snd_wnd = tcb.window << sk.rx_opt.snd_wscale
        sk.snd_wl1 = tcb.seq
        sk.max_window = max(sk.max_window, sk.snd_wnd)
        tcp_init_transfer(sk)
        sk.sk_state_change(sk)
    fin_acked = sk.fin_sent and sk.snd_una == sk.write_seq
    if state == _S.FIN_WAIT1 and fin_acked:
        tcp_set_state(sk, _S.FIN_WAIT2)
        sk.sk_shutdown |= SEND_SHUTDOWN
        sk.sk_state_change(sk)
        if sk.orphan:
            sk.keepalive_timer.mod(sk.tcp_mstamp + sk.linger2)
    elif state == _S.CLOSING and fin_acked:
        tcp_time_wait(sk)
    elif state == _S.LAST_ACK and fin_acked:
        tcp_done(sk)
        return False
    state = sk.state
    if state in (_S.ESTABLISHED, _S.FIN_WAIT1, _S.FIN_WAIT2, _S.SYN_RECV):
        if sk.orphan and len(skb) and state in (_S.FIN_WAIT1, _S.FIN_WAIT2) \
                and after(tcb.end_seq, sk.rcv_nxt):
            # nobody will read it (RFC 2525 §2.17): abort
            tcp_reset(sk)
            return True
        tcp_data_queue(sk, skb)
    if sk.state != _S.CLOSE:
        out.tcp_push_pending_frames(sk)
        tcp_ack_snd_check(sk)
    return False
