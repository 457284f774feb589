"""pynet.Stack: one IPv4 host — devices, addresses, routes, neighbours, timers.

The stack is sans-IO: it never reads a clock and never sleeps. The owner
calls `poll(now)` (NAPI-style: each device polled with a budget, every frame
through netif_receive_skb to ip_rcv / arp_rcv, then the timers due, then the
transmit queues flushed) and asks `next_timer()` when it must call again.
`run_until` is the thin adapter that runs a stack on real time, selecting
on the devices' descriptors.

    stack = Stack(seed=1)
    stack.add_device(dev)
    stack.add_address(dev, "198.18.0.2/24")
    stack.add_route("0.0.0.0/0", via="198.18.0.1")
    sock = stack.udp_socket(); sock.sendto(b"hi", ("198.18.0.1", 7))
    stack.run_until(sock.readable, timeout=1.0)
"""
import errno
import random
import selectors
import time

from pynet import skbtrace
from pynet._core import tcp_ack_coalesce
from pynet.arp import ArpOps, arp_rcv, arp_send_gratuitous
from pynet.gro import NETIF_F_GRO, GroStats, gro_receive
from pynet.icmp import IcmpState, PingSocket, icmp_link_failure, icmp_rcv
from pynet.ip_fragment import IpFrags
from pynet.ip_input import (PACKET_BROADCAST, PACKET_HOST, PACKET_MULTICAST, PACKET_OTHERHOST,
                            ip_local_deliver, ip_rcv)
from pynet.ip_output import IPDEFTTL, IpIdents, ip_output
from pynet.neighbour import NeighParms, NeighTable
from pynet.route import Fib
from pynet.snmp import Snmp
from pynet.timer import TimerBase
from pynet.udp import UDPSocket, UdpTable, udp_err, udp_rcv
from pynet.wire.ethernet import ETH_HLEN, ETH_P_ARP, ETH_P_IP
from pynet.wire.ipv4 import IPPROTO_ICMP, IPPROTO_UDP, ip_aton

NAPI_POLL_WEIGHT = 64      # frames taken from a device per poll (Linux's default weight)


def _prefix(cidr):
    addr, _, plen = cidr.partition("/")
    plen = int(plen) if plen else 32
    if not 0 <= plen <= 32:
        raise ValueError(f"prefix length {plen} out of range in {cidr!r}")
    return ip_aton(addr), plen


