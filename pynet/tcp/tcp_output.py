"""Sending (Linux's net/ipv4/tcp_output.c).

The write queue holds data the user gave and TCP has not sent; once sent an
skb moves to the retransmit queue, in sequence order, and stays there until
acknowledged. What goes to the network is always a clone (tcp_transmit_skb),
so the original can be sent again. One loop, tcp_write_xmit, decides what
may leave now: congestion window, the peer's window, Nagle and the skb size.
With TSO an skb holds up to 64 KB and is sent whole as one GSO super-segment,
so Python's per-packet work is per super-segment, not per MSS.
"""
from pynet import skbtrace
from pynet._core import tcp_v4_frame_push
from pynet.ip_output import (dev_xmit_direct, ip_direct_hh, ip_dont_fragment, ip_output,
                             ip_queue_xmit, ip_select_ident)
from pynet.skbuff import SKB, SKB_GSO_TCPV4
from pynet.sock import __sk_dst_check
from pynet.wire.ipv4 import IPPROTO_TCP
from pynet.wire.tcp import tcp_hdr_push
from pynet.tcp import fastopen
from pynet.tcp.sock import ICSK_TIME_LOSS_PROBE, ICSK_TIME_PROBE0, ICSK_TIME_REO_TIMEOUT, ICSK_TIME_RETRANS
from pynet.tcp.tcp import (
    MAX_TCP_HEADER, TCP_CA_Open, TCP_MIN_MSS, TCP_NAGLE_CORK, TCP_NAGLE_OFF, TCP_NAGLE_PUSH,
    TCP_RTO_MAX, TCP_RTO_MIN, TCP_TIMEOUT_INIT, TCP_TIMEOUT_MIN, TCPCB_EVER_RETRANS, TCPCB_LOST, TCPCB_SACKED_ACKED, TCPCB_SACKED_RETRANS,
    TCPHDR_ACK, TCPHDR_FIN, TCPHDR_PSH, TCPHDR_RST, TCPHDR_SYN, TCP_MAX_WSCALE, TcpSkbCb, TcpState, after, before,
    seq_add,
)

TCPOLEN_TSTAMP_ALIGNED = 12
_PROBE_TIMERS = (ICSK_TIME_PROBE0, ICSK_TIME_LOSS_PROBE)


# -- MSS and windows ----------------------------------------------------------
def tcp_sync_mss(sk, pmtu):
    """Effective send MSS for a path MTU (RFC 9293 §3.7.1, RFC 6691): the
    MTU less IP and TCP headers, at most the peer's MSS, less our options."""
    sk.pmtu = pmtu
    mss = pmtu - sk.af_ops.net_header_len - 20
    mss = min(mss, sk.rx_opt.mss_clamp)
    if sk.rx_opt.user_mss:
        mss = min(mss, sk.rx_opt.user_mss)
    if sk.rx_opt.tstamp_ok:
        mss -= TCPOLEN_TSTAMP_ALIGNED
    sk.mss_cache = max(mss, TCP_MIN_MSS)
    return sk.mss_cache


