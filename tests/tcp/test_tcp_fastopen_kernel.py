"""Fast Open with the Linux kernel in a namespace (net.ipv4.tcp_fastopen=3
there), over a TAP captured by pynet's PcapWriter and decoded by tcpdump:
pynet client -> kernel server, kernel client (sendto MSG_FASTOPEN) -> pynet
server, and a forged cookie sent from a raw socket in the namespace."""
import socket
import subprocess
import time

import pytest

from pynet.dev.fault import FaultInjector, Faults
from pynet.dev.pcap import PcapWriter
from pynet.netns import kernel_peer
from pynet.pcapfile import read_pcap
from pynet.stack import Stack
from pynet.tcp import fastopen as tfo
from pynet.tcp.tcp import TcpState
from pynet.tcp.tcp_ipv4 import tcp_v4_init_sock
from pynet.tcp.tcp_user import inet_accept, inet_listen, tcp_close, tcp_recvmsg, tcp_sendmsg
from pynet.wire.ethernet import EthernetPacket
from pynet.wire.ipv4 import IPPROTO_TCP, Ipv4Packet, ip_aton
from pynet.wire.tcp import TcpPacket, TcpRepr, TCPHDR_SYN

from kernelkit import loop

pytestmark = pytest.mark.priv
REQ = b"GET /tfo HTTP/1.0\r\n\r\n"
RESP = b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * 100
DELAY = 0.02


@pytest.fixture
def peer():
    with kernel_peer() as p:
        p.ns.run(["sysctl", "-qw", "net.ipv4.tcp_fastopen=3"], check=True)
        yield p


def stack_on(peer, path, **faults):
    """pynet on the TAP, every frame captured as it crosses the TAP (under
    the fault injector, so the capture is the kernel's view)."""
    cap = PcapWriter(peer.dev, str(path)).open()
    dev = FaultInjector(cap, seed=5, **faults) if faults else cap
    stack = Stack(seed=3)
    stack.add_device(dev)
    stack.add_address(dev, f"{peer.pynet_addr()}/{peer.prefixlen}")
    tfo.tcp_fastopen_net(stack).sysctl = tfo.TFO_CLIENT_ENABLE | tfo.TFO_SERVER_ENABLE
    return stack, dev, cap


def segments(path, port):
    """(direction, TcpRepr, payload) of every TCP segment of `port` in a
    capture, in order; direction ">" is towards `port`."""
    segs = []
    for _, frame in read_pcap(path):
        eth = EthernetPacket(frame)
        if eth.ethertype != 0x0800:
            continue
        ip = Ipv4Packet(eth.payload)
        if ip.protocol != IPPROTO_TCP:
            continue
        tp = TcpPacket(ip.payload)
        th = TcpRepr.parse(tp)
        if port not in (th.source, th.dest):
            continue
        segs.append(((">" if th.dest == port else "<"), th, bytes(tp.payload)))
    return segs


def tcpdump(path):
    return subprocess.run(["tcpdump", "-r", str(path), "-nn", "-v"], capture_output=True,
                          text=True, check=True).stdout


def kernel_server(peer):
    srv = peer.ns.run_in(socket.socket, socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.IPPROTO_TCP, tfo.TCP_FASTOPEN, 16)
    srv.bind((peer.kernel_addr, 0))
    srv.listen()
    srv.setblocking(False)
    return srv


