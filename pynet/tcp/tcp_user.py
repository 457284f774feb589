"""What a user does with a TCP socket (Linux's net/ipv4/tcp.c and
inet_connection_sock.c): send, receive, shutdown, close, listen, accept,
and the options that change sending. Every call is given `now`.
"""
import errno

from pynet.skbuff import SKB
from pynet.tcp import fastopen
from pynet.tcp import tcp_input as inp
from pynet.tcp import tcp_output as out
from pynet.tcp.tcp import (
    MAX_TCP_HEADER, RCV_SHUTDOWN, SEND_SHUTDOWN, TCP_NAGLE_CORK, TCP_NAGLE_OFF, TCPHDR_ACK,
    TCPHDR_FIN, TcpSkbCb, TcpState, seq_add,
)

_S = TcpState
_SEND_STATES = frozenset((_S.ESTABLISHED, _S.CLOSE_WAIT))
_WINDOW_UPDATE_STATES = frozenset((_S.ESTABLISHED, _S.FIN_WAIT1, _S.FIN_WAIT2))


def tcp_sendmsg(sk, data, now):
    """Queue user data; returns the bytes taken (0: the send buffer is full).

    Data is appended to the tail skb while it has room up to the size goal,
    so a stream of small writes still makes full-sized segments.
    """
    sk.tcp_mstamp = now
    if sk.sk_err:
        raise OSError(sk.sk_err, "socket error")
    if sk.sk_shutdown & SEND_SHUTDOWN:
        raise OSError(errno.EPIPE, "send after shutdown")
    if sk.defer_connect:
        return fastopen.tcp_sendmsg_fastopen(sk, data, now)
    # a Fast Open child may answer before the handshake's ACK (RFC 7413 §4.2.2)
    if sk.state not in _SEND_STATES and not (
            sk.state == TcpState.SYN_RECV and sk.fastopen_rsk is not None):
        if sk.state in (TcpState.SYN_SENT, TcpState.SYN_RECV):
            return 0
        raise OSError(errno.ENOTCONN, "not connected")
    view = memoryview(data).cast("B")
    size_goal = out.tcp_size_goal(sk)
    copied = 0
    total = len(view)
    while copied < total:
        skb = sk.write_queue[-1] if sk.write_queue else None
        # a tail skb built for a smaller size goal (the MSS changed) may be full early
        if skb is None or len(skb) >= size_goal or not skb.tailroom or skb.cb.tcp_flags & TCPHDR_FIN:
            if sk.sk_wmem_queued >= sk.sk_sndbuf:
                break
            skb = SKB(MAX_TCP_HEADER + size_goal)
            skb.reserve(MAX_TCP_HEADER)
            skb.cb = TcpSkbCb(sk.write_seq, sk.write_seq, TCPHDR_ACK)
            sk.write_queue.append(skb)
            sk.sk_wmem_queued += skb.truesize
        n = min(size_goal - len(skb), total - copied, skb.tailroom)
        skb.put_data(view[copied:copied + n])
        skb.cb.end_seq = seq_add(skb.cb.end_seq, n)
        sk.write_seq = seq_add(sk.write_seq, n)
        copied += n
    if copied:
        out.tcp_push(sk)
    return copied


def tcp_cleanup_rbuf(sk):
    """After the user read: if the window we could offer has at least
    doubled, tell the peer now (a window update), rather than leave it
    stalled on a small or zero window."""
    if sk.state not in _WINDOW_UPDATE_STATES:
        return
    now_win = sk.receive_window()
    # No window can be over what the free buffer holds: with the window still
    # at least half of that, none would double it. Saves __tcp_select_window
    # on most reads (Linux skips it much the same way, unless
    # 2 * tcp_receive_window <= window_clamp).
    if 2 * now_win > out.tcp_win_from_space(sk, out.tcp_space(sk)):
        return
    new_win = out.__tcp_select_window(sk)
    if new_win and new_win >= 2 * now_win and new_win - now_win >= sk.rcv_mss:
        out.tcp_send_ack(sk)


def _tcp_recv_check(sk, now):
    """What a read finds when the receive queue is empty: the pending
    error, b"" after the peer's FIN, or BlockingIOError; None if data is there."""
    sk.tcp_mstamp = now
    if sk.receive_queue:
        return None
    if sk.sk_err:
        err, sk.sk_err = sk.sk_err, 0
        raise OSError(err, errno.errorcode.get(err, "error"))
    if sk.sk_shutdown & RCV_SHUTDOWN:
        return b""
    if sk.state in (_S.CLOSE, _S.LISTEN):
        raise OSError(errno.ENOTCONN, "not connected")
    raise BlockingIOError(errno.EAGAIN, "no data")


def _tcp_recv_consume(sk, n, sink):
    """Hand up to n bytes of the receive queue to sink(view) -- views of
    the skbs themselves, copied by the sink once -- and free what was read."""
    rq = sk.receive_queue
    got = 0
    while rq and got < n:
        skb = rq[0]
        take = min(len(skb), n - got)
        with skb.data as view:
            sink(view[:take])      # a view of its own, alive past this block
        got += take
        if take == len(skb):
            rq.popleft()
            sk.sk_rmem_alloc -= skb.truesize      # charged whole until freed
        else:
            skb.pull(take)
    sk.copied_seq = seq_add(sk.copied_seq, got)
    tcp_cleanup_rbuf(sk)
    return got


