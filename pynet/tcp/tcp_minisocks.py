"""Linux's net/ipv4/tcp_minisocks.c: the small sockets. Passive open's
second half (the segment that answers our SYN-ACK is checked against the
request sock, and an acceptable one makes the full child socket), and the
segments that reach a connection in TIME_WAIT (tcp_timewait_state_process).
"""
from pynet.skbuff import SKB
from pynet.tcp import tcp_input as inp
from pynet.tcp import tcp_output as out
from pynet.tcp.sock import TcpSock, inet_twsk_kill
from pynet.tcp.tcp import (
    MAX_TCP_HEADER, TCPHDR_ACK, TCPHDR_FIN, TCPHDR_RST, TCPHDR_SYN, TCP_SYNACK_RETRIES,
    TCP_TIMEWAIT_LEN, TcpState, after, between, seq_add,
)
from pynet.wire.tcp import tcp_hdr_push

_LISTEN = TcpState.LISTEN
_SYN_RECV = TcpState.SYN_RECV


def inet_csk_reqsk_queue_drop(listener, req):
    listener.syn_queue.pop((req.daddr, req.dport), None)
    if req.timer is not None:
        req.timer.delete()
        req.timer = None        # its callback holds req: no cycle left for the collector


def tcp_timewait_syn_isn(tw, tcb):
    """A new SYN for a 4-tuple in TIME_WAIT (Linux's TCP_TW_SYN case of
    tcp_timewait_state_process; RFC 6191 §2, RFC 1122 §4.2.2.13): a SYN
    without ACK or RST that PAWS does not reject and that is provably new --
    its seq after rcv_nxt, or its TSval newer than TS.Recent -- may reopen
    the connection. Returns the ISN the new connection must use, past
    anything the old one sent (snd_nxt + 65535 + 2, never 0), or None when
    TIME_WAIT keeps the segment."""
    if tcb.tcp_flags & (TCPHDR_SYN | TCPHDR_ACK | TCPHDR_RST) != TCPHDR_SYN:
        return None
    if inp.tcp_paws_discard(tw, tcb):
        return None
    ro = tw.rx_opt
    newer_ts = (ro.tstamp_ok and ro.ts_recent_stamp is not None and tcb.tsval is not None
                and after(tcb.tsval, ro.ts_recent))
    if not (after(tcb.seq, tw.rcv_nxt) or newer_ts):
        return None
    return seq_add(tw.snd_nxt, 65535 + 2) or 1


def tcp_v4_timewait_ack(tw):
    """The ACK a TIME_WAIT sock sends (Linux's tcp_v4_timewait_ack): what it
    last acknowledged, its last window, TS.Recent echoed; from the control
    socket, as it owns no route."""
    skb = SKB(MAX_TCP_HEADER)
    skb.reserve(MAX_TCP_HEADER)
    ro = tw.rx_opt
    ts = (tw.tcp_time_stamp(), ro.ts_recent) if ro.tstamp_ok else None
    tcp_hdr_push(skb, tw.sport, tw.dport, tw.snd_nxt, tw.rcv_nxt, TCPHDR_ACK,
                 min(tw.rcv_wnd >> ro.rcv_wscale, 65535), 0, 0, ts=ts, partial=True)
    tw.hashinfo.send_reply(tw.saddr, tw.daddr, tw.sport, tw.dport, skb, tw.tcp_mstamp)


def tcp_timewait_state_process(tw, skb):
    """A segment for a connection in TIME_WAIT (RFC 9293 §3.10.7.4 for
    TIME-WAIT; the SYN that may reopen it went to tcp_timewait_syn_isn
    first). The answer is at most an ACK of what the connection held."""
    tcb = skb.cb
    flags = tcb.tcp_flags
    if inp.tcp_paws_discard(tw, tcb) and not flags & TCPHDR_RST:
        if not inp.tcp_oow_rate_limited(tw, skb):
            tcp_v4_timewait_ack(tw)         # RFC 7323 §5.3: an old duplicate is acked
        return
    if not inp.tcp_sequence(tw, tcb):
        if not flags & TCPHDR_RST:
            if flags & TCPHDR_FIN:           # the peer's FIN again: our ACK was lost
                tw.timer.mod(tw.tcp_mstamp + TCP_TIMEWAIT_LEN)
            if not inp.tcp_oow_rate_limited(tw, skb):
                tcp_v4_timewait_ack(tw)
        return
    if flags & TCPHDR_RST:
        # RFC 5961 §3.2: only an exact hit ends it; in window is challenged
        if tcb.seq == tw.rcv_nxt:
            inet_twsk_kill(tw)
        elif not inp.__tcp_oow_rate_limited(tw):
            tcp_v4_timewait_ack(tw)
        return
    inp.tcp_replace_ts_recent(tw, tcb)
    if flags & TCPHDR_SYN:
        # RFC 5961 §4.2: a SYN that did not reopen the 4-tuple is challenged
        if not inp.__tcp_oow_rate_limited(tw):
            tcp_v4_timewait_ack(tw)
        return
    if tcb.seq != tcb.end_seq:
        # data or a FIN in window: nothing can take it any more; say what we hold
        if flags & TCPHDR_FIN:
            tw.timer.mod(tw.tcp_mstamp + TCP_TIMEWAIT_LEN)
        tcp_v4_timewait_ack(tw)


