"""UDP (RFC 768; net/ipv4/udp.c): sockets, the port table, receive and errors.

`UDPSocket` is stdlib-shaped (bind, connect, sendto, send, recvfrom, recv,
setsockopt, getsockname, getpeername, close) with addresses as
("198.18.0.1", port) tuples. It never blocks: with nothing queued, recv
raises BlockingIOError, as a non-blocking socket does; the stack's runner
(`Stack.run_until`) waits for it. pynet.socket (issue #7) wraps this.
"""
import collections
import errno
import socket as _socket

from pynet import skbtrace
from pynet.icmp import icmp_err_convert, icmp_send
from pynet.ip_output import ip_alloc_skb, ip_build_and_send_pkt
from pynet.sock import (IP_PMTUDISC_DO, IP_PMTUDISC_DONT, TCP_CLOSE, TCP_ESTABLISHED, Sock,
                        __sk_dst_check, sk_dst_reset, sk_setup_caps)
from pynet.dev.netdevice import NETIF_F_HW_CSUM, NETIF_F_IP_CSUM
from pynet.gso import skb_gso_segment
from pynet.route import RTN_BROADCAST, RTN_UNICAST
from pynet.skbuff import CHECKSUM_PARTIAL, CHECKSUM_UNNECESSARY
from pynet.wire.icmp import ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, ICMP_PORT_UNREACH
from pynet.wire.ipv4 import IPPROTO_UDP, IPV4_HLEN, ip_aton, ip_hdr, ip_ntoa
from pynet.wire.udp import UDP_HLEN, UdpPacket, udp_hdr_push

UDP_MAX_PAYLOAD = 0xFFFF - IPV4_HLEN - UDP_HLEN        # 65,507
IP_LOCAL_PORT_RANGE = (32768, 60999)                  # net.ipv4.ip_local_port_range


class UdpTable:
    """Bound UDP sockets by local port, newest first (udp_table)."""

    def __init__(self, net):
        self.net = net
        self.ports = {}
        self.port_range = IP_LOCAL_PORT_RANGE

    def _conflict(self, sk, port):
        for other in self.ports.get(port, ()):
            if other is sk:
                continue
            if (other.rcv_saddr and sk.rcv_saddr and other.rcv_saddr != sk.rcv_saddr):
                continue
            if other.bound_dev_if and sk.bound_dev_if and other.bound_dev_if != sk.bound_dev_if:
                continue
            if sk.sk_reuse and other.sk_reuse:
                continue                                  # SO_REUSEADDR on both
            return True
        return False

    def get_port(self, sk, port):
        """udp_lib_get_port: bind sk to port, or to a free ephemeral port when port is 0.

        Ephemeral ports follow RFC 6056 s3.3.1 (Algorithm 1): a random start in
        the range, then the next free port.
        """
        if port == 0:
            low, high = self.port_range
            count = high - low + 1
            start = self.net.rng.randrange(count)
            for i in range(count):
                candidate = low + (start + i) % count
                if not self._conflict(sk, candidate):
                    port = candidate
                    break
            else:
                raise OSError(errno.EADDRINUSE, "Address already in use (no free ephemeral port)")
        elif self._conflict(sk, port):
            raise OSError(errno.EADDRINUSE, "Address already in use")
        sk.sport = port
        self.ports.setdefault(port, []).insert(0, sk)

    def unhash(self, sk):
        socks = self.ports.get(sk.sport)
        if socks and sk in socks:
            socks.remove(sk)
            if not socks:
                del self.ports[sk.sport]

    def lookup(self, saddr, sport, daddr, dport, dev):
        """__udp4_lib_lookup: the best-scoring socket for a datagram (compute_score)."""
        best, best_score = None, -1
        for sk in self.ports.get(dport, ()):
            score = 0
            if sk.rcv_saddr:
                if sk.rcv_saddr != daddr:
                    continue
                score += 4
            if sk.daddr:
                if sk.daddr != saddr:
                    continue
                score += 4
            if sk.dport:
                if sk.dport != sport:
                    continue
                score += 4
            if sk.bound_dev_if:
                if sk.bound_dev_if != dev.ifindex:
                    continue
                score += 4
            if score > best_score:
                best, best_score = sk, score
        return best

    def lookup_all(self, saddr, sport, daddr, dport, dev):
        """Every socket a broadcast datagram goes to (__udp4_lib_mcast_deliver)."""
        out = []
        for sk in self.ports.get(dport, ()):
            if sk.rcv_saddr and sk.rcv_saddr != daddr and not self.net.fib.is_broadcast(daddr):
                continue
            if (sk.daddr and sk.daddr != saddr) or (sk.dport and sk.dport != sport):
                continue
            if sk.bound_dev_if and sk.bound_dev_if != dev.ifindex:
                continue
            out.append(sk)
        return out


