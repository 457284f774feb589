"""Regenerate the golden captures in this directory from the Linux kernel.

Run as root (not part of CI): python tests/captures/make_captures.py

Topology, three network namespaces joined by veths (checksum and
segmentation offloads off, so tcpdump sees finished frames; IPv6 off, so
nothing else talks):

    A 198.18.1.2 ---- 198.18.1.1 R 198.18.2.1 ---- 198.18.2.2 B
                                         R-B link MTU 1280

(This kernel has no 8021q module, so the tests make their tagged frame by
inserting an 802.1Q tag into a captured one.)

tcpdump runs in A on its veth; each scenario writes one pcap:
  arp_icmp.pcap     ARP request/reply, ICMP echo request/reply (kernel ping socket)
  icmp_errors.pcap  time exceeded (TTL 1), fragmentation needed (DF, 1400 B
                    through the 1280 link), port unreachable
  tcp.pcap          a kernel connect to a kernel listener: SYN with options,
                    SYN-ACK, data both ways, FIN
  tcp_fastopen.pcap two Fast Open connects: cookie request, cookie, SYN+data
  udp_frag.pcap     a 4,000-byte UDP datagram in fragments, and the port
                    unreachable quoting it
"""
import os
import random
import subprocess
import sys
import time
from contextlib import ExitStack

from pyroute2 import IPRoute, NetNS, netns
from pyroute2.ethtool import Ethtool

from pynet.netns import run_in_netns

HERE = os.path.dirname(os.path.abspath(__file__))
SFX = "%04x" % random.randrange(1 << 16)
NS = {r: f"pynw{r}{SFX}" for r in "ARB"}
OFFLOADS = ("tx-checksum-ip-generic", "tx-generic-segmentation", "tx-tcp-segmentation",
            "tx-vlan-hw-insert", "rx-vlan-hw-parse")


def in_ns(ns, code, *args, wait=True):
    """Run Python code inside namespace ns (started from a thread inside it)."""
    p = run_in_netns(ns, subprocess.Popen, [sys.executable, "-c", code, *map(str, args)],
                     stdout=subprocess.PIPE, text=True)
    if wait:
        out, _ = p.communicate(timeout=20)
        if p.returncode:
            raise RuntimeError(f"in {ns}: exit {p.returncode}")
        return out
    return p


SYSCTL = """
import sys
for kv in sys.argv[1:]:
    k, v = kv.split("=", 1)
    open("/proc/sys/" + k.replace(".", "/"), "w").write(v)
"""


def veth(ip, ns_a, name_a, ns_b, name_b, mtu=1500):
    """A veth pair made in the root namespace (so Ethtool reaches it), moved into ns_a/ns_b."""
    tmp_a, tmp_b = f"pynw{SFX}{name_a}", f"pynw{SFX}{name_b}"
    ip.link("add", ifname=tmp_a, kind="veth", peer=tmp_b)
    eth = Ethtool()
    for tmp in (tmp_a, tmp_b):
        feats = eth.get_features(tmp)
        for f in OFFLOADS:
            feats.features[f].enable = False
        eth.set_features(tmp, feats)
        ip.link("set", index=ip.link_lookup(ifname=tmp)[0], mtu=mtu)
    eth.close()
    for tmp, ns, name in ((tmp_a, ns_a, name_a), (tmp_b, ns_b, name_b)):
        ip.link("set", index=ip.link_lookup(ifname=tmp)[0], net_ns_fd=ns)
        with NetNS(ns) as n:
            n.link("set", index=n.link_lookup(ifname=tmp)[0], ifname=name)


def addr(ns, ifname, address):
    with NetNS(ns) as n:
        idx = n.link_lookup(ifname=ifname)[0]
        n.addr("add", index=idx, address=address, prefixlen=24)
        n.link("set", index=idx, state="up")


def route(ns, dst, gw):
    with NetNS(ns) as n:
        n.route("add", dst=dst, gateway=gw)


