"""The IPv4 layer against the Linux kernel in a namespace, over TAP and AF_PACKET (veth)."""
import errno
import hashlib
import os
import subprocess
import sys
import textwrap
import time

import pytest
from ipkit import fast_nud

from pynet.neighbour import NUD_DELAY, NUD_FAILED, NUD_PROBE, NUD_REACHABLE, NUD_STALE
from pynet.netns import NetNamespace, kernel_peer, unique_name
from pynet.skbtrace import Tracer
from pynet.stack import Stack
from pynet.wire.ipv4 import ip_aton

pytestmark = pytest.mark.priv
KINDS = pytest.mark.parametrize("kind", ["tap", "veth"], ids=["tap", "af_packet"])

UDP_ECHO = textwrap.dedent("""
    import socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", int(sys.argv[1])))
    print("ready", flush=True)
    while True:
        data, addr = s.recvfrom(65535)
        s.sendto(data, addr)
""")

UDP_CLIENT = textwrap.dedent("""
    import hashlib, os, socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    for size in (5, 1472, 60000):
        data = os.urandom(size)
        s.sendto(data, (sys.argv[1], int(sys.argv[2])))
        back, _ = s.recvfrom(65535)
        assert hashlib.sha256(back).digest() == hashlib.sha256(data).digest(), size
    t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t.settimeout(3)
    t.connect((sys.argv[1], 9999))          # no pynet socket there: port unreachable
    t.send(b"x")
    try:
        t.recv(10)
        print("no error", flush=True)
    except ConnectionRefusedError:
        print("ok", flush=True)
""")


def make_stack(peer, **kwargs):
    stack = Stack(now=time.monotonic(), seed=11, **kwargs)
    stack.add_device(peer.dev)
    stack.add_address(peer.dev, f"{peer.pynet_addr()}/{peer.prefixlen}")
    return stack


