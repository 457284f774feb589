"""IPv4 output, step by step under Linux's names (net/ipv4/ip_output.c).

    ip_queue_xmit(sk, skb)            TCP: route from the socket's cached dst, IP header
    ip_build_and_send_pkt(...)        UDP, ICMP: IP header for a given route
      -> ip_local_out                 tot_len, header checksum, OutRequests
      -> dst_output                   skb.dst.output: ip_output for unicast routes
      -> ip_output                    skb.dev, skb.protocol
      -> ip_finish_output             GSO -> ip_finish_output_gso;
                                      longer than the MTU -> ip_fragment(..., ip_finish_output2);
                                      else ip_finish_output2
      -> ip_finish_output2            headroom for the link header, the neighbour
      -> neigh_output                 (pynet.neighbour) neigh_hh_output or neigh.output
      -> dev_queue_xmit               (pynet.dev.netdevice) qdisc, driver's start_xmit

Each function takes (net, sk, skb) as Linux's do; `net` is the pynet.Stack.
Functions return 0 or a negative errno, as Linux's, so TCP can tell a local
drop from success without exceptions on its transmit path.
"""
import errno

from pynet import skbtrace
from pynet.checksum import skb_checksum_help
from pynet.gso import ip_fragment_skb, skb_gso_segment
from pynet.dev.netdevice import NETDEV_TX_BUSY, NETIF_F_HW_CSUM, NETIF_F_IP_CSUM, net_gso_ok
from pynet.neighbour import NUD_CONNECTED, NUD_DELAY, NUD_PROBE, neigh_output
from pynet.skbuff import CHECKSUM_PARTIAL, SKB, SKB_GSO_UDP_L4
from pynet.sock import IP_PMTUDISC_DONT, __sk_dst_check, sk_setup_caps
from pynet.wire.ethernet import ETH_HLEN, ETH_P_IP
from pynet.wire.icmp import ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED
from pynet.wire.ipv4 import IP_DF, Ipv4Packet, ipv4_hdr_push

IPDEFTTL = 64            # net.ipv4.ip_default_ttl
MAX_HEADER = 128         # link headroom pynet reserves in skbs it allocates (LL_MAX_HEADER)
IP_IDENTS_SZ = 2048


class IpIdents:
    """Per-destination IP ID counters for datagrams that may be fragmented.

    Hashed buckets with random starting values, as Linux's ip_idents: ids are
    unique per (daddr, saddr, protocol) for the reassembly window (RFC 6864
    s4.2) without revealing one global counter to every destination.
    """

    def __init__(self, rng):
        self.key = rng.getrandbits(64)
        self.idents = [rng.getrandbits(16) for _ in range(IP_IDENTS_SZ)]

    def reserve(self, daddr, saddr, protocol, segs=1):
        bucket = hash((self.key, daddr, saddr, protocol)) % IP_IDENTS_SZ
        ident = self.idents[bucket]
        self.idents[bucket] = (ident + segs) & 0xFFFF
        return ident


def ip_select_ident(net, sk, daddr, saddr, protocol, df, segs=1):
    """The IP ID: a DF datagram of a connected socket counts on the socket, another
    DF datagram gets 0 (RFC 6864 s4.1: atomic datagrams need no unique ID),
    anything that may be fragmented takes a per-destination id."""
    if df:
        if sk is not None and sk.daddr:
            ident = sk.inet_id
            sk.inet_id = (ident + segs) & 0xFFFF
            return ident
        return 0
    return net.ip_idents.reserve(daddr, saddr, protocol, segs)


def ip_dont_fragment(sk):
    """DF on for PMTU-discovering sockets (RFC 1191), which TCP sockets are by default."""
    return sk is not None and sk.pmtudisc != IP_PMTUDISC_DONT


def ip_alloc_skb(net, dev, size):
    """An empty skb with headroom for the IPv4 header and dev's link header."""
    headroom = MAX_HEADER + (dev.needed_headroom if dev is not None else 0)
    skb = SKB(headroom + size)
    skb.reserve(headroom)
    return skb


def _ip_push_header(net, skb, sk, saddr, daddr, protocol, tos, ttl, df):
    """The IPv4 header, complete with tot_len and checksum, by the C builder (csrc/hdr.c)."""
    ident = ip_select_ident(net, sk, daddr, saddr, protocol, df, max(skb.gso_segs, 1))
    ipv4_hdr_push(skb, saddr, daddr, protocol, ident, ttl, tos, df)


def _ttl(net, sk):
    return sk.ttl if sk is not None and sk.ttl >= 0 else net.sysctl_ip_default_ttl