def _addr(address):
    """A stdlib (host, port) tuple -> (int, int), raising what socket would."""
    if not isinstance(address, tuple) or len(address) != 2:
        raise TypeError("AF_INET address must be a tuple of (host, port)")
    host, port = address
    if not isinstance(port, int):
        raise TypeError(f"'{type(port).__name__}' object cannot be interpreted as an integer")
    if not 0 <= port <= 0xFFFF:
        raise OverflowError("port must be 0-65535.")
    if host in ("", "0.0.0.0"):
        return 0, port
    if host == "<broadcast>":
        return 0xFFFFFFFF, port
    try:
        return ip_aton(host), port
    except ValueError:
        raise _socket.gaierror(_socket.EAI_NONAME, "Name or service not known") from None


def udp_bind(sk, addr, port):
    """inet_bind for a datagram socket: a local (or broadcast) address, a port from the table."""
    if sk.sport:
        raise OSError(errno.EINVAL, "Invalid argument")
    if addr and not sk.net.fib.is_local(addr) and not sk.net.fib.is_broadcast(addr):
        raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
    sk.rcv_saddr = sk.saddr = addr
    sk.net.udp_table.get_port(sk, port)


def udp_recvmsg(sk, n, peek=False):
    """The next datagram's first n bytes and its (saddr, sport); a datagram is consumed
    whole unless peek. BlockingIOError when none is queued."""
    sk.raise_pending_error()
    if not sk.rxq:
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
    skb, saddr, sport = sk.rxq[0]
    data = bytes(skb.data[:n])
    if not peek:
        sk.rxq.popleft()
        sk.sk_rmem_alloc -= skb.truesize
    return data, (saddr, sport)


class UDPSocket(Sock):
    """An AF_INET SOCK_DGRAM socket on a pynet stack."""

    def __init__(self, net):
        super().__init__(net, IPPROTO_UDP, _socket.SOCK_DGRAM)
        self.rxq = collections.deque()  # (skb, saddr, sport), skb.data at the payload
        self.broadcast = False
        self.closed = False

    # -- the stdlib surface ------------------------------------------------------
    def setsockopt(self, level, option, value):
        if level == _socket.SOL_SOCKET and option == _socket.SO_REUSEADDR:
            self.sk_reuse = bool(value)
        elif level == _socket.SOL_SOCKET and option == _socket.SO_BROADCAST:
            self.broadcast = bool(value)
        elif level == _socket.SOL_SOCKET and option == _socket.SO_RCVBUF:
            self.sk_rcvbuf = max(int(value) * 2, 2304)       # Linux doubles it, SOCK_MIN_RCVBUF
        elif level == _socket.SOL_SOCKET and option == _socket.SO_SNDBUF:
            self.sk_sndbuf = max(int(value) * 2, 4608)
        elif level == _socket.IPPROTO_IP and option == _socket.IP_TTL:
            ttl = int(value)
            if ttl != -1 and not 1 <= ttl <= 255:   # -1: the default (do_ip_setsockopt)
                raise OSError(errno.EINVAL, "Invalid argument")
            self.ttl = ttl
        elif level == _socket.IPPROTO_IP and option == _socket.IP_TOS:
            self.tos = int(value) & 0xFF
        elif level == _socket.IPPROTO_IP and option == getattr(_socket, "IP_MTU_DISCOVER", 10):
            self.pmtudisc = int(value)
        else:
            raise OSError(errno.ENOPROTOOPT, "Protocol not available")

    def getsockopt(self, level, option):
        if level == _socket.SOL_SOCKET and option == _socket.SO_ERROR:
            return self.sock_error()
        if level == _socket.SOL_SOCKET and option == _socket.SO_REUSEADDR:
            return int(self.sk_reuse)
        if level == _socket.SOL_SOCKET and option == _socket.SO_RCVBUF:
            return self.sk_rcvbuf
        if level == _socket.IPPROTO_IP and option == getattr(_socket, "IP_MTU", 14):
            if self.state != TCP_ESTABLISHED:
                raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
            return udp_dst(self).mtu
        raise OSError(errno.ENOPROTOOPT, "Protocol not available")

    def bind(self, address):
        self._check_open()
        udp_bind(self, *_addr(address))

    def connect(self, address):
        """ip4_datagram_connect: fix the peer, choose the source, cache the route."""
        self._check_open()
        daddr, dport = _addr(address)
        if dport == 0:
            raise OSError(errno.EINVAL, "Invalid argument")
        rt = self.net.fib.ip_route_output(daddr, self.rcv_saddr, self.bound_dev_if)
        if rt.type != RTN_UNICAST and not self.broadcast:
            raise OSError(errno.EACCES, "Permission denied")
        if not self.sport:
            self.net.udp_table.get_port(self, 0)
        if not self.saddr:
            self.saddr = rt.saddr
        if not self.rcv_saddr:
            self.rcv_saddr = rt.saddr
        self.daddr, self.dport = daddr, dport
        self.state = TCP_ESTABLISHED
        sk_setup_caps(self, rt)

    def sendto(self, data, address):
        self._check_open()
        daddr, dport = _addr(address)
        return udp_sendmsg(self, memoryview(data).cast("B"), daddr, dport)

    def send(self, data):
        self._check_open()
        if self.state != TCP_ESTABLISHED:
            raise OSError(errno.EDESTADDRREQ, "Destination address required")
        return udp_sendmsg(self, memoryview(data).cast("B"), 0, 0)

    def recvfrom(self, bufsize):
        self._check_open()
        if bufsize < 0:
            raise ValueError("negative buffersize in recvfrom")
        data, (saddr, sport) = udp_recvmsg(self, bufsize)
        return data, (ip_ntoa(saddr), sport)

    def recv(self, bufsize):
        return self.recvfrom(bufsize)[0]

    def readable(self):
        return bool(self.rxq) or bool(self.sk_err)

    def getsockname(self):
        return (ip_ntoa(self.rcv_saddr), self.sport)

    def getpeername(self):
        if self.state != TCP_ESTABLISHED:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
        return (ip_ntoa(self.daddr), self.dport)

    def close(self):
        if self.closed:
            return
        self.closed = True
        self.net.udp_table.unhash(self)
        self.rxq.clear()
        self.sk_rmem_alloc = 0
        sk_dst_reset(self)
        self.state = TCP_CLOSE

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _check_open(self):
        if self.closed:
            raise OSError(errno.EBADF, "Bad file descriptor")