def tcp_send_synack(listener, req):
    skb = out.tcp_make_synack(listener, req)
    req.snt_synack = listener.tcp_mstamp
    listener.hashinfo.send_reply(req.saddr, req.daddr, req.sport, req.dport, skb,
                                 listener.tcp_mstamp)


def tcp_synack_timer(listener, req, now):
    """SYN-ACK not answered: resend with exponential backoff, give up
    after TCP_SYNACK_RETRIES (RFC 6298 §5.5 applied to the SYN-ACK)."""
    listener.tcp_mstamp = now
    req.num_retrans += 1
    if req.num_retrans > TCP_SYNACK_RETRIES or listener.state != _LISTEN:
        inet_csk_reqsk_queue_drop(listener, req)
        return
    tcp_send_synack(listener, req)
    req.timer.mod(now + listener.rto_initial * (1 << req.num_retrans))


def tcp_create_openreq_child(listener, req, skb):
    """The full socket for an established passive connection, in SYN_RECV:
    tcp_rcv_state_process moves it to ESTABLISHED on the same segment."""
    child = TcpSock(listener.net, listener.af_ops, type(listener.ca_ops)())
    for name in ("sk_sndbuf", "sk_rcvbuf", "nonagle", "keepalive", "keepalive_time",
                 "keepalive_intvl", "keepalive_probes", "user_timeout", "gso_max_size",
                 "pmtu", "sack_enabled", "tstamp_enabled", "wscale_enabled", "rto_initial",
                 "retries2", "advmss", "window_clamp", "hashinfo", "linger2"):
        setattr(child, name, getattr(listener, name))
    child.tcp_mstamp = listener.tcp_mstamp
    child.parent = listener
    child.saddr, child.daddr, child.sport, child.dport = req.saddr, req.daddr, req.sport, req.dport
    child.state = _SYN_RECV
    child.iss = req.snt_isn
    child.snd_una = req.snt_isn           # our SYN-ACK is acknowledged by tcp_ack
    child.snd_nxt = child.write_seq = child.pushed_seq = seq_add(req.snt_isn, 1)
    child.snd_sml = child.snd_una
    child.irs = req.rcv_isn
    child.rcv_nxt = child.rcv_wup = child.copied_seq = seq_add(req.rcv_isn, 1)
    child.rcv_wnd = req.rcv_wnd
    child.snd_wnd = child.max_window = req.window
    child.snd_wl1 = req.rcv_isn
    child.ts_offset = req.ts_off
    ro = child.rx_opt
    ro.mss_clamp = req.mss
    ro.wscale_ok = req.wscale_ok
    ro.snd_wscale = req.snd_wscale
    ro.rcv_wscale = req.rcv_wscale
    ro.sack_ok = req.sack_ok
    ro.tstamp_ok = req.tstamp_ok
    ro.ts_recent = req.ts_recent
    ro.ts_recent_stamp = listener.tcp_mstamp if req.tstamp_ok else None
    out.tcp_sync_mss(child, child.pmtu)
    child.rcv_mss = min(child.advmss, child.mss_cache)
    if not req.num_retrans:               # Karn: only an unrepeated SYN-ACK times the path
        inp.tcp_rtt_estimator(child, listener.tcp_mstamp - req.snt_synack)
        inp.tcp_set_rto(child)
    return child


def tcp_check_req(listener, req, skb):
    """The next segment of a half-open connection (RFC 9293 §3.10.7.4 in
    SYN-RECEIVED). Returns (child or None, whether to send a RST)."""
    tcb = skb.cb
    flags = tcb.tcp_flags
    rcv_nxt = seq_add(req.rcv_isn, 1)
    if flags & TCPHDR_SYN and not flags & TCPHDR_ACK and tcb.seq == req.rcv_isn:
        tcp_send_synack(listener, req)      # our SYN-ACK was lost
        return None, False
    if not between(tcb.seq, rcv_nxt, seq_add(rcv_nxt, max(req.rcv_wnd, 1) - 1)):
        return None, False                  # out of window: drop
    if flags & TCPHDR_RST:
        if tcb.seq == rcv_nxt:
            inet_csk_reqsk_queue_drop(listener, req)
        return None, False
    if flags & TCPHDR_SYN:
        inet_csk_reqsk_queue_drop(listener, req)   # RFC 5961 §4: no new SYN in window
        return None, True
    if not flags & TCPHDR_ACK:
        return None, False
    if tcb.ack_seq != seq_add(req.snt_isn, 1):
        return None, True
    child = listener.af_ops.syn_recv_sock(listener, req, skb)
    if child is None:
        return None, False                  # accept queue full: the SYN-ACK will go again
    inet_csk_reqsk_queue_drop(listener, req)
    return child, inp.tcp_rcv_state_process(child, skb)
