"""TCP's timers (Linux's net/ipv4/tcp_timer.c), each a pynet.timer.Timer
callback given `now`: retransmission (RFC 6298), persist, RACK's reordering
timer and the tail loss probe (RFC 8985) share the retransmit timer as in
Linux (icsk_pending says which is armed), the delayed
ACK has its own, and keepalive and FIN_WAIT2 share sk_timer (TIME_WAIT's
timer lives on the small TcpTimewaitSock).
"""
from pynet.tcp import tcp_input as inp
from pynet.tcp import tcp_output as out
from pynet.tcp.sock import ICSK_TIME_LOSS_PROBE, ICSK_TIME_PROBE0, ICSK_TIME_REO_TIMEOUT, ICSK_TIME_RETRANS
from pynet.tcp.tcp import TCP_RTO_MAX, TcpState

_S = TcpState


def tcp_write_timeout(sk):
    """Give up after too many retransmissions or, with TCP_USER_TIMEOUT,
    after that long without progress (RFC 9293 §3.8.3, RFC 5482)."""
    if sk.state in (_S.SYN_SENT, _S.SYN_RECV):
        expired = sk.retransmits >= sk.syn_retries
    else:
        expired = sk.retransmits >= sk.retries2
    if sk.user_timeout and sk.retrans_stamp is not None:
        expired = sk.tcp_mstamp - sk.retrans_stamp >= sk.user_timeout
    if expired:
        inp.tcp_write_err(sk)
    return expired


def tcp_retransmit_timer(sk):
    """RTO expiry (RFC 6298 §5.4-5.6): retransmit the earliest segment,
    enter loss recovery, double the RTO (Karn's backoff)."""
    if not sk.packets_out:
        return
    if tcp_write_timeout(sk):
        return
    sk.stats["TCPTimeouts"] += 1
    inp.tcp_enter_loss(sk)
    out.tcp_retransmit_skb(sk, 0, 1)
    sk.backoff += 1
    sk.retransmits += 1
    sk.rto = min(sk.rto * 2, TCP_RTO_MAX)
    out.inet_csk_reset_xmit_timer(sk, ICSK_TIME_RETRANS, tcp_clamp_rto_to_user_timeout(sk))


def tcp_clamp_rto_to_user_timeout(sk):
    """With TCP_USER_TIMEOUT the next RTO fires no later than the timeout, so the
    connection fails when the user asked, not up to a backed-off RTO later (as Linux)."""
    if not sk.user_timeout or sk.retrans_stamp is None:
        return sk.rto
    remaining = sk.retrans_stamp + sk.user_timeout - sk.tcp_mstamp
    return min(sk.rto, max(remaining, 0.001))


def tcp_probe_timer(sk):
    """Persist timer: the peer's window is zero and data waits."""
    if sk.packets_out or not sk.write_queue:
        sk.probes_out = 0
        return
    if sk.user_timeout and sk.probes_out:
        if sk.tcp_mstamp - sk.rcv_tstamp >= sk.user_timeout:
            inp.tcp_write_err(sk)
            return
    elif sk.probes_out >= sk.retries2:
        inp.tcp_write_err(sk)
        return
    out.tcp_send_probe0(sk)


def tcp_write_timer(sk, now):
    sk.tcp_mstamp = now
    if sk.state in (_S.CLOSE, _S.LISTEN):
        return
    pending = sk.pending
    sk.pending = 0
    if pending == ICSK_TIME_RETRANS:
        tcp_retransmit_timer(sk)
    elif pending == ICSK_TIME_PROBE0:
        tcp_probe_timer(sk)
    elif pending == ICSK_TIME_REO_TIMEOUT:
        inp.tcp_rack_reo_timeout(sk)
    elif pending == ICSK_TIME_LOSS_PROBE:
        out.tcp_send_loss_probe(sk)


def tcp_delack_timer(sk, now):
    """The delayed ACK is due (RFC 1122 §4.2.3.2)."""
    sk.tcp_mstamp = now
    if sk.state == _S.CLOSE or not sk.ack_sched:
        return
    out.tcp_send_ack(sk)


def tcp_set_keepalive(sk, on):
    """SO_KEEPALIVE."""
    sk.keepalive = on
    if on and sk.state not in (_S.CLOSE, _S.LISTEN, _S.SYN_SENT):
        sk.keepalive_timer.mod(sk.tcp_mstamp + sk.keepalive_time)
    elif not on and sk.state != _S.FIN_WAIT2:
        sk.keepalive_timer.delete()


def tcp_keepalive_timer(sk, now):
    """sk_timer: an orphan's FIN_WAIT2 limit, or keepalive
    (RFC 1122 §4.2.3.6): after keepalive_time idle, a probe every
    keepalive_intvl; keepalive_probes unanswered probes end the connection."""
    sk.tcp_mstamp = now
    state = sk.state
    if state == _S.FIN_WAIT2 and sk.orphan:
        out.tcp_send_active_reset(sk)
        inp.tcp_done(sk)
        return
    if not sk.keepalive or state in (_S.CLOSE, _S.LISTEN, _S.SYN_SENT):
        return
    elapsed = sk.keepalive_intvl
    if not sk.packets_out and not sk.write_queue:
        idle = now - max(sk.rcv_tstamp, sk.ack_lrcvtime)
        if idle >= sk.keepalive_time:
            if ((sk.user_timeout and idle >= sk.user_timeout and sk.probes_out) or
                    (not sk.user_timeout and sk.probes_out >= sk.keepalive_probes)):
                out.tcp_send_active_reset(sk)
                inp.tcp_write_err(sk)
                return
            out.tcp_write_wakeup(sk)
            sk.probes_out += 1
        else:
            elapsed = sk.keepalive_time - idle
    sk.keepalive_timer.mod(now + elapsed)
