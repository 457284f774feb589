"""The inet proto_ops (Linux's net/ipv4/af_inet.c): what the generic socket
layer calls for an AF_INET socket, SOCK_STREAM (inet_stream_ops over TCP)
or SOCK_DGRAM (inet_dgram_ops over UDP), plus the option table
(sock_setsockopt, do_ip_setsockopt, do_tcp_setsockopt).

Nothing here blocks: an op that cannot finish raises BlockingIOError and
the caller (pynet.socket, holding the stack lock) waits for the socket's
callbacks. Addresses are host-order ints; `now` is the caller's clock.
"""
import errno
import socket as _socket
import struct

from pynet.sock import TCP_ESTABLISHED
from pynet.tcp import fastopen as tfo
from pynet.tcp import tcp_input as inp
from pynet.tcp.tcp import RCV_SHUTDOWN, SEND_SHUTDOWN, TCP_MIN_MSS, TCP_NAGLE_CORK, TCP_NAGLE_OFF, \
    TcpState
from pynet.tcp.tcp_ipv4 import EPHEMERAL_HIGH, EPHEMERAL_LOW, tcp_v4_connect, tcp_v4_init_sock
from pynet.tcp.tcp_timer import tcp_set_keepalive
from pynet.tcp.tcp_user import inet_accept, inet_listen, tcp_close, tcp_recvmsg, \
    tcp_recvmsg_into, tcp_sendmsg, tcp_shutdown, tcp_sock_set_cork, tcp_sock_set_nodelay
from pynet.udp import UDPSocket, udp_bind, udp_recvmsg
from pynet.wire.ipv4 import IPPROTO_TCP, IPPROTO_UDP

_S = TcpState
SOL_SOCKET, SOL_IP, SOL_TCP = _socket.SOL_SOCKET, _socket.IPPROTO_IP, _socket.IPPROTO_TCP
SYSCTL_RMEM_MAX = SYSCTL_WMEM_MAX = 212992      # net.core.rmem_max / wmem_max
SOCK_MIN_RCVBUF, SOCK_MIN_SNDBUF = 2304, 4608
SOMAXCONN = 4096                                # net.core.somaxconn
SO_BUSY_POLL = 46                               # <asm-generic/socket.h>; not in CPython's socket
MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT = 32767, 32767, 127
MAX_TCP_WINDOW = 32767                          # the largest TCP_MAXSEG a user may set
INET_ECN_MASK = 3
TCP_INFO_FMT = "=8B24I"                         # struct tcp_info up to tcpi_total_retrans
TCP_INFO_LEN = 280                              # sizeof(struct tcp_info), Linux 6.x
TCPI_OPT_TIMESTAMPS, TCPI_OPT_SACK, TCPI_OPT_WSCALE = 1, 2, 4
_CLOSING = (TcpState.FIN_WAIT1, TcpState.CLOSING, TcpState.LAST_ACK)

# -- option values: an int, or a struct passed as bytes ---------------------------------------


def opt_int(value):
    """An int option value as setsockopt gets it: an int, or >= 4 bytes of one."""
    if isinstance(value, int):
        return value
    if len(value) < 4:
        raise OSError(errno.EINVAL, "Invalid argument")
    return int.from_bytes(bytes(value[:4]), "little", signed=True)


def _linger(value):
    if isinstance(value, int) or len(value) < 8:
        raise OSError(errno.EINVAL, "Invalid argument")
    return struct.unpack("ii", bytes(value[:8]))


def _enoprotoopt():
    return OSError(errno.ENOPROTOOPT, "Protocol not available")


def _eopnotsupp():
    """getsockopt at a level the protocol does not have (ip_getsockopt)."""
    return OSError(errno.EOPNOTSUPP, "Operation not supported")


def _set_buf(value, limit, floor):
    """SO_RCVBUF / SO_SNDBUF: capped at the sysctl, doubled for overhead (sock_setsockopt)."""
    return max(min(max(opt_int(value), 0), limit) * 2, floor)


