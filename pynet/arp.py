"""ARP (RFC 826) on the neighbour subsystem: the protocol half (net/ipv4/arp.c).

`ArpOps` is what NeighTable calls for IPv4-over-Ethernet: the constructor
(broadcast and loopback need no resolution: NUD_NOARP), `solicit` (send a
request: broadcast while INCOMPLETE, unicast to the known address while
PROBE), `error_report` (resolution failed: the sender hears EHOSTUNREACH) and
the link header. `arp_rcv` answers requests for our addresses and learns the
sender; `arp_send_gratuitous` announces an address when it is added.
"""
from pynet import skbtrace
from pynet.dev.netdevice import dev_queue_xmit
from pynet.neighbour import (NEIGH_UPDATE_F_OVERRIDE, NUD_NOARP, NUD_REACHABLE, NUD_STALE,
                             NUD_VALID, neigh_connect, neigh_update)
from pynet.skbuff import SKB
from pynet.wire import WireError
from pynet.wire.arp import ARP_ETH_IP_LEN, ARPOP_REPLY, ARPOP_REQUEST, ArpPacket, ArpRepr
from pynet.wire.ethernet import BROADCAST, ETH_HLEN, ETH_P_ARP, ETH_P_IP

ZERO_MAC = b"\x00" * 6
ETH_P_ARP_BYTES = ETH_P_ARP.to_bytes(2, "big")
ETH_P_IP_BYTES = ETH_P_IP.to_bytes(2, "big")


class ArpOps:
    """The callbacks NeighTable uses, bound to one stack."""

    def __init__(self, stack):
        self.stack = stack

    def now(self):
        return self.stack.now

    def constructor(self, n):
        """arp_constructor: broadcast addresses and address-less devices never resolve."""
        if self.stack.fib.is_broadcast(n.primary_key, n.dev) or n.dev.hwaddr == ZERO_MAC:
            n.nud_state = NUD_NOARP
            n.ha = BROADCAST if n.dev.hwaddr != ZERO_MAC else ZERO_MAC
            neigh_connect(n)
            n.hh = self.hard_header(n)

    def hard_header(self, n):
        """The Ethernet header to n (eth_header), cached as n.hh for neigh_hh_output."""
        return n.ha + n.dev.hwaddr + ETH_P_IP_BYTES

    def queue_xmit(self, skb):
        return dev_queue_xmit(skb)

    def solicit(self, n, skb):
        """arp_solicit: ask who has n's address, from the source the waiting skb used."""
        fib = self.stack.fib
        saddr = 0
        if skb is not None and skb.network_header >= 0:
            head = skb.network_header - skb.data_offset
            if head >= 0 and len(skb) >= head + 20:
                saddr = int.from_bytes(skb.data[head + 12:head + 16], "big")
        if not saddr or not fib.is_local(saddr):
            saddr = fib.inet_select_addr(n.dev, n.primary_key)
        p = n.tbl.parms
        dst_ha = None
        if n.probes - 1 < p.ucast_probes and n.nud_state & NUD_VALID:
            dst_ha = n.ha                      # PROBE: unicast to the address we doubt
        arp_send(n.dev, ARPOP_REQUEST, n.primary_key, saddr, dst_ha, None)

    def error_report(self, n, skb):
        """arp_error_report -> dst_link_failure: the sender learns the host is unreachable."""
        self.stack.icmp_link_failure(skb)


def arp_send(dev, op, tip, sip, dest_hw, target_hw):
    """arp_create + arp_xmit: one ARP message out of dev (dest_hw None = broadcast)."""
    skb = SKB(ETH_HLEN + ARP_ETH_IP_LEN + dev.needed_headroom + 18)
    skb.reserve(ETH_HLEN + dev.needed_headroom)
    ArpRepr(op, dev.hwaddr, sip, target_hw or ZERO_MAC, tip).emit(skb.put(ARP_ETH_IP_LEN))
    skb.reset_network_header()
    skb.push_data((dest_hw or BROADCAST) + dev.hwaddr + ETH_P_ARP_BYTES)
    skb.reset_mac_header()
    skb.protocol = ETH_P_ARP
    skb.dev = dev
    if skbtrace.hook is not None:
        skbtrace.hook("arp_send" if op == ARPOP_REPLY else "arp_solicit", skb)
    return dev_queue_xmit(skb)


def arp_send_gratuitous(dev, addr):
    """Announce addr on dev (RFC 5227 s3: a request with sender and target both addr)."""
    return arp_send(dev, ARPOP_REQUEST, addr, addr, None, None)


def arp_rcv(stack, skb, pkt_type_host):
    """arp_rcv / arp_process: skb.data at the ARP header. Malformed ones are counted and dropped."""
    if skbtrace.hook is not None:
        skbtrace.hook("arp_rcv", skb)
    dev = skb.dev
    try:
        arp = ArpRepr.parse(ArpPacket(skb.data))
    except WireError:
        stack.stats["arp_invalid"] += 1
        return
    if arp.op not in (ARPOP_REQUEST, ARPOP_REPLY) or arp.sha == dev.hwaddr:
        stack.stats["arp_invalid"] += 1
        return
    sip, tip = arp.sip, arp.tip
    if tip >> 28 == 0xE or tip >> 24 == 127 or sip >> 28 == 0xE:
        stack.stats["arp_invalid"] += 1        # multicast or loopback: never resolved by ARP
        return
    fib = stack.fib
    tbl = stack.arp_tbl
    now = stack.now
    if arp.op == ARPOP_REQUEST and fib.is_local(tip) and tip != sip:
        if sip:   # a sender with address 0 is probing for a conflict (RFC 5227): answer, learn nothing
            n = tbl.lookup_or_create(dev, sip, now)
            if n is not None:
                neigh_update(n, arp.sha, NUD_STALE, NEIGH_UPDATE_F_OVERRIDE, now)   # neigh_event_ns
        arp_send(dev, ARPOP_REPLY, sip, tip, arp.sha, arp.sha)
        return
    n = tbl.lookup(dev, sip)
    if n is None:
        return                                # arp_accept=0: unsolicited news makes no entry
    # A unicast reply answers our probe; anything else only says the address is in use.
    state = NUD_REACHABLE if arp.op == ARPOP_REPLY and pkt_type_host else NUD_STALE
    override = now > n.updated + tbl.parms.locktime or sip == tip
    neigh_update(n, arp.sha, state, NEIGH_UPDATE_F_OVERRIDE if override else 0, now)