def capture(name, action):
    """tcpdump on A's veth while action() runs."""
    path = os.path.join(HERE, name)
    p = run_in_netns(NS["A"], subprocess.Popen,
                     ["tcpdump", "-i", "veth0", "-n", "-s", "0", "-U", "--immediate-mode", "-w", path],
                     stderr=subprocess.PIPE, text=True)
    p.stderr.readline()                      # "listening on veth0 ..." once it is capturing
    time.sleep(0.3)
    try:
        action()
        time.sleep(1.0)
    finally:
        p.terminate()
        p.wait(timeout=10)
    print(name, os.path.getsize(path), "bytes")


PING = """
import socket, sys
dst, ttl = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
s.settimeout(2)
s.sendto(bytes([8, 0, 0, 0, 0, 0, 0, 1]) + b"pynet golden ping", (dst, 0))
try:
    s.recv(2048)
except OSError:
    pass
"""

UDP_SEND = """
import socket, sys
dst, port, size, pmtu = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, pmtu)  # IP_MTU_DISCOVER
s.connect((dst, port))
try:
    s.send(bytes(i & 0xff for i in range(size)))
except OSError:
    pass
"""

TCP_SERVER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if sys.argv[2] == "1":
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 16)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen()
print("ready", flush=True)
for _ in range(int(sys.argv[3])):
    c, _ = s.accept()
    data = c.recv(4096)
    c.sendall(b"pynet golden reply: " + data[:16])
    c.close()
"""

TCP_CLIENT = """
import socket, sys, time
dst, port, fastopen = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
s = socket.socket()
msg = b"pynet golden data segment"
if fastopen:
    s.sendto(msg, socket.MSG_FASTOPEN, (dst, port))
else:
    s.connect((dst, port))
    s.sendall(msg)
s.recv(4096)
time.sleep(0.2)
s.close()
time.sleep(0.3)
"""


def tcp_exchange(port, fastopen, connects):
    server = in_ns(NS["B"], TCP_SERVER, port, int(fastopen), connects, wait=False)
    server.stdout.readline()
    for _ in range(connects):
        in_ns(NS["A"], TCP_CLIENT, "198.18.2.2", port, int(fastopen))
    server.wait(timeout=10)


def main():
    with ExitStack() as stack:
        for ns in NS.values():
            netns.create(ns)
            stack.callback(netns.remove, ns)
            in_ns(ns, SYSCTL, "net.ipv6.conf.all.disable_ipv6=1",
                  "net.ipv6.conf.default.disable_ipv6=1")
        with IPRoute() as ip:
            veth(ip, NS["A"], "veth0", NS["R"], "vetha")
            veth(ip, NS["R"], "vethb", NS["B"], "veth0", mtu=1280)
        addr(NS["A"], "veth0", "198.18.1.2")
        addr(NS["R"], "vetha", "198.18.1.1")
        addr(NS["R"], "vethb", "198.18.2.1")
        addr(NS["B"], "veth0", "198.18.2.2")
        route(NS["A"], "198.18.2.0/24", "198.18.1.1")
        route(NS["B"], "198.18.1.0/24", "198.18.2.1")
        in_ns(NS["R"], SYSCTL, "net.ipv4.ip_forward=1")
        in_ns(NS["A"], SYSCTL, "net.ipv4.ping_group_range=0 0", "net.ipv4.tcp_fastopen=1")
        in_ns(NS["B"], SYSCTL, "net.ipv4.tcp_fastopen=2")

        capture("arp_icmp.pcap", lambda: in_ns(NS["A"], PING, "198.18.1.1", 64))

        def errors():
            in_ns(NS["A"], PING, "198.18.2.2", 1)                       # time exceeded from R
            in_ns(NS["A"], UDP_SEND, "198.18.2.2", 9, 1400, 2)          # IP_PMTUDISC_DO: frag needed
            in_ns(NS["A"], UDP_SEND, "198.18.2.2", 9, 100, 0)           # port unreachable from B
        capture("icmp_errors.pcap", errors)
        capture("tcp.pcap", lambda: tcp_exchange(5001, False, 1))
        capture("tcp_fastopen.pcap", lambda: tcp_exchange(5002, True, 2))
        # IP_PMTUDISC_DONT: fragmented by A, refragmented by R, port unreachable from B
        capture("udp_frag.pcap", lambda: in_ns(NS["A"], UDP_SEND, "198.18.2.2", 9, 4000, 0))


if __name__ == "__main__":
    main()