def sock_setsockopt(sk, option, value):
    """SOL_SOCKET options common to every inet socket (True if handled)."""
    if option == _socket.SO_REUSEADDR:
        sk.sk_reuse = bool(opt_int(value))
    elif option == _socket.SO_KEEPALIVE:
        on = bool(opt_int(value))
        if sk.sk_protocol == IPPROTO_TCP:
            tcp_set_keepalive(sk, on)
        else:
            sk.keepalive = on
    elif option == _socket.SO_LINGER:
        onoff, secs = _linger(value)
        sk.linger = (1 if onoff else 0, max(secs, 0) if onoff else secs)
    elif option == _socket.SO_RCVBUF:
        sk.sk_rcvbuf = _set_buf(value, SYSCTL_RMEM_MAX, SOCK_MIN_RCVBUF)
    elif option == _socket.SO_SNDBUF:
        sk.sk_sndbuf = _set_buf(value, SYSCTL_WMEM_MAX, SOCK_MIN_SNDBUF)
    elif option == SO_BUSY_POLL:
        usec = opt_int(value)
        if usec < 0:
            raise OSError(errno.EINVAL, "Invalid argument")
        sk.sk_ll_usec = usec
    else:
        return False
    return True


def sock_getsockopt(sk, option):
    if option == _socket.SO_ERROR:
        return sk.sock_error()
    if option == _socket.SO_REUSEADDR:
        return int(sk.sk_reuse)
    if option == _socket.SO_KEEPALIVE:
        return int(bool(getattr(sk, "keepalive", False)))
    if option == _socket.SO_LINGER:
        return struct.pack("ii", *getattr(sk, "linger", (0, 0)))
    if option == _socket.SO_RCVBUF:
        return sk.sk_rcvbuf
    if option == _socket.SO_SNDBUF:
        return sk.sk_sndbuf
    if option == SO_BUSY_POLL:
        return sk.sk_ll_usec
    if option == _socket.SO_TYPE:
        return sk.sk_type
    if option == _socket.SO_PROTOCOL:
        return sk.sk_protocol
    if option == _socket.SO_DOMAIN:
        return _socket.AF_INET
    if option == _socket.SO_ACCEPTCONN:
        return int(sk.state == _S.LISTEN)
    raise _enoprotoopt()


def ip_setsockopt(sk, option, value):
    if option == _socket.IP_TTL:
        ttl = opt_int(value)
        if ttl != -1 and not 1 <= ttl <= 255:
            raise OSError(errno.EINVAL, "Invalid argument")
        sk.ttl = ttl
    elif option == _socket.IP_TOS:
        tos = opt_int(value) & 0xFF
        if sk.sk_type == _socket.SOCK_STREAM:      # ECN bits belong to TCP (RFC 3168 s6.1.1)
            tos = (tos & ~INET_ECN_MASK) | (sk.tos & INET_ECN_MASK)
        sk.tos = tos
    else:
        return False
    return True


def ip_getsockopt(sk, option):
    if option == _socket.IP_TTL:
        return sk.ttl if sk.ttl != -1 else sk.net.sysctl_ip_default_ttl
    if option == _socket.IP_TOS:
        return sk.tos
    raise _enoprotoopt()


def tcp_setsockopt(sk, option, value, now):
    if option == tfo.TCP_FASTOPEN_KEY:
        if isinstance(value, int):
            raise OSError(errno.EINVAL, "Invalid argument")
        tfo.tcp_fastopen_set_key(sk.net, value, sk)
        return
    val = opt_int(value)
    if option == _socket.TCP_NODELAY:
        tcp_sock_set_nodelay(sk, bool(val), now)
    elif option == _socket.TCP_CORK:
        tcp_sock_set_cork(sk, bool(val), now)
    elif option == _socket.TCP_MAXSEG:
        if val and not TCP_MIN_MSS <= val <= MAX_TCP_WINDOW:
            raise OSError(errno.EINVAL, "Invalid argument")
        sk.rx_opt.user_mss = val
    elif option == _socket.TCP_KEEPIDLE:
        if not 1 <= val <= MAX_TCP_KEEPIDLE:
            raise OSError(errno.EINVAL, "Invalid argument")
        sk.keepalive_time = float(val)
        if sk.keepalive and sk.state not in (_S.CLOSE, _S.LISTEN):
            sk.keepalive_timer.mod(now + sk.keepalive_time)
    elif option == _socket.TCP_KEEPINTVL:
        if not 1 <= val <= MAX_TCP_KEEPINTVL:
            raise OSError(errno.EINVAL, "Invalid argument")
        sk.keepalive_intvl = float(val)
    elif option == _socket.TCP_KEEPCNT:
        if not 1 <= val <= MAX_TCP_KEEPCNT:
            raise OSError(errno.EINVAL, "Invalid argument")
        sk.keepalive_probes = val
    elif option == _socket.TCP_USER_TIMEOUT:
        if val < 0:
            raise OSError(errno.EINVAL, "Invalid argument")
        sk.user_timeout = val / 1000.0
    elif option == tfo.TCP_FASTOPEN:
        tfo.tcp_fastopen_listen(sk, val)
    elif option == tfo.TCP_FASTOPEN_CONNECT:
        tfo.tcp_sock_set_fastopen_connect(sk, bool(val))
    elif option == tfo.TCP_FASTOPEN_NO_COOKIE:
        sk.fastopen_no_cookie = bool(val)
    else:
        raise _enoprotoopt()