def ip_queue_xmit(sk, skb):
    """Send a transport segment (skb.data at its header) on sk's route.

    The dst cached on the socket is used while it is still valid
    (__sk_dst_check); otherwise the socket routes again and caches the result.
    """
    net = sk.net
    if skbtrace.hook is not None:
        skbtrace.hook("ip_queue_xmit", skb)
    rt = __sk_dst_check(sk)
    if rt is None:
        try:
            rt = net.fib.ip_route_output(sk.daddr, sk.saddr, sk.bound_dev_if)
        except OSError:
            net.mib.ip.inc("OutNoRoutes")
            sk.sk_err_soft = errno.EHOSTUNREACH
            return -errno.EHOSTUNREACH
        sk_setup_caps(sk, rt)
    skb.sk = sk
    skb.dst = rt
    skb.reset_transport_header()
    _ip_push_header(net, skb, sk, sk.saddr or rt.saddr, sk.daddr, sk.sk_protocol, sk.tos,
                    _ttl(net, sk), ip_dont_fragment(sk))
    if skbtrace.hook is None and rt.output is ip_output and ip_finish_output_direct(net, skb, rt):
        return 0
    return ip_local_out(net, sk, skb)


def ip_finish_output_direct(net, skb, rt):
    """The road a connected socket's segment takes in the common case, in one
    step (see ip_direct_hh): the link header pushed and the frame handed to
    the driver -- what ip_local_out ... neigh_hh_output -> dev_queue_xmit
    would do, without their ten Python calls. False (nothing done) sends it
    down the layers instead."""
    hh = ip_direct_hh(net, rt, len(skb), _gso_network_seglen(skb) if skb.gso_size else 0,
                      skb.gso_type, skb.ip_summed == CHECKSUM_PARTIAL)
    if hh is None or skb.headroom < len(hh):
        return False
    skb.push_data(hh)
    skb.reset_mac_header()
    dev_xmit_direct(net, rt.dev, skb)
    return True


def ip_direct_hh(net, rt, length, gso_seglen, gso_type, partial):
    """The link header for a datagram of `length` bytes (from its IPv4
    header) on rt that may go straight to the driver, or None: the device
    needs no software help (the datagram fits the MTU, or is a GSO skb whose
    segments (gso_seglen bytes) fit and which the device segments; a partial
    checksum the device finishes), its transmit queue is empty and running,
    and the next hop's neighbour is NUD_CONNECTED (or DELAY, PROBE) with a cached
    header."""
    dev = rt.dev
    if not dev.up or dev.qdisc or dev.queue_stopped:
        return None
    features = dev.features
    if gso_seglen:
        if (gso_seglen > rt.mtu or not net_gso_ok(features, gso_type)
                or not features & (NETIF_F_HW_CSUM | NETIF_F_IP_CSUM)):
            return None
    elif length > rt.mtu or (partial and not features & (NETIF_F_HW_CSUM | NETIF_F_IP_CSUM)):
        return None
    n = net.arp_tbl.lookup(dev, rt.nexthop())
    # DELAY and PROBE too: the address is known and neigh_event_send would send at once
    # without changing anything (only STALE moves to DELAY, on the slow path)
    if n is None or not n.nud_state & (NUD_CONNECTED | NUD_DELAY | NUD_PROBE):
        return None
    return n.hh


def dev_xmit_direct(net, dev, skb):
    """Hand a finished frame (ip_direct_hh said yes) to the driver; a busy
    driver gets it back on its queue, as dev_queue_xmit requeues."""
    net.mib.ip.inc("OutRequests")
    skb.dev = dev
    skb.protocol = ETH_P_IP
    if dev.ndo_start_xmit(skb) == NETDEV_TX_BUSY:
        dev.qdisc.enqueue_head(skb)        # dev_requeue_skb: sent when the driver has room
        dev.queue_stopped = True
    return 0


def ip_build_and_send_pkt(net, skb, sk, saddr, daddr, rt, protocol, df=False, tos=0, ttl=None):
    """Put an IPv4 header on skb (data at the transport header) and send it on rt."""
    if skbtrace.hook is not None:
        skbtrace.hook("ip_build_and_send_pkt", skb)
    skb.sk = sk
    skb.dst = rt
    skb.reset_transport_header()
    _ip_push_header(net, skb, sk, saddr, daddr, protocol, tos,
                    _ttl(net, sk) if ttl is None else ttl, df)
    return ip_local_out(net, sk, skb)