def tcp_recvmsg(sk, n, now):
    """Up to n bytes of in-order data; b"" once the peer's FIN was read.
    BlockingIOError when nothing is there yet. Every byte is copied once,
    from the skbs straight into the bytes returned."""
    empty = _tcp_recv_check(sk, now)
    if empty is not None:
        return empty
    parts = []
    _tcp_recv_consume(sk, n, parts.append)
    data = b"".join(parts)
    for view in parts:
        view.release()          # the skbs may be reused or reallocated now
    return data


def tcp_recvmsg_into(sk, buf, now):
    """recv_into: copy up to len(buf) bytes of in-order data into the
    caller's writable buffer and return the count; 0 once the peer's FIN was
    read; BlockingIOError when nothing is there yet."""
    empty = _tcp_recv_check(sk, now)
    if empty is not None:
        return 0
    out = memoryview(buf).cast("B")
    pos = [0]

    def sink(view):
        end = pos[0] + len(view)
        out[pos[0]:end] = view
        pos[0] = end

    with out:
        return _tcp_recv_consume(sk, len(out), sink)


def tcp_shutdown(sk, how, now):
    """shutdown(SHUT_WR) sends our FIN once queued data is out (RFC 9293 §3.10.4)."""
    sk.tcp_mstamp = now
    if how & SEND_SHUTDOWN and not sk.sk_shutdown & SEND_SHUTDOWN:
        sk.sk_shutdown |= SEND_SHUTDOWN
        if tcp_close_state(sk):
            out.tcp_send_fin(sk)
    sk.sk_shutdown |= how & RCV_SHUTDOWN


def tcp_close_state(sk):
    """The state after our FIN; True if a FIN is to be sent."""
    nxt = {_S.ESTABLISHED: _S.FIN_WAIT1, _S.SYN_RECV: _S.FIN_WAIT1,
           _S.CLOSE_WAIT: _S.LAST_ACK}.get(sk.state)
    if nxt is None:
        return False
    inp.tcp_set_state(sk, nxt)
    return True


def tcp_close(sk, now, linger0=False):
    """close(): the user lets go; TCP finishes the connection alone.
    Unread data or SO_LINGER 0 abort it with a RST (RFC 2525 §2.17, RFC
    9293 §3.10.5)."""
    sk.tcp_mstamp = now
    sk.orphan = True
    if sk.state == _S.LISTEN:
        inet_csk_listen_stop(sk)
        return
    unread = bool(sk.receive_queue)
    sk.receive_queue.clear()
    sk.sk_rmem_alloc = 0
    if sk.state in (_S.CLOSE, _S.SYN_SENT):
        inp.tcp_done(sk)
        return
    if unread or linger0:
        out.tcp_send_active_reset(sk)
        inp.tcp_done(sk)
        return
    sk.sk_shutdown |= RCV_SHUTDOWN
    if not sk.sk_shutdown & SEND_SHUTDOWN:
        sk.sk_shutdown |= SEND_SHUTDOWN
        if tcp_close_state(sk):
            out.tcp_send_fin(sk)
    if sk.state == _S.FIN_WAIT2:
        sk.keepalive_timer.mod(now + sk.linger2)


def inet_listen(sk, hashinfo, addr, port, backlog):
    """bind() and listen(): a passive OPEN (RFC 9293 §3.10.1)."""
    if sk.state not in (_S.CLOSE, _S.LISTEN):
        raise OSError(errno.EINVAL, "socket is connected")
    sk.saddr, sk.sport = addr, port
    sk.backlog = max(backlog, 0)
    # the MSS our SYN-ACKs announce; children take their path MTU from here too
    sk.advmss = sk.pmtu - sk.af_ops.net_header_len - 20
    if sk.state != _S.LISTEN:
        hashinfo.listen_hash(sk)
        sk.state = _S.LISTEN


def inet_csk_listen_stop(sk):
    """Close a listener: pending handshakes are forgotten, children nobody
    accepted are reset."""
    for req in list(sk.syn_queue.values()):
        req.timer.delete()
    sk.syn_queue.clear()
    while sk.accept_queue:
        child = sk.accept_queue.popleft()
        child.tcp_mstamp = sk.tcp_mstamp
        out.tcp_send_active_reset(child)
        inp.tcp_done(child)
    sk.hashinfo.unhash(sk)
    sk.state = _S.CLOSE


def inet_accept(sk):
    """The next established child, or BlockingIOError."""
    if sk.state != _S.LISTEN:
        raise OSError(errno.EINVAL, "not listening")
    if not sk.accept_queue:
        raise BlockingIOError(errno.EAGAIN, "no connection")
    child = sk.accept_queue.popleft()
    child.parent = None
    return child


def tcp_sock_set_nodelay(sk, on, now):
    """TCP_NODELAY: no Nagle; setting it pushes what waits."""
    sk.tcp_mstamp = now
    if on:
        sk.nonagle |= TCP_NAGLE_OFF
        out.tcp_push_pending_frames(sk)
    else:
        sk.nonagle &= ~TCP_NAGLE_OFF


def tcp_sock_set_cork(sk, on, now):
    """TCP_CORK: hold partial segments until uncorked."""
    sk.tcp_mstamp = now
    if on:
        sk.nonagle |= TCP_NAGLE_CORK
    else:
        sk.nonagle &= ~TCP_NAGLE_CORK
        out.tcp_push_pending_frames(sk)
