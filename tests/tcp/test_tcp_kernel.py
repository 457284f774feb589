"""pynet's TCP against the Linux kernel in a namespace, over a TAP, on real
time: data both ways with sha256 equal at both ends, TSO on and off, loss
and reordering from pynet's fault injector, and the options the kernel
agreed to (its tcp_info and `ss -ti`)."""
import hashlib
import random
import select
import socket
import subprocess
import time

import pytest

from pynet.dev.netdevice import NETIF_F_GRO
from pynet.dev.tap import TAP_BIG_TCP_MAX_SIZE, kernel_takes_big_tcp
from pynet.netns import kernel_peer
from pynet.pcapfile import read_pcap
from pynet.tcp.tcp import TCP_GSO_HEADROOM, TcpState
from pynet.tcp.tcp_ipv4 import tcp_v4_connect, tcp_v4_init_sock
from pynet.tcp.tcp_user import tcp_close, tcp_recvmsg, tcp_sendmsg
from pynet.wire.ipv4 import ip_aton

from kernelkit import (Sink, connect_to_kernel, kernel_listener, kernel_to_pynet, loop,
                       pynet_on, pynet_to_kernel)

pytestmark = pytest.mark.priv
NBYTES = 8 << 20
TCPI_OPT_TIMESTAMPS = 1
TCPI_OPT_WSCALE = 4
OFFLOAD = pytest.mark.parametrize("offload", [False, True], ids=["no-tso", "tso"])


@OFFLOAD
def test_pynet_client_sends_to_kernel_server(offload):
    data = random.Random(5).randbytes(NBYTES)
    seen = {}

    def look(conn):
        seen["info"] = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        seen["ss"] = peer.ns.run(["ss", "-tin"], capture_output=True, text=True).stdout

    with kernel_peer("tap", offload=offload) as peer:
        sink, _ = pynet_to_kernel(peer, data, on_half=look)
    assert sink.n == NBYTES and sink.sha.hexdigest() == hashlib.sha256(data).hexdigest()
    # the kernel agreed to timestamps and window scaling (its tcp_info: tcpi_options,
    # tcpi_snd_wscale = our shift 7), and its MSS is the path's less the TS option.
    # (iproute2 6.1's ss on this kernel omits "ts" and "sack" even between two
    # kernel sockets, so the flags are read from tcp_info.)
    options, wscales = seen["info"][5], seen["info"][6]
    assert options & TCPI_OPT_TIMESTAMPS and options & TCPI_OPT_WSCALE
    assert wscales & 0x0F == 7
    assert "wscale:7," in seen["ss"] and "mss:1448" in seen["ss"]


@OFFLOAD
def test_kernel_client_sends_to_pynet_server(offload):
    data = random.Random(6).randbytes(NBYTES)
    with kernel_peer("tap", offload=offload) as peer:
        sink, s = kernel_to_pynet(peer, data)
    assert sink.n == NBYTES and sink.sha.hexdigest() == hashlib.sha256(data).hexdigest()
    assert s.sk_rmem_alloc == 0 and not s.out_of_order_queue


def test_pynet_sends_through_loss():
    data = random.Random(7).randbytes(4 << 20)
    with kernel_peer("tap") as peer:
        sink, c = pynet_to_kernel(peer, data, drop=0.01)
    assert sink.sha.hexdigest() == hashlib.sha256(data).hexdigest()
    assert c.stats["RetransSegs"] > 0


def test_pynet_receives_through_loss_and_reordering():
    data = random.Random(8).randbytes(4 << 20)
    with kernel_peer("tap") as peer:
        sink, s = kernel_to_pynet(peer, data, drop=0.01, reorder=0.01)
    assert sink.sha.hexdigest() == hashlib.sha256(data).hexdigest()
    assert s.ofo_drops == 0


def test_closed_port_is_refused_and_kernel_rst_resets():
    import errno
    with kernel_peer("tap") as peer:
        stack, dev = pynet_on(peer)
        c = tcp_v4_init_sock(stack)
        tcp_v4_connect(c, ip_aton(peer.kernel_addr), 9, time.monotonic())   # nobody listens
        loop(stack, dev, [], lambda now: c.state == TcpState.CLOSE, limit=5)
        assert c.sk_err == errno.ECONNREFUSED
        # a kernel peer that aborts (SO_LINGER 0) resets pynet's connection
        with kernel_listener(peer) as srv:
            c, conn = connect_to_kernel(stack, dev, srv)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            conn.close()
            loop(stack, dev, [srv], lambda now: c.state == TcpState.CLOSE, limit=5)
        assert c.sk_err == errno.ECONNRESET