def udp_dst(sk):
    """A connected socket's route: the cached dst while valid, else a fresh lookup, cached."""
    rt = __sk_dst_check(sk)
    if rt is None:
        rt = sk.net.fib.ip_route_output(sk.daddr, sk.saddr, sk.bound_dev_if)
        sk_setup_caps(sk, rt)
    return rt


def udp_sendmsg(sk, data, daddr, dport):
    """Build one datagram and hand it to IP; returns the bytes sent."""
    net = sk.net
    n = len(data)
    if n > UDP_MAX_PAYLOAD:
        raise OSError(errno.EMSGSIZE, "Message too long")
    if daddr:
        if dport == 0:
            raise OSError(errno.EINVAL, "Invalid argument")
        connected = False
    else:
        if sk.state != TCP_ESTABLISHED:
            raise OSError(errno.EDESTADDRREQ, "Destination address required")
        daddr, dport, connected = sk.daddr, sk.dport, True
    sk.raise_pending_error()
    if not sk.sport:
        net.udp_table.get_port(sk, 0)
    if connected:
        rt = udp_dst(sk)        # a route change takes effect on this very packet
    else:
        rt = net.fib.ip_route_output(daddr, sk.rcv_saddr, sk.bound_dev_if)
    if rt.type != RTN_UNICAST and not sk.broadcast:
        raise OSError(errno.EACCES, "Permission denied")
    saddr = sk.saddr if connected and sk.saddr else (sk.rcv_saddr or rt.saddr)
    mtu = rt.mtu
    fits = n + UDP_HLEN + IPV4_HLEN <= mtu
    if sk.pmtudisc == IP_PMTUDISC_DO and not fits:
        raise OSError(errno.EMSGSIZE, "Message too long")
    # IP_PMTUDISC_WANT: DF only when the datagram fits the path MTU (__ip_make_skb),
    # so a larger one is fragmented here rather than dropped.
    df = sk.pmtudisc != IP_PMTUDISC_DONT and (fits or sk.pmtudisc == IP_PMTUDISC_DO)
    skb = ip_alloc_skb(net, rt.dev, UDP_HLEN + n)
    skb.put_data(data)
    # The device finishes the checksum if it can and the datagram is not fragmented.
    udp_hdr_push(skb, sk.sport, dport, saddr, daddr,
                 partial=fits and bool(rt.dev.features & (NETIF_F_HW_CSUM | NETIF_F_IP_CSUM)))
    if skbtrace.hook is not None:
        skbtrace.hook("udp_sendmsg", skb)
    rc = ip_build_and_send_pkt(net, skb, sk, saddr, daddr, rt, IPPROTO_UDP, df=df, tos=sk.tos)
    if rc < 0:
        if rc != -errno.EMSGSIZE:
            net.mib.udp.inc("SndbufErrors")
    else:
        net.mib.udp.inc("OutDatagrams")          # udp_send_skb counts only what IP took
    return n