def test_pynet_client_to_kernel_server(peer, tmp_path):
    path = tmp_path / "client.pcap"
    stack, dev, cap = stack_on(peer, path, tx=Faults(delay=DELAY))
    srv = kernel_server(peer)
    port = srv.getsockname()[1]
    kaddr = ip_aton(peer.kernel_addr)
    before = peer.ns.counters()["TcpExt"]
    rtts = []
    with srv:
        for n in range(2):
            c = tcp_v4_init_sock(stack)
            t0 = time.monotonic()
            in_syn = tfo.tcp_sendmsg_fastopen(c, REQ, t0, kaddr, port)
            assert in_syn == (0 if n == 0 else len(REQ))
            st = {"sent": in_syn, "conn": None, "got": b"", "t": None}

            def step(now):
                if st["conn"] is None:
                    try:
                        st["conn"], _ = srv.accept()
                    except BlockingIOError:
                        pass
                if st["conn"] is not None:
                    try:
                        if st["conn"].recv(4096) == REQ:
                            st["conn"].sendall(RESP)
                            st["conn"].close()
                    except (BlockingIOError, OSError):
                        pass
                if c.state == TcpState.ESTABLISHED and st["sent"] < len(REQ):
                    st["sent"] += tcp_sendmsg(c, REQ[st["sent"]:], now)
                try:
                    d = tcp_recvmsg(c, 4096, now)
                except BlockingIOError:
                    return False
                if d and st["t"] is None:
                    st["t"] = now - t0
                st["got"] += d
                return not d

            loop(stack, dev, [srv], step, limit=10)
            assert st["got"] == RESP
            rtts.append(st["t"])
            tcp_close(c, time.monotonic())
            if n == 1:
                assert c.syn_data_acked and tfo.tcpi_options_fastopen(c) == tfo.TCPI_OPT_SYN_DATA
        dev.stop()
    after = peer.ns.counters()["TcpExt"]
    assert after["TCPFastOpenPassive"] == before["TCPFastOpenPassive"] + 1
    assert after["TCPFastOpenCookieReqd"] == before["TCPFastOpenCookieReqd"] + 1
    assert stack.mib.tcpext["TCPFastOpenActive"] == 1
    assert stack.mib.tcpext["TCPFastOpenActiveFail"] == 0

    # the capture: connection 1 asks for a cookie and gets one; connection 2
    # carries it with the request
    segs = segments(path, port)
    syns = [(d, th, p) for d, th, p in segs if th.flags & TCPHDR_SYN]
    (d1, syn1, p1), (d2, synack1, _), (d3, syn2, p2), (d4, synack2, _) = syns
    assert syn1.fastopen == b"" and p1 == b""
    cookie = synack1.fastopen
    assert cookie and syn2.fastopen == cookie and p2 == REQ
    assert synack2.ack_seq == (syn2.seq + 1 + len(REQ)) & 0xFFFFFFFF
    # round trips before the response: segments pynet had to send (each
    # 20 ms late) before the kernel's first response byte left it
    counts = []
    for conn_syn in (syn1, syn2):
        sport = conn_syn.source
        conn = [(d, th, p) for d, th, p in segs
                if sport in (th.source, th.dest) and (th.flags & TCPHDR_SYN or p or d == ">")]
        first_resp = next(i for i, (d, th, p) in enumerate(conn) if d == "<" and p)
        counts.append(sum(1 for d, th, p in conn[:first_resp] if d == ">"))
    assert counts[1] == 1 < counts[0]   # Fast Open: the SYN alone; without: SYN, then the request
    print(f"pynet->kernel first response after {rtts[0] * 1000:.1f} ms without Fast Open, "
          f"{rtts[1] * 1000:.1f} ms with (20 ms added pynet->kernel); pynet segments before "
          f"the response: {counts[0]} vs {counts[1]}")
    text = tcpdump(path)
    assert "tfo  cookiereq" in text and f"tfo  cookie {cookie.hex()}" in text