def tcp_getsockopt(sk, option):
    if option == _socket.TCP_NODELAY:
        return int(bool(sk.nonagle & TCP_NAGLE_OFF))
    if option == _socket.TCP_CORK:
        return int(bool(sk.nonagle & TCP_NAGLE_CORK))
    if option == _socket.TCP_MAXSEG:
        if sk.rx_opt.user_mss and sk.state in (_S.CLOSE, _S.LISTEN):
            return sk.rx_opt.user_mss
        return sk.mss_cache
    if option == _socket.TCP_KEEPIDLE:
        return int(sk.keepalive_time)
    if option == _socket.TCP_KEEPINTVL:
        return int(sk.keepalive_intvl)
    if option == _socket.TCP_KEEPCNT:
        return sk.keepalive_probes
    if option == _socket.TCP_USER_TIMEOUT:
        return round(sk.user_timeout * 1000)
    if option == _socket.TCP_INFO:
        return tcp_get_info(sk)
    if option == tfo.TCP_FASTOPEN:
        return sk.fastopenq.max_qlen if sk.fastopenq is not None else 0
    if option == tfo.TCP_FASTOPEN_CONNECT:
        return int(sk.fastopen_connect)
    if option == tfo.TCP_FASTOPEN_NO_COOKIE:
        return int(sk.fastopen_no_cookie)
    if option == tfo.TCP_FASTOPEN_KEY:
        return tfo.tcp_fastopen_get_key(sk.net, sk)
    raise _enoprotoopt()


def tcp_get_info(sk):
    """struct tcp_info (tcp_get_info), the fields up to tcpi_total_retrans; times in us."""
    ro = sk.rx_opt
    options = (TCPI_OPT_TIMESTAMPS if ro.tstamp_ok else 0) | (TCPI_OPT_SACK if ro.sack_ok else 0) \
        | (TCPI_OPT_WSCALE if ro.wscale_ok else 0) | tfo.tcpi_options_fastopen(sk)
    now = sk.net.now

    def ago(t):
        return int(max(now - t, 0.0) * 1000) if t else 0

    us = lambda s: int(s * 1e6)       # noqa: E731
    info = struct.pack(
        TCP_INFO_FMT, int(sk.state), sk.ca_state, sk.retransmits, sk.probes_out, sk.backoff,
        options, (ro.snd_wscale | ro.rcv_wscale << 4) if ro.wscale_ok else 0, 0,
        us(sk.rto), us(sk.ack_ato), sk.mss_cache, sk.rcv_mss, sk.packets_out, sk.sacked_out,
        sk.lost_out, sk.retrans_out, 0, ago(sk.lsndtime), 0, 0, ago(sk.rcv_tstamp), sk.pmtu,
        sk.rcv_wnd, us(sk.srtt or 0.0), us(sk.rttvar), min(sk.snd_ssthresh, 0xFFFFFFFF),
        sk.snd_cwnd, sk.advmss, sk.reordering, 0, sk.sk_rcvbuf, sk.stats["RetransSegs"])
    return info.ljust(TCP_INFO_LEN, b"\0")


# -- TCP's local ports (inet_csk_get_port) -------------------------------------------------------
def _bind_table(net):
    table = getattr(net, "tcp_bind_table", None)
    if table is None:
        table = net.tcp_bind_table = {}
    return table