def ip_local_out(net, sk, skb):
    """__ip_local_out: count the datagram and send it on its route.

    Linux fills tot_len and the header checksum here; pynet's C builder
    (ipv4_hdr_push) already wrote both when it pushed the header.
    """
    if skbtrace.hook is not None:
        skbtrace.hook("ip_local_out", skb)
    net.mib.ip.inc("OutRequests")
    return dst_output(net, sk, skb)


def dst_output(net, sk, skb):
    if skbtrace.hook is not None:
        skbtrace.hook("dst_output", skb)
    return skb.dst.output(net, sk, skb)


def ip_output(net, sk, skb):
    if skbtrace.hook is not None:
        skbtrace.hook("ip_output", skb)
    skb.dev = skb.dst.dev
    skb.protocol = ETH_P_IP
    return ip_finish_output(net, sk, skb)


def ip_finish_output(net, sk, skb):
    """Pick the road: GSO, fragmentation, or straight on."""
    if skbtrace.hook is not None:
        skbtrace.hook("ip_finish_output", skb)
    mtu = skb.dst.mtu
    if skb.gso_size:
        return ip_finish_output_gso(net, sk, skb, mtu)
    if len(skb) > mtu:
        return ip_fragment(net, sk, skb, mtu, ip_finish_output2)
    return ip_finish_output2(net, sk, skb)


def _gso_network_seglen(skb):
    """Bytes of one segment from its IP header (skb_gso_network_seglen)."""
    thoff = skb.transport_header - skb.data_offset
    if skb.gso_type & SKB_GSO_UDP_L4:
        l4 = 8
    else:
        l4 = (skb.data[thoff + 12] >> 4) * 4
    return thoff + l4 + skb.gso_size


def ip_finish_output_gso(net, sk, skb, mtu):
    """A GSO skb whose segments fit goes on whole (the device or dev_queue_xmit
    segments it); otherwise segment here and fragment each segment."""
    if skbtrace.hook is not None:
        skbtrace.hook("ip_finish_output_gso", skb)
    if _gso_network_seglen(skb) <= mtu:
        return ip_finish_output2(net, sk, skb)
    ret = 0
    for seg in skb_gso_segment(skb):
        seg.sk, seg.dst, seg.dev, seg.protocol = sk, skb.dst, skb.dev, ETH_P_IP
        err = (ip_fragment(net, sk, seg, mtu, ip_finish_output2) if len(seg) > mtu
               else ip_finish_output2(net, sk, seg))
        ret = ret or err
    return ret


def ip_fragment(net, sk, skb, mtu, output):
    """Split skb into fragments of at most mtu bytes and pass each to `output` (RFC 791 s3.2).

    A DF datagram is not split: the sender is told what the MTU is, as an
    ICMP fragmentation-needed would (RFC 1191), and the datagram is dropped.
    """
    if skbtrace.hook is not None:
        skbtrace.hook("ip_fragment", skb)
    if Ipv4Packet.unchecked(skb.data).frag_off & IP_DF:
        net.mib.ip.inc("FragFails")
        from pynet.icmp import icmp_local_error
        icmp_local_error(net, skb, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, mtu)
        return -errno.EMSGSIZE
    if skb.ip_summed == CHECKSUM_PARTIAL:
        skb_checksum_help(skb)
    try:
        frags = ip_fragment_skb(skb, mtu)
    except ValueError:
        net.mib.ip.inc("FragFails")
        return -errno.EINVAL
    net.mib.ip.inc("FragOKs")
    net.mib.ip.inc("FragCreates", len(frags))
    ret = 0
    for frag in frags:
        frag.sk, frag.dst, frag.dev, frag.protocol = sk, skb.dst, skb.dev, ETH_P_IP
        frag.reset_network_header()
        ret = output(net, sk, frag) or ret
    return ret


def ip_finish_output2(net, sk, skb):
    """Room for the link header, then the neighbour of the next hop sends it."""
    if skbtrace.hook is not None:
        skbtrace.hook("ip_finish_output2", skb)
    rt = skb.dst
    dev = rt.dev
    hh_len = ETH_HLEN + dev.needed_headroom
    if skb.headroom < hh_len:
        skb.cow_head(hh_len)
    n = net.arp_tbl.lookup_or_create(dev, rt.nexthop(), net.now)
    if n is None:
        net.mib.ip.inc("OutDiscards")       # neighbour table full
        return -errno.ENOBUFS
    if skbtrace.hook is not None:
        skbtrace.hook("neigh_output", skb)
    return neigh_output(n, skb)