def test_200_concurrent_then_100_sequential_connections_to_kernel():
    """The issue's counts: 200 connections of 1 MiB at once, then 100 one
    after another, each checked by sha256 at the kernel's end."""
    with kernel_peer("tap", offload=True) as peer:
        stack, dev = pynet_on(peer)
        with kernel_listener(peer, 1024) as srv:
            srv.setblocking(False)
            port = srv.getsockname()[1]

            def run(sizes):
                payloads = [random.Random(n).randbytes(size) for n, size in enumerate(sizes)]
                clients = []
                for _ in payloads:
                    c = tcp_v4_init_sock(stack)
                    tcp_v4_connect(c, ip_aton(peer.kernel_addr), port, time.monotonic())
                    clients.append([c, 0])
                accepted, digests = [], {}

                def step(now):
                    while True:
                        try:
                            k, addr = srv.accept()
                        except BlockingIOError:
                            break
                        k.setblocking(False)
                        accepted.append((k, addr, Sink(lambda k=k: k.recv(1 << 20))))
                    for cl, p in zip(clients, payloads):
                        c, sent = cl
                        if c.state == TcpState.ESTABLISHED and sent < len(p):
                            cl[1] += tcp_sendmsg(c, p[sent:], now)
                            if cl[1] == len(p):
                                tcp_close(c, now)
                    for k, addr, sink in accepted:
                        if addr not in digests and sink.drain():
                            digests[addr] = sink.sha.hexdigest()
                            k.close()
                    return len(digests) == len(payloads)

                loop(stack, dev, [srv], step)
                return sorted(digests.values()) == sorted(hashlib.sha256(p).hexdigest()
                                                          for p in payloads)

            assert run([1 << 20] * 200)
            assert all(run([10_000]) for _ in range(100))


