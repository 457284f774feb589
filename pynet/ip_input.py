"""IPv4 input (net/ipv4/ip_input.c): validate, route, reassemble, deliver.

    ip_rcv            RFC 1122 s3.2.1.1-3 checks: version, IHL, lengths, checksum;
                      a whole datagram of ours goes straight to its protocol
    ip_rcv_finish     input route: ours (or broadcast) or dropped (no forwarding)
    ip_local_deliver  reassembly (pynet.ip_fragment), then
    ip_local_deliver_finish   the protocol handler registered with inet_add_protocol

Every drop is counted in the stack's Ip MIB with the counter Linux uses.
"""
from pynet import skbtrace
from pynet.checksum import ip_fast_csum
from pynet.icmp import icmp_send
from pynet.ip_fragment import ip_defrag
from pynet.route import RTN_BROADCAST
from pynet.skbuff import CHECKSUM_COMPLETE, CHECKSUM_NONE
from pynet.wire.icmp import ICMP_DEST_UNREACH, ICMP_PROT_UNREACH
from pynet.wire.ipv4 import IP_MF, IP_OFFSET, IPV4_HLEN, ipv4_hdr_parse

PACKET_HOST = 0
PACKET_BROADCAST = 1
PACKET_MULTICAST = 2
PACKET_OTHERHOST = 3


def ip_rcv(net, skb, pkt_type):
    """skb.data at the IPv4 header (the link header pulled)."""
    if skbtrace.hook is not None:
        skbtrace.hook("ip_rcv", skb)
    mib = net.mib.ip
    if pkt_type == PACKET_OTHERHOST:
        net.stats["rx_otherhost"] += 1     # a frame for another MAC: not ours to count as IP
        return
    mib["InReceives"] += 1
    try:
        # every check of RFC 1122 s3.2.1 and the header's fields in one C call
        ihl, tot_len, _, frag_off, _, _, protocol, saddr, daddr = ipv4_hdr_parse(skb)
    except ValueError:
        ip_rcv_count_error(mib, skb)
        return
    if tot_len < len(skb):
        skb.trim(tot_len)                  # link-layer padding
        if skb.ip_summed == CHECKSUM_COMPLETE:
            skb.ip_summed = CHECKSUM_NONE
    skb.reset_network_header()
    skb.transport_header = skb.data_offset + ihl
    rt = ip_rcv_finish(net, skb, saddr, daddr)
    if rt is None:
        return
    if rt.input is ip_local_deliver and not frag_off & (IP_MF | IP_OFFSET) and \
            skbtrace.hook is None:
        prot = net.protocols.get(protocol)
        if prot is not None:
            # ours and whole, to a known protocol: what ip_local_deliver and
            # ip_local_deliver_finish would do, without their re-reading
            # the header (Linux shortens the same road with early demux)
            skb.pull(ihl)
            skb.reset_transport_header()
            prot[0](skb)
            mib["InDelivers"] += 1
            return
    rt.input(net, skb)                     # dst_input: ip_local_deliver for ours and broadcast


def ip_rcv_count_error(mib, skb):
    """Name the counter for a header ipv4_hdr_parse refused, in RFC 1122's
    order of checks (the checksum before the length)."""
    n = len(skb)
    data = skb.data
    ihl = (data[0] & 0x0F) * 4 if n else 0
    if n < IPV4_HLEN or data[0] >> 4 != 4 or ihl < IPV4_HLEN or n < ihl:
        mib.inc("InHdrErrors")
    elif ip_fast_csum(data[:ihl]) != 0:
        mib.inc("InCsumErrors")
        mib.inc("InHdrErrors")
    elif ((data[2] << 8) | data[3]) > n:
        mib.inc("InTruncatedPkts")
    else:
        mib.inc("InHdrErrors")             # a total length shorter than the header


def ip_rcv_finish(net, skb, saddr, daddr):
    """The input route (skb.dst): ours (or broadcast), or None, counted and dropped."""
    if saddr >> 28 == 0xE or saddr == 0xFFFFFFFF or saddr >> 24 == 127:
        net.stats["martian_source"] += 1   # RFC 1812 s5.3.7: never a valid source
        return None
    rt = net.fib.ip_route_input(daddr, saddr, skb.dev)
    if rt is None:
        net.mib.ip.inc("InAddrErrors")     # not ours, and pynet does not forward
        return None
    skb.dst = rt
    return rt


def ip_local_deliver(net, skb):
    if skbtrace.hook is not None:
        skbtrace.hook("ip_local_deliver", skb)
    data = skb.data
    if ((data[6] << 8) | data[7]) & (IP_MF | IP_OFFSET):
        del data
        skb = ip_defrag(net, skb)
        if skb is None:
            return
    else:
        del data
    ip_local_deliver_finish(net, skb)


def ip_local_deliver_finish(net, skb):
    if skbtrace.hook is not None:
        skbtrace.hook("ip_local_deliver_finish", skb)
    data = skb.data
    ihl = (data[0] & 0x0F) * 4
    protocol = data[9]
    del data
    skb.pull(ihl)
    skb.reset_transport_header()
    prot = net.protocols.get(protocol)
    if prot is not None:
        prot[0](skb)
        net.mib.ip.inc("InDelivers")
        return
    net.mib.ip.inc("InUnknownProtos")
    if skb.dst.type != RTN_BROADCAST:
        icmp_send(net, skb, ICMP_DEST_UNREACH, ICMP_PROT_UNREACH)