def _bind_conflict(sk, port):
    """inet_csk_bind_conflict: another socket holds port on an overlapping
    address, unless both set SO_REUSEADDR and that one is not listening."""
    hashinfo = sk.hashinfo
    for other in _bind_table(sk.net).get(port, ()):
        if other is sk:
            continue
        if sk.rcv_saddr and other.rcv_saddr and sk.rcv_saddr != other.rcv_saddr:
            continue
        if sk.sk_reuse and other.sk_reuse and other.state != _S.LISTEN:
            continue
        return True
    # connections still hashed on the port (accepted children, TIME_WAIT) count
    # unless SO_REUSEADDR; a listener always does
    if (sk.rcv_saddr, port) in hashinfo.lhash or (0, port) in hashinfo.lhash:
        return True
    return not sk.sk_reuse and hashinfo.bhash.get(port, 0) > 0


def inet_csk_get_port(sk, port):
    table = _bind_table(sk.net)
    if port == 0:
        num = EPHEMERAL_HIGH - EPHEMERAL_LOW + 1
        start = sk.net.rng.randrange(num)
        for i in range(num):
            candidate = EPHEMERAL_LOW + (start + i) % num
            if not _bind_conflict(sk, candidate):
                port = candidate
                break
        else:
            raise OSError(errno.EADDRINUSE, "Address already in use")
    elif _bind_conflict(sk, port):
        raise OSError(errno.EADDRINUSE, "Address already in use")
    sk.sport = port
    table.setdefault(port, []).append(sk)


def inet_put_port(sk):
    socks = _bind_table(sk.net).get(sk.sport)
    if socks and sk in socks:
        socks.remove(sk)
        if not socks:
            del _bind_table(sk.net)[sk.sport]