def test_abort_timeout_and_peer_killed():
    """SO_LINGER 0 from pynet resets the kernel's end; an address that never
    answers fails with ETIMEDOUT after TCP_USER_TIMEOUT; a kernel peer whose
    process dies mid-transfer resets pynet's connection."""
    import errno
    import subprocess
    import sys
    with kernel_peer("tap") as peer:
        stack, dev = pynet_on(peer)
        with kernel_listener(peer) as srv:
            c, conn = connect_to_kernel(stack, dev, srv)
            with conn:
                tcp_close(c, time.monotonic(), linger0=True)
                loop(stack, dev, [conn], lambda now: select.select([conn], [], [], 0)[0], limit=5)
                with pytest.raises(ConnectionResetError):
                    conn.recv(10)
        # nobody at .77: ARP never resolves, the SYN never leaves. The user timeout ends
        # it at 2 s (the RTO after the first retransmit clamped to it), before the
        # neighbour gives up at 3 s and reports EHOSTUNREACH (unclamped, the two raced)
        c = tcp_v4_init_sock(stack)
        c.user_timeout = 2.0
        tcp_v4_connect(c, ip_aton(peer.pynet_addr(77)), 80, time.monotonic())
        loop(stack, dev, [], lambda now: c.state == TcpState.CLOSE, limit=10)
        assert c.sk_err == errno.ETIMEDOUT
        # a kernel server process killed while pynet sends to it
        script = ("import socket,sys,time\n"
                  "s=socket.socket(); s.bind((sys.argv[1], 5555)); s.listen()\n"
                  "print('ready', flush=True); c,_=s.accept(); time.sleep(30)\n")
        proc = peer.ns.popen([sys.executable, "-c", script, peer.kernel_addr],
                             stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            c = tcp_v4_init_sock(stack)
            tcp_v4_connect(c, ip_aton(peer.kernel_addr), 5555, time.monotonic())
            loop(stack, dev, [], lambda now: c.state == TcpState.ESTABLISHED, limit=5)
            tcp_sendmsg(c, bytes(20_000), time.monotonic())
            loop(stack, dev, [], lambda now: not c.packets_out and not c.write_queue, limit=5)
            proc.kill()
            proc.wait()
            state = {"sent": 0}

            def keep_sending(now):
                if c.state == TcpState.CLOSE:
                    return True
                state["sent"] += tcp_sendmsg(c, bytes(10_000), now)
                return False
            loop(stack, dev, [], keep_sending, limit=10)
            assert c.sk_err == errno.ECONNRESET
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()


@pytest.mark.parametrize("mib", [64, pytest.param(1024, marks=pytest.mark.slow)])
def test_both_directions_at_once_on_one_connection(mib):
    """pynet and the kernel send to each other at the same time (TSO on),
    then both shut down their sending side; sha256 equal at both ends."""
    from pynet.tcp.tcp import SEND_SHUTDOWN
    from pynet.tcp.tcp_user import tcp_shutdown
    n = mib << 20
    block = random.Random(9).randbytes(4 << 20)
    up, down = block * (n // len(block)), block[::-1] * (n // len(block))
    with kernel_peer("tap", offload=True) as peer:
        stack, dev = pynet_on(peer)
        with kernel_listener(peer) as srv:
            srv.setblocking(False)
            c = tcp_v4_init_sock(stack)
            tcp_v4_connect(c, ip_aton(peer.kernel_addr), srv.getsockname()[1], time.monotonic())
            pynet_sink = Sink(lambda: tcp_recvmsg(c, 1 << 22, time.monotonic()))
            st = {"k": None, "ksent": 0, "psent": 0, "kdone": False, "pdone": False}

            def step(now):
                if st["k"] is None:
                    try:
                        st["k"], _ = srv.accept()
                    except BlockingIOError:
                        return False
                    st["k"].setblocking(False)
                    st["ksink"] = Sink(lambda: st["k"].recv(1 << 20))
                k = st["k"]
                if st["ksent"] < n:
                    try:
                        st["ksent"] += k.send(down[st["ksent"]:st["ksent"] + (1 << 20)])
                    except BlockingIOError:
                        pass
                    if st["ksent"] == n:
                        k.shutdown(socket.SHUT_WR)
                if c.state in (TcpState.ESTABLISHED, TcpState.CLOSE_WAIT) and st["psent"] < n:
                    st["psent"] += tcp_sendmsg(c, up[st["psent"]:st["psent"] + (1 << 20)], now)
                    if st["psent"] == n:
                        tcp_shutdown(c, SEND_SHUTDOWN, now)
                st["kdone"] = st["kdone"] or st["ksink"].drain()
                st["pdone"] = st["pdone"] or pynet_sink.drain()
                return st["kdone"] and st["pdone"]

            loop(stack, dev, [srv], step, limit=120)
            st["k"].close()
    assert st["ksink"].sha.hexdigest() == hashlib.sha256(up).hexdigest()
    assert pynet_sink.sha.hexdigest() == hashlib.sha256(down).hexdigest()


@pytest.mark.slow
@pytest.mark.parametrize("direction", ["pynet-to-kernel", "kernel-to-pynet"])
def test_1gib_each_way_sha256(direction):
    """Issue 5: 1 GiB from pynet to the kernel and from the kernel to
    pynet (TSO on), sha256 equal at both ends."""
    block = random.Random(10).randbytes(4 << 20)
    data = block * 256
    with kernel_peer("tap", offload=True) as peer:
        if direction == "pynet-to-kernel":
            sink, _ = pynet_to_kernel(peer, data, limit=600.0)
        else:
            sink, _ = kernel_to_pynet(peer, data, limit=600.0)
    assert sink.n == len(data) and sink.sha.hexdigest() == hashlib.sha256(data).hexdigest()


@pytest.mark.skipif(not kernel_takes_big_tcp(), reason="the kernel predates BIG TCP (6.3)")
@pytest.mark.parametrize("kind", ["tap", "veth"], ids=["tap", "af-packet"])
def test_big_tcp_super_segments_reach_the_kernel_whole(kind):
    """With offloads on a 6.3+ kernel pynet writes 256 KB super-segments
    (IPv4 tot_len 0) into a TAP, or through AF_PACKET into a veth whose
    outer end kernel_peer let them out of; the kernel takes each as one
    packet and its socket reads the data intact."""
    data = random.Random(11).randbytes(NBYTES)
    with kernel_peer(kind, offload=True) as peer:
        sink, c = pynet_to_kernel(peer, data)
        stats = peer.ns.link_stats(peer.ifname)
        counters = peer.ns.counters()
    assert sink.n == NBYTES and sink.sha.hexdigest() == hashlib.sha256(data).hexdigest()
    assert c.gso_max_size == TAP_BIG_TCP_MAX_SIZE - TCP_GSO_HEADROOM
    # 8 MiB in ~32 writes besides the handshake's and FIN's few frames
    assert stats["rx_bytes"] / stats["rx_packets"] > 65536
    assert counters["Ip"]["InHdrErrors"] == 0 and counters["IpExt"]["InTruncatedPkts"] == 0


@pytest.mark.parametrize("kind, dev_kwargs", [("tap", {}), ("veth", {}), ("veth", {"rx_ring": True})],
                         ids=["tap", "af-packet", "af-packet-ring"])
def test_driver_gro_hands_the_kernels_gso_frames_up_merged(kind, dev_kwargs):
    """With NETIF_F_GRO the TAP or AF_PACKET reader (recvmsg, or its ring)
    merges the kernel's 64 KB GSO frames of one run behind the first (up to
    256 KB): the stream arrives intact, in skbs over 64 KB, and the frames
    are all counted."""
    data = random.Random(12).randbytes(4 * NBYTES)
    sizes = []
    with kernel_peer(kind, offload=True, **dev_kwargs) as peer:
        dev = peer.dev
        dev.features |= NETIF_F_GRO
        driver_poll = dev.ndo_poll

        def ndo_poll(budget, now):
            skbs = driver_poll(budget, now)
            sizes.extend(len(skb) for skb in skbs)
            return skbs

        dev.ndo_poll = ndo_poll
        sink, s = kernel_to_pynet(peer, data)
        kernel = peer.ns.link_stats(peer.ifname)
    assert sink.n == len(data) and sink.sha.hexdigest() == hashlib.sha256(data).hexdigest()
    assert s.sk_rmem_alloc == 0 and not s.out_of_order_queue
    assert dev.gro_merged > 0 and 65536 + 14 < max(sizes) <= TAP_BIG_TCP_MAX_SIZE + 14
    # every frame the kernel sent is counted, merged or not (drops would show as fewer)
    assert dev.stats.rx_packets == len(sizes) + dev.gro_merged <= kernel["tx_packets"]
    assert dev.stats.rx_errors == 0
    if kind == "veth":          # the reader asked for (recvmsg by default with vnet_hdr)
        assert dev.rx.ring == dev_kwargs.get("rx_ring", False)


@OFFLOAD
def test_capture_shows_super_segments_only_with_tso(offload, tmp_path):
    """tcpdump on the kernel's end of the TAP: with offloads pynet's data crosses
    as super-segments (one write each); without, as MSS-sized frames."""
    data = random.Random(9).randbytes(8 << 20)
    cap = tmp_path / "tap.pcap"
    with kernel_peer("tap", offload=offload) as peer:
        # --immediate-mode: a short capture must not sit in an unretired ring block
        dump = peer.ns.popen(["tcpdump", "-i", peer.ifname, "-s", "128", "-U", "--immediate-mode",
                              "-w", str(cap), "tcp"], stderr=subprocess.PIPE)
        try:
            while b"listening" not in dump.stderr.readline():
                pass
            sink, _ = pynet_to_kernel(peer, data)
        finally:
            dump.terminate()
            dump.wait(timeout=10)
        mine = socket.inet_aton(peer.pynet_addr())
    assert sink.sha.hexdigest() == hashlib.sha256(data).hexdigest()
    # Frames are cut at 128 bytes; the IPv4 total length tells their real size
    # (0: a BIG TCP super-segment, over 64 KB).
    lengths = [14 + (int.from_bytes(frame[16:18], "big") or 0x10000)
               for _, frame in read_pcap(cap) if frame[26:30] == mine]
    big = [n for n in lengths if n > 1514]
    if offload:
        assert big and max(big) > 60000, f"no super-segment among {len(lengths)} frames"
    else:
        assert not big and len(lengths) > 1000   # (tcpdump may drop some under load)