def tcp_size_goal(sk):
    """How big an skb tcp_sendmsg builds: one MSS, or with TSO as many whole
    MSS as fit in a GSO super-segment."""
    mss = sk.mss_cache
    if sk.gso_max_size > mss:
        return (sk.gso_max_size // mss) * mss
    return mss


def tcp_select_initial_window(space, window_clamp, wscale_ok, ratio=1.0):
    """Our first window and window-scale shift (RFC 7323 §2.2): the smallest
    shift that lets the whole receive buffer be advertised; the window is
    what the buffer holds at the payload ratio (tcp_win_from_space)."""
    space = min(space, window_clamp)
    window = int(space * ratio)
    if not wscale_ok:
        return min(window, 65535), 0
    wscale = 0
    while space > (65535 << wscale) and wscale < TCP_MAX_WSCALE:
        wscale += 1
    return min(window, 65535 << wscale), wscale


def tcp_space(sk):
    """Free receive space, in buffer bytes: sk_rmem_alloc charges each
    queued skb its truesize (buffer and metadata), as Linux does."""
    return sk.sk_rcvbuf - sk.sk_rmem_alloc


def tcp_win_from_space(sk, space):
    """The payload that `space` buffer bytes hold, at the ratio measured
    on received segments (Linux's scaling_ratio)."""
    return int(space * sk.scaling_ratio) if space > 0 else 0


def __tcp_select_window(sk):
    mss = sk.rcv_mss
    shift = sk.rx_opt.rcv_wscale
    free = tcp_win_from_space(sk, tcp_space(sk))
    limit = sk.window_clamp if sk.window_clamp < 65535 << shift else 65535 << shift
    if free > limit:
        free = limit
    # receiver silly window avoidance (RFC 9293 §3.8.6.2.2): no window
    # smaller than min(MSS, half the buffer)
    if free < mss and free < tcp_win_from_space(sk, sk.sk_rcvbuf) // 2:
        return 0
    if shift:
        return (free >> shift) << shift
    window = sk.rcv_wnd
    if window <= free - mss or window > free:
        window = (free // mss) * mss
    return window


def tcp_select_window(sk):
    """The window field of an outgoing segment, scaled.

    Never shrinks what was offered (RFC 9293 §3.8.6.2.2): the right edge
    rcv_nxt + window never moves left, even if the buffer filled meanwhile.
    """
    cur = sk.receive_window()
    new = __tcp_select_window(sk)
    shift = sk.rx_opt.rcv_wscale
    if new < cur:
        new = -(-cur >> shift) << shift      # round up to what the shift can express
    new = min(new, 65535 << shift)
    sk.rcv_wnd = new
    sk.rcv_wup = sk.rcv_nxt
    return new >> shift


# -- the transmit path ------------------------------------------------------------
def tcp_transmit_skb(sk, skb, clone_it=True):
    """Send one skb: push the header onto a clone (or onto skb itself when
    it is a one-off control segment) and hand it to the address family.

    The retransmit queue keeps the original; header_release() promises it
    will never look at its header area, so the clone may push its header
    into the shared headroom. The header is laid out in C (tcp_hdr_push,
    options in Linux's order: MSS, SACK-permitted, timestamps, window
    scale); af_ops.send_check then writes the family's pseudo-header sum.
    """
    tcb = skb.cb
    now = sk.tcp_mstamp
    if clone_it:
        tcb.tx_time = now
        if tcb.first_tx is None:
            tcb.first_tx = now
        skb.header_release()
        skb_out = skb.clone()
    else:
        skb_out = skb
    flags = tcb.tcp_flags
    ts = None
    sack = ()
    cookie = None
    if flags & TCPHDR_SYN:
        if sk.fastopen_req is not None:
            cookie = sk.fastopen_req.cookie
        if sk.tstamp_enabled:
            ts = (sk.tcp_time_stamp(), sk.rx_opt.ts_recent if flags & TCPHDR_ACK else 0)
        mss, sack_perm = sk.advmss, sk.sack_enabled
        wscale = sk.rx_opt.rcv_wscale if sk.wscale_enabled else -1
        window = min(sk.rcv_wnd, 65535)   # RFC 7323 §2.2: a SYN's window is never scaled
    else:
        if sk.rx_opt.tstamp_ok:
            ts = (sk.tcp_time_stamp(), sk.rx_opt.ts_recent)
        mss, sack_perm, wscale = 0, False, -1
        window = tcp_select_window(sk)
        if sk.selective_acks:
            sack = sk.selective_acks[:3 if ts else 4]      # what fits in 40 bytes
    if not flags & TCPHDR_ACK:
        sack = ()
    if flags & TCPHDR_ACK:
        tcp_event_ack_sent(sk)
    if len(skb_out):
        sk.lsndtime = now
    if tcb.pcount > 1:
        skb_out.gso_size = sk.mss_cache
        skb_out.gso_segs = tcb.pcount
        skb_out.gso_type = SKB_GSO_TCPV4
    skb_out.cb = None
    skb_out.sk = sk
    sk.stats["OutSegs"] += tcb.pcount
    ack = sk.rcv_nxt if flags & TCPHDR_ACK else 0
    if (not flags & TCPHDR_SYN and sk.af_ops.queue_xmit is ip_queue_xmit
            and skbtrace.hook is None and tcp_v4_transmit_direct(sk, skb_out, tcb, ack, flags,
                                                                 window, ts, sack)):
        return 0
    tcp_hdr_push(skb_out, sk.sport, sk.dport, tcb.seq, ack,
                 flags, window, 0, 0, ts=ts, sack=sack, mss=mss, wscale=wscale,
                 sack_perm=sack_perm, fastopen=cookie, fastopen_exp=sk.syn_fastopen_exp,
                 partial=True)
    sk.af_ops.send_check(sk, skb_out)
    return sk.af_ops.queue_xmit(sk, skb_out)


def tcp_v4_transmit_direct(sk, skb, tcb, ack, flags, window, ts, sack):
    """A segment of a connection on a valid cached route whose frame can go
    straight to the driver (ip_direct_hh): its TCP, IPv4 and link headers in
    one C call (tcp_v4_frame_push), then the driver. False (nothing done)
    when the route or neighbour need the layers of ip_queue_xmit."""
    rt = __sk_dst_check(sk)
    if rt is None or rt.output is not ip_output:
        return False
    thlen = 20 + (12 if ts is not None else 0) + (4 + 8 * len(sack) if sack else 0)
    length = 20 + thlen + len(skb)
    gso_seglen = 20 + thlen + skb.gso_size if skb.gso_size else 0
    net = sk.net
    hh = ip_direct_hh(net, rt, length, gso_seglen, skb.gso_type, True)
    if hh is None or skb.headroom < 20 + thlen + len(hh):
        return False
    saddr = sk.saddr or rt.saddr
    df = ip_dont_fragment(sk)
    ident = ip_select_ident(net, sk, sk.daddr, saddr, IPPROTO_TCP, df, max(skb.gso_segs, 1))
    tcp_v4_frame_push(skb, hh, saddr, sk.daddr, sk.sport, sk.dport, tcb.seq, ack, flags,
                      window, ts, sack, ident, sk.ttl if sk.ttl >= 0 else net.sysctl_ip_default_ttl,
                      sk.tos, df, True)
    skb.dst = rt
    dev_xmit_direct(net, rt.dev, skb)
    return True


def tcp_init_nondata_skb(sk, seq, flags):
    skb = SKB(MAX_TCP_HEADER)
    skb.reserve(MAX_TCP_HEADER)
    skb.cb = TcpSkbCb(seq, seq_add(seq, 1 if flags & (TCPHDR_SYN | TCPHDR_FIN) else 0), flags)
    return skb


def tcp_acceptable_seq(sk):
    """snd_nxt, unless the peer's window shrank below it (RFC 9293 §3.8.6.2.1)."""
    wnd_end = seq_add(sk.snd_una, sk.snd_wnd)
    return sk.snd_nxt if not after(sk.snd_nxt, wnd_end) else wnd_end


def tcp_send_ack(sk):
    """A bare ACK, sent now, not kept for retransmission."""
    if sk.state == TcpState.CLOSE:
        return
    tcp_transmit_skb(sk, tcp_init_nondata_skb(sk, tcp_acceptable_seq(sk), TCPHDR_ACK),
                     clone_it=False)


def tcp_event_ack_sent(sk):
    if sk.ack_quick:
        sk.ack_quick -= 1
    sk.ack_sched = sk.ack_now = False
    sk.delack_timer.delete()


def tcp_send_delayed_ack(sk):
    """Arm the delayed-ACK timer (RFC 1122 §4.2.3.2; RFC 5681 §4.2: under
    500 ms). An already armed timer keeps its earlier expiry."""
    if not sk.delack_timer.pending:
        sk.delack_timer.mod(sk.tcp_mstamp + (sk.ack_ato or sk.delack_timer_min))


def tcp_send_active_reset(sk):
    """RST for an abort (RFC 9293 §3.10.5 ABORT, SO_LINGER 0, unread data at close)."""
    tcp_transmit_skb(sk, tcp_init_nondata_skb(sk, tcp_acceptable_seq(sk), TCPHDR_ACK | TCPHDR_RST),
                     clone_it=False)


# -- connect ------------------------------------------------------------------------
def tcp_connect_init(sk):
    sk.rx_opt.mss_clamp = 65535
    tcp_sync_mss(sk, sk.pmtu)
    sk.advmss = sk.pmtu - sk.af_ops.net_header_len - 20
    if sk.rx_opt.user_mss:
        sk.advmss = min(sk.advmss, sk.rx_opt.user_mss)
    sk.rcv_mss = min(sk.advmss, sk.mss_cache)
    sk.rcv_wnd, sk.rx_opt.rcv_wscale = tcp_select_initial_window(
        tcp_space(sk), sk.window_clamp, sk.wscale_enabled, sk.scaling_ratio)
    sk.rcv_wup = 0
    sk.rcv_nxt = 0
    sk.copied_seq = 0
    sk.snd_una = sk.write_seq
    sk.snd_nxt = sk.write_seq
    sk.snd_sml = sk.write_seq
    sk.rto = sk.rto_initial
    sk.retransmits = 0
    sk.backoff = 0


def tcp_connect_queue_skb(sk, skb):
    """Charge the SYN to the socket and put it on the retransmit queue."""
    tcb = skb.cb
    sk.sk_wmem_queued += skb.truesize
    sk.write_seq = tcb.end_seq
    sk.pushed_seq = sk.write_seq
    sk.rtx_queue.append(skb)
    sk.packets_out += 1


def tcp_connect(sk):
    """Build and send the SYN (RFC 9293 §3.10.1 active OPEN)."""
    tcp_connect_init(sk)
    skb = tcp_init_nondata_skb(sk, sk.write_seq, TCPHDR_SYN)
    tcp_connect_queue_skb(sk, skb)
    sk.snd_nxt = sk.write_seq
    if sk.fastopen_req is not None:
        fastopen.tcp_send_syn_data(sk, skb)
    else:
        tcp_transmit_skb(sk, skb)
    inet_csk_reset_xmit_timer(sk, ICSK_TIME_RETRANS, sk.rto)


def tcp_make_synack(listener, req):
    """The SYN-ACK for a request sock (RFC 9293 §3.10.7.2); its sender
    (TcpHashinfo.send_reply) writes the pseudo-header sum."""
    skb = SKB(MAX_TCP_HEADER)
    skb.reserve(MAX_TCP_HEADER)
    ts = None
    if req.tstamp_ok:
        ts = ((int(listener.tcp_mstamp * 1000) + req.ts_off) & 0xFFFFFFFF, req.ts_recent)
    ack = req.rcv_nxt if req.rcv_nxt is not None else seq_add(req.rcv_isn, 1)
    tcp_hdr_push(skb, req.sport, req.dport, req.snt_isn, ack,
                 TCPHDR_SYN | TCPHDR_ACK, min(req.rcv_wnd, 65535), 0, 0, ts=ts,
                 mss=listener.advmss, wscale=req.rcv_wscale if req.wscale_ok else -1,
                 sack_perm=req.sack_ok, fastopen=req.tfo_cookie, fastopen_exp=req.tfo_exp,
                 partial=True)
    return skb


def tcp_send_synack(sk):
    """Simultaneous open (RFC 9293 §3.10.7.3): our SYN, still on the
    retransmit queue, becomes a SYN-ACK and goes again."""
    skb = sk.rtx_queue[0]
    skb.cb.tcp_flags |= TCPHDR_ACK
    tcp_transmit_skb(sk, skb)


# -- sending data ---------------------------------------------------------------------
def tcp_push(sk):
    if sk.write_queue:
        sk.write_queue[-1].cb.tcp_flags |= TCPHDR_PSH
        sk.pushed_seq = sk.write_seq
    tcp_push_pending_frames(sk, sk.nonagle)


def tcp_push_pending_frames(sk, nonagle=None):
    """Send what may go now; if nothing is in flight and the peer's window
    holds the rest back, start the persist timer (RFC 9293 §3.8.6.1)."""
    if sk.state == TcpState.CLOSE or not sk.write_queue:
        return
    if tcp_write_xmit(sk, sk.mss_cache, sk.nonagle if nonagle is None else nonagle):
        tcp_check_probe_timer(sk)


def tcp_set_skb_tso_segs(skb, mss):
    n = len(skb)
    skb.cb.pcount = 1 if n <= mss else -(-n // mss)


def tcp_cwnd_test(sk, skb):
    """Segments cwnd still allows (RFC 5681 §3.1)."""
    in_flight = sk.packets_in_flight()
    cwnd = sk.snd_cwnd
    if in_flight >= cwnd:
        # a lone FIN is not held back by cwnd (as Linux does)
        return 1 if skb.cb.tcp_flags & TCPHDR_FIN and skb.cb.pcount == 1 else 0
    return cwnd - in_flight


def tcp_wnd_end(sk):
    return seq_add(sk.snd_una, sk.snd_wnd)


def tcp_snd_wnd_test(sk, skb, mss):
    """Does the first segment of skb fit in the peer's window?"""
    end_seq = skb.cb.end_seq
    if len(skb) > mss:
        end_seq = seq_add(skb.cb.seq, mss)
    return not after(end_seq, tcp_wnd_end(sk))


def tcp_minshall_check(sk):
    """A small segment is still unacknowledged (Minshall's Nagle variant)."""
    return after(sk.snd_sml, sk.snd_una) and not after(sk.snd_sml, sk.snd_nxt)


def tcp_nagle_check(partial, sk, nonagle):
    """True if Nagle (RFC 896, RFC 1122 §4.2.3.4) holds a partial segment back."""
    return partial and ((nonagle & TCP_NAGLE_CORK) or
                        (not nonagle and sk.packets_out and tcp_minshall_check(sk)))


def tcp_nagle_test(sk, skb, mss, nonagle):
    if nonagle & TCP_NAGLE_PUSH:
        return True
    if skb.cb.tcp_flags & TCPHDR_FIN:
        return True
    return not tcp_nagle_check(len(skb) < mss, sk, nonagle)


def tcp_mss_split_point(sk, skb, mss, max_segs, nonagle):
    """How much of a multi-segment skb goes now: bounded by cwnd (max_segs)
    and the peer's window; a trailing partial segment only if Nagle allows."""
    window = (tcp_wnd_end(sk) - skb.cb.seq) & 0xFFFFFFFF
    max_len = mss * max_segs
    if max_len <= window and skb is not sk.write_queue[-1]:
        return max_len
    needed = min(len(skb), window)
    if max_len <= needed:
        return max_len
    partial = needed % mss
    if tcp_nagle_check(partial != 0, sk, nonagle):
        return needed - partial
    return needed


def tcp_fragment(sk, queue, index, skb, length):
    """Split skb (queue[index]) after `length` bytes; the tail becomes a new
    skb right behind it. Loss-recovery marks and counts follow both halves."""
    tcb = skb.cb
    mss = sk.mss_cache
    rest = SKB(MAX_TCP_HEADER + len(skb) - length)
    rest.reserve(MAX_TCP_HEADER)
    rest.put_data(skb.data[length:])
    skb.trim(length)
    split_seq = seq_add(tcb.seq, length)
    rcb = TcpSkbCb(split_seq, tcb.end_seq, tcb.tcp_flags)
    rcb.sacked = tcb.sacked
    rcb.tx_time = tcb.tx_time
    rcb.first_tx = tcb.first_tx
    tcb.end_seq = split_seq
    tcb.tcp_flags &= ~(TCPHDR_FIN | TCPHDR_PSH)   # they belong to the last byte
    rest.cb = rcb
    old = tcb.pcount
    tcp_set_skb_tso_segs(skb, mss)
    tcp_set_skb_tso_segs(rest, mss)
    if queue is sk.rtx_queue:
        diff = tcb.pcount + rcb.pcount - old
        sk.packets_out += diff
        if tcb.sacked & TCPCB_LOST:
            sk.lost_out += diff
        if tcb.sacked & TCPCB_SACKED_RETRANS:
            sk.retrans_out += diff
        if tcb.sacked & TCPCB_SACKED_ACKED:
            sk.sacked_out += diff
    sk.sk_wmem_queued += rest.truesize
    queue.insert(index + 1, rest)
    return rest


def tcp_event_new_data_sent(sk, skb):
    """skb left for the first time: it moves to the retransmit queue.
    Returns True when the RTO must be (re)armed now (nothing was in flight,
    or a probe's timer was running): the caller does it, unless it arms a
    loss probe at once, whose timer replaces the RTO's anyway."""
    prior_packets = sk.packets_out
    sk.write_queue.popleft()
    sk.rtx_queue.append(skb)
    tcb = skb.cb
    sk.snd_nxt = tcb.end_seq
    sk.packets_out += tcb.pcount
    if len(skb) < sk.mss_cache:
        sk.snd_sml = tcb.end_seq
    return not prior_packets or sk.pending in _PROBE_TIMERS


def tcp_write_xmit(sk, mss, nonagle, push_one=0):
    """The one send loop. Returns True when data is left unsent with
    nothing in flight (the caller then starts the persist timer).
    push_one: 1 sends at most one skb, 2 one segment whatever cwnd says
    (a loss probe, RFC 8985 §7.3)."""
    sent = 0
    rearm = False
    sk.is_cwnd_limited = False
    wq = sk.write_queue
    while wq:
        skb = wq[0]
        tcp_set_skb_tso_segs(skb, mss)
        cwnd_quota = tcp_cwnd_test(sk, skb)
        if not cwnd_quota:
            sk.is_cwnd_limited = True
            if push_one != 2:
                break
            cwnd_quota = 1
        if not tcp_snd_wnd_test(sk, skb, mss):
            break
        if skb.cb.pcount == 1:
            if not tcp_nagle_test(sk, skb, mss, nonagle | (TCP_NAGLE_PUSH if wq[-1] is not skb else 0)):
                break
            limit = mss
        else:
            limit = tcp_mss_split_point(sk, skb, mss, cwnd_quota, nonagle)
        if len(skb) > limit:
            if limit == 0:
                break
            tcp_fragment(sk, wq, 0, skb, limit)
        tcp_transmit_skb(sk, skb)
        rearm |= tcp_event_new_data_sent(sk, skb)
        sent += skb.cb.pcount
        if push_one:
            break
    if not (sent and push_one != 2 and tcp_schedule_loss_probe(sk, False)) and rearm:
        tcp_rearm_rto(sk)
    # slow start grows only a window that is being used (RFC 7661)
    if sk.packets_in_flight() * 2 > sk.snd_cwnd and sk.snd_cwnd < sk.snd_ssthresh:
        sk.is_cwnd_limited = True
    return not sk.packets_out and bool(wq)


def tcp_send_fin(sk):
    """Queue our FIN behind any unsent data (RFC 9293 §3.10.4 CLOSE)."""
    wq = sk.write_queue
    if wq:
        tcb = wq[-1].cb
        tcb.tcp_flags |= TCPHDR_FIN
        tcb.end_seq = seq_add(tcb.end_seq, 1)
    else:
        skb = tcp_init_nondata_skb(sk, sk.write_seq, TCPHDR_ACK | TCPHDR_FIN)
        wq.append(skb)
        sk.sk_wmem_queued += skb.truesize
    sk.write_seq = seq_add(sk.write_seq, 1)
    sk.fin_sent = True
    tcp_push_pending_frames(sk, TCP_NAGLE_OFF)


# -- retransmission -------------------------------------------------------------------
def tcp_retransmit_skb(sk, index, segs=1):
    """Send rtx_queue[index] again, at most `segs` segments of it."""
    skb = sk.rtx_queue[index]
    tcb = skb.cb
    mss = sk.mss_cache
    if len(skb) > mss * segs:
        tcp_fragment(sk, sk.rtx_queue, index, skb, mss * segs)
    else:
        tcp_set_skb_tso_segs(skb, mss)
    if sk.retrans_stamp is None:
        sk.retrans_stamp = tcb.first_tx
    tcp_transmit_skb(sk, skb)
    if sk.undo_tsval is None and sk.in_recovery() and sk.rx_opt.tstamp_ok:
        sk.undo_tsval = sk.tcp_time_stamp()       # for Eifel detection (RFC 3522)
    tcb.ack_seq = sk.snd_nxt      # as Linux: what was sent before this retransmission
    if not tcb.sacked & TCPCB_SACKED_RETRANS:
        sk.retrans_out += tcb.pcount
    tcb.sacked |= TCPCB_SACKED_RETRANS | TCPCB_EVER_RETRANS
    sk.stats["RetransSegs"] += tcb.pcount
    return tcb.pcount


def tcp_xmit_retransmit_queue(sk):
    """Retransmit the segments marked lost, as far as cwnd allows."""
    i = 0
    rtx = sk.rtx_queue
    while i < len(rtx) and sk.lost_out > sk.retrans_out:
        quota = sk.snd_cwnd - sk.packets_in_flight()
        if quota <= 0:
            break
        sacked = rtx[i].cb.sacked
        if sacked & TCPCB_LOST and not sacked & (TCPCB_SACKED_RETRANS | TCPCB_SACKED_ACKED):
            tcp_retransmit_skb(sk, i, quota)
        i += 1


# -- timers the output path arms ------------------------------------------------------
def inet_csk_reset_xmit_timer(sk, what, when):
    sk.pending = what
    sk.retransmit_timer.mod(sk.tcp_mstamp + (when if when < TCP_RTO_MAX else TCP_RTO_MAX))


def inet_csk_clear_xmit_timer(sk):
    sk.pending = 0
    sk.retransmit_timer.delete()


def tcp_rto_delta(sk):
    """Time left until the RTO of the earliest outstanding segment."""
    return sk.rtx_queue[0].cb.tx_time + sk.rto - sk.tcp_mstamp


def tcp_rearm_rto(sk):
    """RFC 6298 §5.1/5.2: a timer runs while data is outstanding. Replacing
    a reordering or probe timer keeps the RTO counted from the earliest
    segment's send, so those timers never postpone it (RFC 8985 §7.2)."""
    if not sk.packets_out:
        inet_csk_clear_xmit_timer(sk)
        return
    rto = sk.rto
    if sk.pending in (ICSK_TIME_REO_TIMEOUT, ICSK_TIME_LOSS_PROBE):
        rto = max(tcp_rto_delta(sk), 0.0)
    inet_csk_reset_xmit_timer(sk, ICSK_TIME_RETRANS, rto)


def tcp_set_xmit_timer(sk):
    """After an ACK that acknowledged new data: a loss probe if one may
    go, else the RTO."""
    if not tcp_schedule_loss_probe(sk, True):
        tcp_rearm_rto(sk)


# -- tail loss probe (RFC 8985 §7; Linux's tcp_schedule_loss_probe) ----------------------
def tcp_schedule_loss_probe(sk, advancing_rto):
    """Arm the probe timeout (PTO) instead of the RTO: two SRTTs, plus room
    for a delayed ACK when a single segment is out (RFC 8985 §7.2), never
    later than the RTO. Only in the Open state of a SACK connection: in
    recovery, RACK and SACK already repair losses."""
    if (not sk.packets_out or not sk.rx_opt.sack_ok or sk.ca_state != TCP_CA_Open
            or sk.state in (TcpState.SYN_SENT, TcpState.SYN_RECV)):
        return False
    if sk.srtt is not None:
        timeout = 2 * sk.srtt + (TCP_RTO_MIN if sk.packets_out == 1 else TCP_TIMEOUT_MIN)
    else:
        timeout = TCP_TIMEOUT_INIT
    rto_delta = sk.rto if advancing_rto else tcp_rto_delta(sk)
    if rto_delta > 0:
        timeout = min(timeout, rto_delta)
    inet_csk_reset_xmit_timer(sk, ICSK_TIME_LOSS_PROBE, timeout)
    return True


def tcp_send_loss_probe(sk):
    """The PTO fired (RFC 8985 §7.3): send one new segment if the peer's
    window allows, else retransmit the last segment sent, so that a lost
    tail draws a SACK and RACK repairs it without an RTO. One probe is
    outstanding at a time (tlp_high_seq); the RTO is armed behind it."""
    mss = sk.mss_cache
    wq = sk.write_queue
    if wq and tcp_snd_wnd_test(sk, wq[0], mss):
        prior = sk.packets_out
        tcp_write_xmit(sk, mss, TCP_NAGLE_OFF, push_one=2)
        if sk.packets_out > prior:
            sk.tlp_retrans = False
            sk.tlp_high_seq = sk.snd_nxt
            sk.stats["TCPLossProbes"] += 1
    elif sk.tlp_high_seq is None and sk.rtx_queue:
        rtx = sk.rtx_queue
        skb = rtx[-1]
        pcount = skb.cb.pcount
        if pcount > 1 and len(skb) > (pcount - 1) * mss:
            tcp_fragment(sk, rtx, len(rtx) - 1, skb, (pcount - 1) * mss)
        tcb = rtx[-1].cb
        if len(rtx[-1]) and not tcb.sacked & TCPCB_SACKED_ACKED:
            tcp_retransmit_skb(sk, len(rtx) - 1, 1)
            sk.tlp_retrans = True
            sk.tlp_high_seq = sk.snd_nxt
            sk.stats["TCPLossProbes"] += 1
    tcp_rearm_rto(sk)


def tcp_probe0_when(sk):
    return min(sk.rto * (1 << sk.backoff), TCP_RTO_MAX)


def tcp_check_probe_timer(sk):
    if not sk.packets_out and not sk.pending:
        inet_csk_reset_xmit_timer(sk, ICSK_TIME_PROBE0, tcp_probe0_when(sk))


def tcp_xmit_probe_skb(sk):
    """A segment the peer must answer: one already acknowledged byte back,
    no data (RFC 9293 §3.8.6.1 allows a probe without data; Linux sends this)."""
    skb = tcp_init_nondata_skb(sk, seq_add(sk.snd_una, -1), TCPHDR_ACK)
    tcp_transmit_skb(sk, skb, clone_it=False)


def tcp_write_wakeup(sk):
    """Persist or keepalive probe: new data if the window allows, else a bare probe."""
    if sk.state == TcpState.CLOSE:
        return False
    wq = sk.write_queue
    if wq and before(wq[0].cb.seq, tcp_wnd_end(sk)):
        skb = wq[0]
        mss = sk.mss_cache
        seg = min((tcp_wnd_end(sk) - skb.cb.seq) & 0xFFFFFFFF, mss)
        if len(skb) > seg:
            tcp_fragment(sk, wq, 0, skb, seg)
        skb.cb.tcp_flags |= TCPHDR_PSH
        tcp_set_skb_tso_segs(skb, mss)
        tcp_transmit_skb(sk, skb)
        if tcp_event_new_data_sent(sk, skb):
            tcp_rearm_rto(sk)
        return True
    tcp_xmit_probe_skb(sk)
    return False


def tcp_send_probe0(sk):
    """The persist timer fired (RFC 9293 §3.8.6.1): probe the zero window,
    backing off like the RTO."""
    tcp_write_wakeup(sk)
    if sk.packets_out or not sk.write_queue:
        sk.probes_out = 0
        sk.backoff = 0
        return
    sk.probes_out += 1
    if sk.backoff < sk.retries2:
        sk.backoff += 1
    inet_csk_reset_xmit_timer(sk, ICSK_TIME_PROBE0, tcp_probe0_when(sk))