def test_kernel_client_to_pynet_server(peer, tmp_path):
    path = tmp_path / "server.pcap"
    stack, dev, cap = stack_on(peer, path)
    ls = tcp_v4_init_sock(stack)
    tfo.tcp_fastopen_listen(ls, 16)
    inet_listen(ls, ls.hashinfo, 0, 8080, 16)
    before = peer.ns.counters()["TcpExt"]
    for n in range(2):
        cli = peer.ns.run_in(socket.socket, socket.AF_INET, socket.SOCK_STREAM)
        cli.setblocking(False)
        with cli:
            try:
                sent = cli.sendto(REQ, tfo.MSG_FASTOPEN, (peer.pynet_addr(), 8080))
            except BlockingIOError:
                sent = 0                 # no cookie yet: the SYN asked for one
            assert sent == (0 if n == 0 else len(REQ))
            st = {"child": None, "got": b"", "sent": sent, "resp": b"", "first_state": None}

            def step(now):
                if st["sent"] < len(REQ):
                    try:
                        st["sent"] += cli.send(REQ[st["sent"]:])
                    except (BlockingIOError, OSError):
                        pass
                if st["child"] is None:
                    try:
                        st["child"] = inet_accept(ls)
                        st["first_state"] = st["child"].state
                    except BlockingIOError:
                        return False
                ch = st["child"]
                try:
                    st["got"] += tcp_recvmsg(ch, 4096, now)
                except BlockingIOError:
                    pass
                if st["got"] == REQ:
                    tcp_sendmsg(ch, RESP, now)
                    tcp_close(ch, now)
                    st["got"] += b"!"
                try:
                    st["resp"] += cli.recv(4096)
                except BlockingIOError:
                    pass
                return st["resp"] == RESP

            loop(stack, dev, [cli], step, limit=10)
    dev.stop()
    after = peer.ns.counters()["TcpExt"]
    assert after["TCPFastOpenActive"] == before["TCPFastOpenActive"] + 1
    assert stack.mib.tcpext["TCPFastOpenCookieReqd"] == 1
    assert stack.mib.tcpext["TCPFastOpenPassive"] == 1
    syns = [(d, th, p) for d, th, p in segments(path, 8080) if th.flags & TCPHDR_SYN]
    (_, syn1, p1), (_, synack1, _), (_, syn2, p2), (_, synack2, _) = syns
    valid = tfo.tcp_fastopen_net(stack).ctx.cookie(ip_aton(peer.kernel_addr),
                                                  ip_aton(peer.pynet_addr()))
    assert syn1.fastopen == b"" and synack1.fastopen == valid
    assert syn2.fastopen == valid and p2 == REQ
    assert synack2.ack_seq == (syn2.seq + 1 + len(REQ)) & 0xFFFFFFFF
    text = tcpdump(path)
    assert "tfo  cookiereq" in text and f"tfo  cookie {valid.hex()}" in text


def test_forged_cookie_from_a_raw_socket(peer, tmp_path):
    path = tmp_path / "forged.pcap"
    stack, dev, cap = stack_on(peer, path)
    ls = tcp_v4_init_sock(stack)
    tfo.tcp_fastopen_listen(ls, 16)
    inet_listen(ls, ls.hashinfo, 0, 8080, 16)
    kaddr, paddr = ip_aton(peer.kernel_addr), ip_aton(peer.pynet_addr())
    forged = bytes(8)
    th = TcpRepr(40000, 8080, 1000, 0, TCPHDR_SYN, 65535, mss=1460, fastopen=forged)
    buf = bytearray(th.header_len + len(REQ))
    buf[th.header_len:] = REQ
    th.emit(buf, kaddr, paddr)
    raw = peer.ns.run_in(socket.socket, socket.AF_INET, socket.SOCK_RAW, IPPROTO_TCP)
    with raw:
        raw.sendto(bytes(buf), (peer.pynet_addr(), 0))
        loop(stack, dev, [raw], lambda now: bool(stack.mib.tcpext["TCPFastOpenPassiveFail"]),
             limit=10)
        # a little longer: the SYN-ACK goes out, the kernel (no socket) resets it
        end = time.monotonic() + 0.1
        loop(stack, dev, [raw], lambda now: now > end, limit=10)
    dev.stop()
    assert not ls.accept_queue and stack.mib.tcpext["TCPFastOpenPassive"] == 0
    synack = next(th for d, th, p in segments(path, 8080) if d == "<")
    valid = tfo.tcp_fastopen_net(stack).ctx.cookie(kaddr, paddr)
    assert synack.ack_seq == 1001 and synack.fastopen == valid != forged   # data not acked
    text = tcpdump(path)
    assert f"tfo  cookie {forged.hex()}" in text and f"tfo  cookie {valid.hex()}" in text