def udp_rcv(net, skb):
    """The IPPROTO_UDP handler: skb.data at the UDP header, network_header at IP's."""
    if skbtrace.hook is not None:
        skbtrace.hook("udp_rcv", skb)
    mib = net.mib.udp
    iph = ip_hdr(skb)
    saddr, daddr = iph.saddr, iph.daddr
    del iph
    if len(skb) < UDP_HLEN:
        mib.inc("InErrors")
        return
    data = skb.data
    ulen = (data[4] << 8) | data[5]
    if ulen < UDP_HLEN or ulen > len(skb):
        del data
        mib.inc("InErrors")
        return
    del data
    if ulen < len(skb):
        skb.trim(ulen)
    uh = UdpPacket(skb.data)
    sport, dport = uh.source, uh.dest
    # A checksum verified by the device, or still to be filled by a local sender
    # (PARTIAL, from a TAP peer in this host), is not checked again (skb_csum_unnecessary).
    if skb.ip_summed not in (CHECKSUM_UNNECESSARY, CHECKSUM_PARTIAL) and not uh.verify_checksum(saddr, daddr):
        del uh
        mib.inc("InCsumErrors")
        mib.inc("InErrors")
        return
    del uh
    table = net.udp_table
    if skb.dst.type == RTN_BROADCAST:
        socks = table.lookup_all(saddr, sport, daddr, dport, skb.dev)
        if not socks:
            mib.inc("NoPorts")
        for i, sk in enumerate(socks):
            udp_queue_rcv_skb(net, sk, skb if i == len(socks) - 1 else skb.clone(), saddr, sport)
        return
    sk = table.lookup(saddr, sport, daddr, dport, skb.dev)
    if sk is None:
        mib.inc("NoPorts")
        icmp_send(net, skb, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH)
        return
    udp_queue_rcv_skb(net, sk, skb, saddr, sport)


def udp_queue_rcv_skb(net, sk, skb, saddr, sport):
    """A GSO skb (a UDP_SEGMENT sender behind a TAP with TUN_F_USO*) is split
    into its datagrams first, as udp_rcv_segment does for a socket without
    UDP_GRO: each gso_size piece was one sendmsg's datagram to the sender."""
    if not skb.gso_size:
        udp_queue_rcv_one_skb(net, sk, skb, saddr, sport)
        return
    ihl = skb.data_offset - skb.network_header
    skb.push(ihl)
    try:
        segs = skb_gso_segment(skb)
    except ValueError:
        net.mib.udp.inc("InErrors")
        return
    for seg in segs:
        seg.pull(ihl)
        seg.ip_summed = CHECKSUM_UNNECESSARY       # skb_gso_segment wrote full checksums
        udp_queue_rcv_one_skb(net, sk, seg, saddr, sport)


def udp_queue_rcv_one_skb(net, sk, skb, saddr, sport):
    """Queue on the socket within sk_rcvbuf; past it the datagram is dropped and counted."""
    if sk.sk_rmem_alloc + skb.truesize > sk.sk_rcvbuf:
        sk.sk_drops += 1
        net.mib.udp.inc("RcvbufErrors")
        net.mib.udp.inc("InErrors")
        return
    skb.pull(UDP_HLEN)
    sk.rxq.append((skb, saddr, sport))
    sk.sk_rmem_alloc += skb.truesize
    net.mib.udp.inc("InDatagrams")
    if sk.sk_data_ready is not None:
        sk.sk_data_ready(sk)


def udp_err(net, skb, type, code, info):
    """An ICMP error about a datagram we sent (skb.data at its IP header).

    As Linux without IP_RECVERR: only a connected socket hears of it, and only
    of fatal errors (port unreachable -> ECONNREFUSED) or EMSGSIZE when the
    path MTU dropped under a DF-setting socket.
    """
    data = skb.data
    ihl = (data[0] & 0x0F) * 4
    saddr = int.from_bytes(data[12:16], "big")
    daddr = int.from_bytes(data[16:20], "big")
    sport = (data[ihl] << 8) | data[ihl + 1]
    dport = (data[ihl + 2] << 8) | data[ihl + 3]
    del data
    sk = skb.sk if skb.sk is not None else net.udp_table.lookup(daddr, dport, saddr, sport, skb.dev)
    if sk is None:
        return
    if type == ICMP_DEST_UNREACH and code == ICMP_FRAG_NEEDED:
        if sk.pmtudisc == IP_PMTUDISC_DONT:
            return
        err, fatal = errno.EMSGSIZE, True
    else:
        err, fatal = icmp_err_convert(type, code)
    if not fatal or sk.state != TCP_ESTABLISHED:
        return
    sk.report_error(err)