def start(ns, script, *args):
    proc = ns.popen([sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, text=True)
    ns.on_close(lambda: (proc.kill(), proc.wait()))
    return proc


def wait_ready(stack, proc):
    """Run the stack until proc prints its first line (its socket is bound)."""
    os.set_blocking(proc.stdout.fileno(), False)
    buf = []

    def ready():
        line = proc.stdout.readline()
        buf.append(line)
        return bool(line) or proc.poll() is not None
    stack.run_until(ready, timeout=5)
    assert "".join(buf).strip(), proc.stderr.read()


@KINDS
def test_ping_both_ways(kind):
    with kernel_peer(kind) as peer:
        stack = make_stack(peer)
        proc = peer.ns.popen(["ping", "-c", "200", "-i", "0.01", "-W", "1", peer.pynet_addr()],
                             stdout=subprocess.PIPE, text=True)
        try:
            stack.run_until(lambda: proc.poll() is not None, timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
        out = proc.stdout.read()
        assert "200 packets transmitted, 200 received" in out, out
        print(f"kernel ping {kind}: {out.strip().splitlines()[-1]}")
        ping = stack.ping(peer.kernel_addr)
        for i in range(200):
            ping.send(time.monotonic())
            assert stack.run_until(lambda: len(ping.replies) == i + 1, timeout=1.0)
            time.sleep(0.002)
        assert [s for s, _, _ in ping.replies] == list(range(200))
        rtts = sorted(r for _, r, _ in ping.replies)
        assert len(rtts) == 200 and rtts[0] > 0        # an RTT recorded for every reply
        print(f"pynet ping {kind}: median rtt {rtts[100] * 1e6:.0f} us")


@pytest.mark.parametrize("offload", [False, True], ids=["plain", "vnet_hdr"])
@KINDS
def test_udp_echo_both_ways_with_60k_datagrams(kind, offload):
    with kernel_peer(kind, offload=offload) as peer:
        stack = make_stack(peer)
        server = start(peer.ns, UDP_ECHO, 7)
        wait_ready(stack, server)
        sock = stack.udp_socket()
        for size in (5, 1472, 60000):
            data = os.urandom(size)
            sock.sendto(data, (peer.kernel_addr, 7))
            assert stack.run_until(sock.readable, timeout=3)
            back, addr = sock.recvfrom(65535)
            assert addr == (peer.kernel_addr, 7)
            assert hashlib.sha256(back).digest() == hashlib.sha256(data).digest()
        # a connected socket hears the kernel's port unreachable as ECONNREFUSED
        refused = stack.udp_socket()
        refused.connect((peer.kernel_addr, 9999))
        refused.send(b"x")
        assert stack.run_until(refused.readable, timeout=2)
        with pytest.raises(ConnectionRefusedError):
            refused.recv(10)
        # and the kernel as the client of a pynet echo server
        echo = stack.udp_socket()
        echo.bind(("", 7))

        def serve():
            while echo.readable():
                data, addr = echo.recvfrom(65535)
                echo.sendto(data, addr)
            return client.poll() is not None
        client = start(peer.ns, UDP_CLIENT, peer.pynet_addr(), 7)
        assert stack.run_until(serve, timeout=10)
        assert client.stdout.read().strip() == "ok", client.stderr.read()
        assert stack.mib.ip["ReasmOKs"] == 2 and stack.mib.ip["FragOKs"] == 2
        k = peer.ns.counters()["Ip"]
        assert k["ReasmOKs"] == 2 and k["FragOKs"] == 2


@KINDS
def test_neighbour_states_against_the_kernel(kind):
    with kernel_peer(kind) as peer:
        stack = make_stack(peer, neigh_parms=fast_nud(base_reachable_time=0.4,
                                                      delay_probe_time=0.2, retrans_time=0.1))
        server = start(peer.ns, UDP_ECHO, 7)
        wait_ready(stack, server)
        sock = stack.udp_socket()
        sock.connect((peer.kernel_addr, 7))
        errors = []
        sock.sk_error_report = lambda sk: errors.append(sk.sk_err)
        sock.send(b"a")
        assert stack.run_until(sock.readable, timeout=2)
        sock.recv(10)
        n = stack.neighbour(peer.dev, peer.kernel_addr)
        assert n.nud_state == NUD_REACHABLE and n.ha == peer.kernel_hwaddr
        # the kernel learnt us too
        out = peer.ns.run(["ip", "neigh", "show", peer.pynet_addr()], capture_output=True, text=True).stdout
        assert peer.dev.hwaddr.hex(":") in out.lower()
        assert stack.run_until(lambda: n.nud_state == NUD_STALE, timeout=2)
        states = []

        def watch():
            if not states or states[-1] != n.nud_state:
                states.append(n.nud_state)
            return n.nud_state == NUD_REACHABLE
        sock.send(b"b")
        assert stack.run_until(watch, timeout=3)
        assert states == [NUD_DELAY, NUD_PROBE, NUD_REACHABLE]
        assert stack.run_until(lambda: n.nud_state == NUD_STALE, timeout=2)
        # the kernel's address disappears: no one answers the probes
        with peer.ns.iproute() as ipr:
            idx = ipr.link_lookup(ifname=peer.ifname)[0]
            ipr.addr("del", index=idx, address=peer.kernel_addr, prefixlen=peer.prefixlen)
        states.clear()
        while sock.readable():
            sock.recv(10)
        sock.send(b"c")
        assert stack.run_until(lambda: watch() or n.nud_state == NUD_FAILED, timeout=3)
        assert states == [NUD_DELAY, NUD_PROBE, NUD_FAILED]
        failed = stack.arp_tbl.stats["failed_discards"]
        for i in range(3):
            sock.send(b"q%d" % i)                     # queued on a new resolution
        assert len(n.arp_queue) == 3
        assert stack.run_until(lambda: n.nud_state == NUD_FAILED, timeout=3)
        assert stack.arp_tbl.stats["failed_discards"] == failed + 3
        assert errors == [errno.EHOSTUNREACH] * 3
        with pytest.raises(OSError) as e:
            sock.send(b"d")
        assert e.value.errno == errno.EHOSTUNREACH


@KINDS
def test_first_datagram_trace_shows_the_path_and_the_arp_exchange(kind):
    with kernel_peer(kind) as peer:
        stack = make_stack(peer)
        server = start(peer.ns, UDP_ECHO, 7)
        wait_ready(stack, server)
        sock = stack.udp_socket()
        with Tracer() as t:
            sock.sendto(b"traced", (peer.kernel_addr, 7))
            assert stack.run_until(sock.readable, timeout=2)
        fs = t.functions()
        expect = ["udp_sendmsg", "ip_build_and_send_pkt", "ip_local_out", "dst_output", "ip_output",
                  "ip_finish_output", "ip_finish_output2", "neigh_output", "neigh_resolve_output",
                  "arp_solicit", "dev_queue_xmit", "start_xmit", "netif_receive_skb", "arp_rcv",
                  "neigh_update:release", "neigh_connected_output", "dev_queue_xmit", "start_xmit",
                  "netif_receive_skb", "ip_rcv",
                  "ip_local_deliver", "ip_local_deliver_finish", "udp_rcv"]
        it = iter(fs)
        assert all(f in it for f in expect), fs
        geo = dict(t.events[:fs.index("arp_solicit")])
        # the same buffer, data moving back over each header: UDP(8) -> IP(20) -> Ethernet(14)
        assert geo["ip_local_out"][1] == geo["udp_sendmsg"][1] - 20
        rel = t.events[fs.index("neigh_update:release")][1]
        sent = t.events[fs.index("dev_queue_xmit", fs.index("neigh_update:release"))][1]
        assert sent[1] == rel[1] - 14 and sent[2] == rel[2]
        # the driver is handed that very frame
        assert t.events[fs.index("start_xmit", fs.index("neigh_update:release"))][1] == sent
        for f, g in t.events:
            print(f"{f:28s} head={g[0]} data={g[1]} tail={g[2]} end={g[3]}")


def _sysctl(path, value):
    with open(path, "w") as f:
        f.write(value)


@KINDS
def test_routing_via_a_kernel_router_with_a_1280_link(kind):
    with kernel_peer(kind) as peer:
        router = peer.ns
        with NetNamespace() as far:
            inner, outer = unique_name(), unique_name()
            # router <-> far host, 1280 MTU, 198.19.250.0/24
            from pyroute2 import IPRoute
            with IPRoute(netns=router.name) as ipr:
                ipr.link("add", ifname=inner, kind="veth", peer={"ifname": outer, "net_ns_fd": far.name})
                idx = ipr.link_lookup(ifname=inner)[0]
                ipr.link("set", index=idx, mtu=1280, state="up")
                ipr.addr("add", index=idx, address="198.19.250.1", prefixlen=24)
                tap = ipr.link_lookup(ifname=peer.ifname)[0]
                ipr.addr("add", index=tap, address=peer.pynet_addr(200), prefixlen=peer.prefixlen)
            router.run_in(_sysctl, "/proc/sys/net/ipv4/ip_forward", "1")
            with far.iproute() as ipr:
                idx = ipr.link_lookup(ifname=outer)[0]
                ipr.link("set", index=idx, mtu=1280, state="up")
                ipr.addr("add", index=idx, address="198.19.250.2", prefixlen=24)
                ipr.route("add", dst="0.0.0.0/0", gateway="198.19.250.1")
            stack = make_stack(peer)
            stack.add_route("198.19.250.0/24", via=peer.kernel_addr)
            server = start(far, UDP_ECHO, 7)
            wait_ready(stack, server)
            sock = stack.udp_socket()
            sock.connect(("198.19.250.2", 7))

            def echo(size):
                data = os.urandom(size)
                sock.send(data)
                if not stack.run_until(sock.readable, timeout=2):
                    return False
                return sock.recv(65535) == data
            assert echo(100)
            assert sock.sk_dst_cache.gw == ip_aton(peer.kernel_addr)
            # a more specific route, through the router's second address, on the next packet
            stack.add_route("198.19.250.2/32", via=peer.pynet_addr(200))
            assert echo(100)
            assert sock.sk_dst_cache.gw == ip_aton(peer.pynet_addr(200))
            assert stack.neighbour(peer.dev, peer.pynet_addr(200)).nud_state == NUD_REACHABLE
            # 1,400 bytes with DF cannot cross the 1,280 link: frag-needed lowers our PMTU
            assert sock.getsockopt(0, 14) == 1500
            with pytest.raises(OSError) as e:           # told, as Linux tells a connected socket
                echo(1400)
            assert e.value.errno == errno.EMSGSIZE
            assert stack.mib.icmp["InDestUnreachs"] == 1
            assert sock.getsockopt(0, 14) == 1280
            assert echo(1400)                           # now fragmented by pynet
            assert stack.mib.ip["FragOKs"] >= 1


UDP_GSO_SENDER = textwrap.dedent("""
    import socket, sys
    UDP_SEGMENT = 103                      # linux/udp.h
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_UDP, UDP_SEGMENT, 1400)
    data = bytes(i % 251 for i in range(10240))
    print("ready", flush=True)
    sys.stdin.readline()
    s.sendto(data, (sys.argv[1], int(sys.argv[2])))
    print("sent", flush=True)
""")


def test_udp_gso_from_the_kernel_arrives_as_its_segments():
    """A kernel socket with UDP_SEGMENT hands the TAP one 10,240-byte GSO skb
    (TUN_F_USO4); the receiver sees gso_size datagrams (udp_rcv_segment)."""
    with kernel_peer("tap", offload=True) as peer:
        stack = make_stack(peer)
        sock = stack.udp_socket()
        sock.bind(("", 4000))
        proc = peer.ns.popen([sys.executable, "-c", UDP_GSO_SENDER, peer.pynet_addr(), "4000"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        peer.ns.on_close(lambda: (proc.kill(), proc.wait()))
        assert proc.stdout.readline().strip() == "ready"
        # resolve the kernel's neighbour first, so the datagram is not held in its arp_queue
        ping = stack.ping(peer.kernel_addr)
        ping.send(time.monotonic())
        assert stack.run_until(lambda: ping.replies, timeout=3)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        got = []

        def drain():
            while sock.readable():
                got.append(sock.recv(65535))
            return len(got) >= 8
        stack.run_until(drain, timeout=3)
        data = bytes(i % 251 for i in range(10240))
        assert [len(d) for d in got] == [1400] * 7 + [440]
        assert b"".join(got) == data
        assert stack.mib.udp["InDatagrams"] == 8