class Stack:
    """An IPv4 host. Keyword arguments tune what Linux keeps in sysctls."""

    def __init__(self, *, now=0.0, seed=None, neigh_parms=None, neigh_gc_thresh=(128, 512, 1024),
                 ipfrag_high_thresh=4 * 1024 * 1024, ipfrag_max_queue_mem=1024 * 1024,
                 ipfrag_time=30.0, icmp_ratelimit=1.0, icmp_msgs_per_sec=1000,
                 icmp_msgs_burst=50):
        self.now = now
        self.rng = random.Random(seed)
        self.timers = TimerBase()
        self.mib = Snmp()
        self.stats = dict(rx_otherhost=0, rx_nohandler=0, rx_malformed=0, martian_source=0,
                          arp_invalid=0, tcp_acks_folded=0)
        self.sysctl_ip_default_ttl = IPDEFTTL
        self.devices = {}
        self.gro_stats = GroStats()
        # while poll hands a receive batch up: {key: fn} to call as fn(key) once the
        # batch is done (TCP: one ACK per socket per batch); None outside a batch
        self.rx_batch_end = None
        self.protocols = {}
        self.fib = Fib(self.timers, output=ip_output, input=ip_local_deliver)
        t1, t2, t3 = neigh_gc_thresh
        self.arp_tbl = NeighTable(self.timers, ArpOps(self), self.rng,
                                  neigh_parms or NeighParms(), gc_thresh1=t1, gc_thresh2=t2,
                                  gc_thresh3=t3)
        self.arp_tbl.start(now)
        self.ip_idents = IpIdents(self.rng)
        self.ipfrag = IpFrags(self, ipfrag_high_thresh, ipfrag_max_queue_mem, ipfrag_time)
        self.icmp = IcmpState(self, msgs_per_sec=icmp_msgs_per_sec, msgs_burst=icmp_msgs_burst,
                              ratelimit=icmp_ratelimit)
        self.udp_table = UdpTable(self)
        self.inet_add_protocol(IPPROTO_ICMP, lambda skb: icmp_rcv(self, skb), None)
        self.inet_add_protocol(IPPROTO_UDP, lambda skb: udp_rcv(self, skb),
                               lambda skb, type, code, info: udp_err(self, skb, type, code, info))

    # -- configuration ------------------------------------------------------------
    def inet_add_protocol(self, protocol, handler, err_handler=None):
        """Register a transport: handler(skb) gets skb.data at its header with
        network_header set; err_handler(skb, type, code, info) gets an ICMP error
        with skb.data at the quoted IP header (at least 8 bytes of yours follow)."""
        if protocol in self.protocols:
            raise OSError(errno.EEXIST, f"protocol {protocol} already registered")
        self.protocols[protocol] = (handler, err_handler)

    def inet_del_protocol(self, protocol):
        self.protocols.pop(protocol, None)

    def add_device(self, dev):
        dev.open()
        self.devices[dev.ifindex] = dev
        return dev

    def remove_device(self, dev):
        self.devices.pop(dev.ifindex, None)
        self.fib.flush_dev(dev)
        self.arp_tbl.flush_dev(dev)

    def add_address(self, dev, cidr):
        """Assign addr/plen to dev: local, broadcast and connected routes, then a gratuitous ARP."""
        addr, plen = _prefix(cidr)
        self.fib.add_ifaddr(dev, addr, plen)
        if dev.up:
            arp_send_gratuitous(dev, addr)

    def del_address(self, dev, cidr):
        addr, plen = _prefix(cidr)
        self.fib.del_ifaddr(dev, addr, plen)

    def add_route(self, cidr, via=None, dev=None, metric=0, mtu=0):
        dst, plen = _prefix(cidr)
        return self.fib.add_route(dst, plen, gw=ip_aton(via) if via else 0, dev=dev,
                                  metric=metric, mtu=mtu)

    def del_route(self, cidr, via=None, dev=None):
        dst, plen = _prefix(cidr)
        self.fib.del_route(dst, plen, gw=ip_aton(via) if via else None, dev=dev)

    def neighbour(self, dev, addr):
        """The neighbour entry for addr on dev, or None."""
        return self.arp_tbl.entries.get((dev.ifindex, ip_aton(addr) if isinstance(addr, str) else addr))

    # -- sockets ---------------------------------------------------------------------
    def udp_socket(self):
        return UDPSocket(self)

    def ping(self, daddr, **kwargs):
        return PingSocket(self, daddr, **kwargs)

    def socket(self, family=2, type=1, proto=0):
        """A stdlib-shaped socket (pynet.socket) on this stack."""
        from pynet.socket import socket
        return socket(self, family, type, proto)

    # -- the runner thread (pynet.runner) -----------------------------------------------
    def start(self):
        """Run the stack on its own thread; socket calls are safe from any thread."""
        from pynet.runner import runner_of
        runner_of(self).start()
        return self

    def stop(self):
        from pynet.runner import runner_of
        runner_of(self).stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- the loop -------------------------------------------------------------------
    def poll(self, now, budget=NAPI_POLL_WEIGHT):
        """Receive up to `budget` frames per device, run due timers, flush transmit queues.

        Returns the number of frames received. Malformed input is counted and
        dropped; it never raises out of here.
        """
        self.now = now
        received = 0
        for dev in list(self.devices.values()):
            try:
                skbs = dev.poll(budget, now)
            except OSError:
                # The descriptor is gone (EBADFD once its namespace is removed,
                # ENODEV, ...): count it and take the device down, the others go on.
                dev.stats.rx_errors += 1
                try:
                    dev.stop()
                except OSError:        # closing a dead descriptor may fail too; it is down
                    pass
                continue
            if not skbs:
                continue
            received += len(skbs)
            if dev.features & NETIF_F_GRO:      # napi_gro_receive: runs of one flow merged in C
                skbs = gro_receive(skbs, self.gro_stats)
                if len(skbs) > 1:               # and runs of pure ACKs folded into their last
                    skbs, folded = tcp_ack_coalesce(skbs)
                    self.stats["tcp_acks_folded"] += folded
            self.rx_batch_end = batch_end = {}
            try:
                for skb in skbs:
                    self.netif_receive_skb(skb)
            finally:
                self.rx_batch_end = None
            for key, fn in batch_end.items():
                fn(key)
        self.timers.run(now)
        for dev in list(self.devices.values()):
            if dev.up and dev.qdisc:
                dev.qdisc_run()
        return received

    def next_timer(self):
        """When poll must run again even if no frame arrives (None: no timer pending)."""
        return self.timers.next_expiry()

    def netif_receive_skb(self, skb):
        """eth_type_trans and the protocol demux: skb.data at the Ethernet header."""
        if skbtrace.hook is not None:
            skbtrace.hook("netif_receive_skb", skb)
        try:
            if len(skb) < ETH_HLEN:
                self.stats["rx_malformed"] += 1
                return
            data = skb.data
            dst = bytes(data[0:6])
            proto = (data[12] << 8) | data[13]
            del data
            dev = skb.dev
            if dst == dev.hwaddr:
                pkt_type = PACKET_HOST
            elif dst[0] & 1:
                pkt_type = PACKET_BROADCAST if dst == b"\xff" * 6 else PACKET_MULTICAST
            else:
                pkt_type = PACKET_OTHERHOST
            skb.pull(ETH_HLEN)
            skb.reset_network_header()
            skb.protocol = proto
            if proto == ETH_P_IP:
                ip_rcv(self, skb, pkt_type)
            elif proto == ETH_P_ARP:
                if pkt_type != PACKET_OTHERHOST:
                    arp_rcv(self, skb, pkt_type == PACKET_HOST)
            else:
                self.stats["rx_nohandler"] += 1
        except ValueError:          # WireError, SKBError: a frame we could not take apart
            self.stats["rx_malformed"] += 1

    def icmp_link_failure(self, skb):
        icmp_link_failure(self, skb)

    def run_until(self, predicate=None, timeout=None, clock=time.monotonic):
        """Run the stack on real time until predicate() is true (True) or timeout s pass (False)."""
        sel = selectors.DefaultSelector()
        try:
            for dev in self.devices.values():
                try:
                    sel.register(dev.fileno(), selectors.EVENT_READ)
                except (ValueError, NotImplementedError, OSError):
                    pass
            deadline = None if timeout is None else clock() + timeout
            while True:
                now = clock()
                self.poll(now)
                if predicate is not None and predicate():
                    return True
                if deadline is not None and now >= deadline:
                    return False
                wait = 0.1
                nxt = self.next_timer()
                if nxt is not None:
                    wait = min(wait, max(nxt - now, 0.0))
                if deadline is not None:
                    wait = min(wait, max(deadline - now, 0.0))
                sel.select(wait)
        finally:
            sel.close()


def pipe_stacks(addrs=("198.18.0.1", "198.18.0.2"), *, wraps=(None, None), gro=False,
                **pipe_kwargs):
    """Two stacks joined by the in-memory pipe (pynet.dev.pipe), at addrs on one /24:
    (stack_a, stack_b), not started. wraps: a wrapper (pcap, fault injector) to put over
    each device, or None; pipe_kwargs go to pipe_pair (features, mtu, rx_queue_len).
    Needs no privilege: the demo, the socket tests and the benchmark all start here."""
    import secrets
    from pynet.dev.pipe import pipe_pair
    devs = pipe_pair(tuple(f"pyn{secrets.token_hex(4)}" for _ in addrs), **pipe_kwargs)
    stacks = []
    for seed, (addr, dev, wrap) in enumerate(zip(addrs, devs, wraps), 1):
        if wrap is not None:
            dev = wrap(dev)
        if gro:
            dev.features |= NETIF_F_GRO
        stack = Stack(seed=seed)
        stack.add_device(dev)
        stack.add_address(dev, f"{addr}/24")
        stacks.append(stack)
    return tuple(stacks)