# -- the ops tables --------------------------------------------------------------------------
class InetStreamOps:
    """inet_stream_ops over TCP."""

    type = _socket.SOCK_STREAM
    protocol = IPPROTO_TCP

    @staticmethod
    def create(net):
        sk = tcp_v4_init_sock(net)
        sk.rcv_saddr = 0
        sk.linger = (0, 0)
        return sk

    @staticmethod
    def bind(sk, addr, port):
        """inet_bind: a local address and port before listen or connect."""
        if sk.state != _S.CLOSE or sk.sport:
            raise OSError(errno.EINVAL, "Invalid argument")
        if addr and not sk.net.fib.is_local(addr):
            raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
        sk.rcv_saddr = sk.saddr = addr
        inet_csk_get_port(sk, port)

    @staticmethod
    def connect(sk, daddr, dport, now):
        """Start an active open; the caller waits for the state to leave SYN_SENT."""
        if dport == 0 and sk.state == _S.CLOSE:
            raise OSError(errno.ECONNREFUSED, "Connection refused")
        tcp_v4_connect(sk, daddr, dport, now)

    @staticmethod
    def connecting(sk):
        return sk.state in (_S.SYN_SENT, _S.SYN_RECV) and not sk.sk_err and not sk.defer_connect

    @staticmethod
    def connect_result(sk):
        """After the wait: 0, or the error that ended the attempt (the socket is closed then)."""
        if sk.state in (_S.SYN_SENT, _S.SYN_RECV) and sk.sk_err:
            inp.tcp_done(sk)     # a fatal error while connecting ends it (tcp_v4_err)
        if sk.state == _S.CLOSE:
            return sk.sock_error() or errno.ECONNABORTED
        return 0

    @staticmethod
    def listen(sk, backlog):
        if sk.state not in (_S.CLOSE, _S.LISTEN) or sk.sk_shutdown:
            raise OSError(errno.EINVAL, "Invalid argument")
        if not sk.sport:
            inet_csk_get_port(sk, 0)
        # Linux's accept queue is full only past backlog entries (sk_acceptq_is_full)
        inet_listen(sk, sk.hashinfo, sk.rcv_saddr, sk.sport, min(max(backlog, 0), SOMAXCONN) + 1)

    @staticmethod
    def accept(sk):
        return inet_accept(sk)

    @staticmethod
    def sendmsg(sk, data, now):
        """Queue data; BlockingIOError when nothing fits (or still connecting)."""
        err = sk.sock_error()
        if err:
            raise OSError(err, "")
        if sk.sk_shutdown & SEND_SHUTDOWN or sk.state not in (
                _S.ESTABLISHED, _S.CLOSE_WAIT, _S.SYN_SENT, _S.SYN_RECV):
            raise OSError(errno.EPIPE, "")       # sk_stream_wait_connect
        if not len(data):
            return 0
        n = tcp_sendmsg(sk, data, now)
        if not n:
            raise BlockingIOError(errno.EAGAIN, "")
        return n

    @staticmethod
    def sendmsg_fastopen(sk, data, now, daddr, dport):
        """sendto(data, MSG_FASTOPEN, addr): connect with data in the SYN;
        the bytes the SYN took (tcp_sendmsg_fastopen)."""
        if dport == 0 and sk.state == _S.CLOSE:
            raise OSError(errno.ECONNREFUSED, "Connection refused")
        return tfo.tcp_sendmsg_fastopen(sk, data, now, daddr, dport)

    @staticmethod
    def recvmsg_into(sk, view, now):
        """recv_into without MSG_PEEK: bytes copied into view once, from the skbs."""
        if sk.state == _S.LISTEN:
            raise OSError(errno.ENOTCONN, "")
        return tcp_recvmsg_into(sk, view, now) if len(view) else 0

    @staticmethod
    def recvmsg(sk, n, peek, now):
        """Up to n bytes; b"" at EOF; BlockingIOError when nothing is there yet."""
        if sk.state == _S.LISTEN:
            raise OSError(errno.ENOTCONN, "")
        if not peek:
            return tcp_recvmsg(sk, n, now) if n else b""
        if not sk.receive_queue:
            return tcp_recvmsg(sk, 0, now)     # the same errors and EOF, nothing taken
        parts, got = [], 0
        for skb in sk.receive_queue:
            if got >= n:
                break
            parts.append(bytes(skb.data[:n - got]))
            got += len(parts[-1])
        return b"".join(parts)

    @staticmethod
    def shutdown(sk, how, now):
        """inet_shutdown: how is RCV_SHUTDOWN | SEND_SHUTDOWN bits."""
        state = sk.state
        if state == _S.LISTEN:
            if how & RCV_SHUTDOWN:
                tcp_close(sk, now)
                sk.orphan = False
            return 0
        if state == _S.SYN_SENT:
            inp.tcp_done(sk)
            sk.sk_shutdown = 0
            return 0
        sk.sk_shutdown |= how & RCV_SHUTDOWN
        tcp_shutdown(sk, how, now)
        return errno.ENOTCONN if state == _S.CLOSE else 0

    @staticmethod
    def release(sk, now):
        """tcp_close; returns how long a blocking close lingers (SO_LINGER), 0 for not at all."""
        inet_put_port(sk)
        onoff, secs = sk.linger
        # SO_LINGER with a zero timeout aborts with a RST (RFC 9293 s3.10.5)
        tcp_close(sk, now, linger0=bool(onoff and secs == 0))
        return secs if onoff and sk.state in _CLOSING else 0

    @staticmethod
    def closing(sk):
        """Our FIN is not yet acknowledged (what a lingering close waits for)."""
        return sk.state in _CLOSING and not sk.sk_err

    @staticmethod
    def poll(sk):
        """tcp_poll reduced to what select() reports: (readable, writable)."""
        if sk.sk_err:
            return True, True
        state = sk.state
        if state == _S.LISTEN:
            return bool(sk.accept_queue), False
        if state == _S.SYN_SENT and sk.defer_connect:
            return False, True      # TCP_FASTOPEN_CONNECT: the first write makes the SYN
        if state == _S.SYN_SENT or (state == _S.SYN_RECV and sk.fastopen_rsk is None):
            return False, False
        hup = state == _S.CLOSE or sk.sk_shutdown == RCV_SHUTDOWN | SEND_SHUTDOWN
        readable = hup or bool(sk.receive_queue) or bool(sk.sk_shutdown & RCV_SHUTDOWN)
        if sk.sk_shutdown & SEND_SHUTDOWN:
            writable = True
        else:      # sk_stream_is_writeable: free space at least a third of the buffer
            writable = sk.sk_sndbuf - sk.sk_wmem_queued >= sk.sk_wmem_queued // 2
        return readable, writable

    @staticmethod
    def getname(sk, peer):
        if peer:
            if sk.state in (_S.CLOSE, _S.LISTEN, _S.SYN_SENT):
                raise OSError(errno.ENOTCONN, "")
            return sk.daddr, sk.dport
        return (sk.saddr if sk.state not in (_S.CLOSE, _S.LISTEN) else sk.rcv_saddr), sk.sport

    @staticmethod
    def setsockopt(sk, level, option, value, now):
        if level == SOL_SOCKET:
            if not sock_setsockopt(sk, option, value):
                raise _enoprotoopt()
        elif level == SOL_IP:
            if not ip_setsockopt(sk, option, value):
                raise _enoprotoopt()
        elif level == SOL_TCP:
            tcp_setsockopt(sk, option, value, now)
        else:
            raise _enoprotoopt()

    @staticmethod
    def getsockopt(sk, level, option):
        if level == SOL_SOCKET:
            return sock_getsockopt(sk, option)
        if level == SOL_IP:
            return ip_getsockopt(sk, option)
        if level == SOL_TCP:
            return tcp_getsockopt(sk, option)
        raise _eopnotsupp()


class InetDgramOps:
    """inet_dgram_ops over UDP (pynet.udp.UDPSocket does the protocol work)."""

    type = _socket.SOCK_DGRAM
    protocol = IPPROTO_UDP

    @staticmethod
    def create(net):
        sk = UDPSocket(net)
        sk.linger = (0, 0)
        sk.keepalive = False
        return sk

    bind = staticmethod(udp_bind)

    @staticmethod
    def connect(sk, daddr, dport, now):
        from pynet.wire.ipv4 import ip_ntoa
        sk.connect((ip_ntoa(daddr), dport))

    @staticmethod
    def connecting(sk):
        return False

    @staticmethod
    def connect_result(sk):
        return 0

    @staticmethod
    def listen(sk, backlog):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    @staticmethod
    def accept(sk):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    @staticmethod
    def sendmsg(sk, data, now, daddr=0, dport=0):
        from pynet.udp import udp_sendmsg
        if daddr and dport == 0:
            raise OSError(errno.EINVAL, "")
        return udp_sendmsg(sk, data, daddr, dport)

    recvfrom = staticmethod(udp_recvmsg)

    @staticmethod
    def shutdown(sk, how, now):
        # a datagram socket only records it; unconnected ones say ENOTCONN (inet_shutdown)
        sk.sk_shutdown = getattr(sk, "sk_shutdown", 0) | how
        return 0 if sk.state == TCP_ESTABLISHED else errno.ENOTCONN

    @staticmethod
    def release(sk, now):
        sk.close()
        return 0

    @staticmethod
    def poll(sk):
        return bool(sk.rxq) or bool(sk.sk_err) or bool(getattr(sk, "sk_shutdown", 0) & 1), True

    @staticmethod
    def getname(sk, peer):
        if peer:
            if sk.state != TCP_ESTABLISHED:
                raise OSError(errno.ENOTCONN, "")
            return sk.daddr, sk.dport
        return sk.rcv_saddr, sk.sport

    @staticmethod
    def setsockopt(sk, level, option, value, now):
        if level == SOL_SOCKET and sock_setsockopt(sk, option, value):
            return
        if level == SOL_IP and ip_setsockopt(sk, option, value):
            return
        if level == SOL_TCP:
            raise _enoprotoopt()
        sk.setsockopt(level, option, opt_int(value))

    @staticmethod
    def getsockopt(sk, level, option):
        if level == SOL_SOCKET and option == _socket.SO_BROADCAST:
            return int(sk.broadcast)
        if level == SOL_SOCKET:
            return sock_getsockopt(sk, option)
        if level == SOL_IP and option in (_socket.IP_TTL, _socket.IP_TOS):
            return ip_getsockopt(sk, option)
        if level != SOL_IP:
            raise _eopnotsupp()
        return sk.getsockopt(level, option)


inet_stream_ops = InetStreamOps
inet_dgram_ops = InetDgramOps
