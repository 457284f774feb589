"""IPv4 reassembly (RFC 791 s3.2, RFC 815; net/ipv4/ip_fragment.c).

Fragments of one datagram are keyed by (saddr, daddr, id, protocol). Each
queue holds its fragments sorted by offset; a datagram is done when the
first and last fragments are in and no byte is missing. The rules:

- Overlap: a fragment overlapping any other drops the whole datagram (RFC
  5722's rule, which Linux applies to IPv4 too); an exact duplicate is
  dropped alone. Counted in ReasmOverlaps and ReasmFails.
- A non-final fragment's length is cut to a multiple of 8; an empty one, one
  past a known end, or a datagram over 65,535 bytes drops the datagram.
- Timeout: `ipfrag_time` (30 s) after the first fragment the datagram is
  dropped (ReasmTimeout, ReasmFails) and, if the first fragment came, the
  sender gets ICMP time exceeded (RFC 792, RFC 1122 s3.3.2).
- Memory: fragments are charged their truesize; nothing is queued past
  `high_thresh` in total (ipfrag_high_thresh) or `max_queue_mem` for one
  datagram, so a flood of incomplete fragments keeps memory bounded.
"""
import bisect

from pynet import skbtrace
from pynet.checksum import ip_fast_csum
from pynet.icmp import icmp_send
from pynet.skbuff import SKB
from pynet.timer import Timer
from pynet.wire.icmp import ICMP_EXC_FRAGTIME, ICMP_TIME_EXCEEDED
from pynet.wire.ipv4 import IP_DF, IP_MF, IP_OFFSET, IPV4_MAX_LEN

INET_FRAG_FIRST_IN = 0x1
INET_FRAG_LAST_IN = 0x2


class Ipq:
    """One datagram being reassembled (struct ipq)."""

    __slots__ = ("key", "frags", "offsets", "len", "meat", "flags", "mem", "timer", "header",
                 "dev", "dead")

    def __init__(self, key, timer):
        self.key = key
        self.frags = []        # (offset, end, skb) sorted by offset; skb.data at the payload
        self.offsets = []      # the offsets alone, for bisect
        self.len = 0           # the datagram's payload length as far as known
        self.meat = 0          # payload bytes received
        self.flags = 0
        self.mem = 0
        self.timer = timer
        self.header = None     # the first fragment's IP header (bytes)
        self.dev = None
        self.dead = False


class IpFrags:
    """The reassembly state of one stack (struct fqdir)."""

    def __init__(self, net, high_thresh=4 * 1024 * 1024, max_queue_mem=1024 * 1024,
                 timeout=30.0):
        self.net = net
        self.high_thresh = high_thresh
        self.max_queue_mem = max_queue_mem
        self.timeout = timeout
        self.mem = 0
        self.queues = {}

    def kill(self, q):
        """inet_frag_kill: forget the queue and release its memory."""
        if q.dead:
            return
        q.dead = True
        q.timer.delete()
        self.queues.pop(q.key, None)
        self.mem -= q.mem
        q.frags.clear()
        q.offsets.clear()

    def expire(self, q, now):
        """ip_expire: the datagram did not complete in time."""
        if q.dead:
            return
        mib = self.net.mib.ip
        mib.inc("ReasmFails")
        mib.inc("ReasmTimeout")
        first = q.frags[0][2] if q.flags & INET_FRAG_FIRST_IN and q.frags and q.frags[0][0] == 0 else None
        header = q.header
        self.kill(q)
        if first is not None:
            first.push_data(header)
            first.reset_network_header()
            icmp_send(self.net, first, ICMP_TIME_EXCEEDED, ICMP_EXC_FRAGTIME)

    def find(self, key, now):
        q = self.queues.get(key)
        if q is not None:
            return q
        if self.mem > self.high_thresh:
            return None
        q = Ipq(key, None)
        q.timer = Timer(self.net.timers, lambda t, q=q: self.expire(q, t))
        q.timer.mod(now + self.timeout)
        self.queues[key] = q
        return q

    def __len__(self):
        return len(self.queues)


def ip_defrag(net, skb):
    """Queue a fragment (skb.data at its IP header); return the whole datagram when complete."""
    if skbtrace.hook is not None:
        skbtrace.hook("ip_defrag", skb)
    frags = net.ipfrag
    mib = net.mib.ip
    mib.inc("ReasmReqds")
    data = skb.data
    ihl = (data[0] & 0x0F) * 4
    frag_off = (data[6] << 8) | data[7]
    key = (bytes(data[12:20]), (data[4] << 8) | data[5], data[9])
    header = bytes(data[:ihl])
    del data
    q = None if frags.mem + skb.truesize > frags.high_thresh else frags.find(key, net.now)
    if q is None:
        mib.inc("ReasmFails")              # over the memory limit: this fragment is dropped
        return None
    offset = (frag_off & IP_OFFSET) * 8
    end = offset + len(skb) - ihl
    if not frag_off & IP_MF:
        # The last fragment fixes the length; anything disagreeing is corrupt.
        if end < q.len or (q.flags & INET_FRAG_LAST_IN and end != q.len):
            return _discard(frags, q, mib)
        q.flags |= INET_FRAG_LAST_IN
        q.len = end
    else:
        end &= ~7                          # RFC 791: non-final fragments carry 8-byte units
        if end > q.len:
            if q.flags & INET_FRAG_LAST_IN:
                return _discard(frags, q, mib)
            q.len = end
    if end == offset or ihl + q.len > IPV4_MAX_LEN:
        return _discard(frags, q, mib)
    skb.pull(ihl)
    skb.trim(end - offset)
    # Insert, refusing overlap (RFC 5722 s4); a fragment inside one we hold is a
    # duplicate (a retransmission) and is dropped alone.
    i = bisect.bisect_left(q.offsets, offset)
    if ((i < len(q.frags) and q.frags[i][0] == offset and end <= q.frags[i][1])
            or (i > 0 and end <= q.frags[i - 1][1])):
        return None
    if (i > 0 and q.frags[i - 1][1] > offset) or (i < len(q.frags) and q.frags[i][0] < end):
        mib.inc("ReasmOverlaps")
        return _discard(frags, q, mib)
    if skb.tailroom > len(skb) + 256:
        # A small fragment in a large receive buffer (a 64 KB GSO-sized read):
        # keep a right-sized copy, so memory limits count what is really held.
        dev, dst = skb.dev, skb.dst
        skb = skb.copy()
        skb.dev, skb.dst = dev, dst
    if q.mem + skb.truesize > frags.max_queue_mem:
        return _discard(frags, q, mib)
    q.frags.insert(i, (offset, end, skb))
    q.offsets.insert(i, offset)
    q.meat += end - offset
    q.mem += skb.truesize
    frags.mem += skb.truesize
    if offset == 0:
        q.flags |= INET_FRAG_FIRST_IN
        q.header = header
    if q.flags & INET_FRAG_FIRST_IN and q.flags & INET_FRAG_LAST_IN and q.meat == q.len:
        return ip_frag_reasm(net, q, skb.dev)
    return None


def _discard(frags, q, mib):
    frags.kill(q)
    mib.inc("ReasmFails")
    return None


def ip_frag_reasm(net, q, dev):
    """Join the fragments behind the first one's header into a new skb."""
    header = q.header
    ihl = len(header)
    first = q.frags[0][2]
    headroom = max(first.data_offset - ihl, 0)
    skb = SKB(headroom + ihl + q.len)
    skb.reserve(headroom)
    hdr = skb.put(ihl)
    hdr[:] = header
    total = ihl + q.len
    hdr[2], hdr[3] = total >> 8, total & 0xFF
    frag_off = ((hdr[6] << 8) | hdr[7]) & IP_DF
    hdr[6], hdr[7] = frag_off >> 8, 0
    hdr[10] = hdr[11] = 0
    check = ip_fast_csum(hdr)
    hdr[10], hdr[11] = check >> 8, check & 0xFF
    del hdr
    for _, _, frag in q.frags:
        skb.put_data(frag.data)
    frags = net.ipfrag
    frags.kill(q)
    skb.reset_network_header()
    skb.transport_header = skb.data_offset + ihl
    skb.dev = dev
    skb.dst = first.dst
    net.mib.ip.inc("ReasmOKs")
    if skbtrace.hook is not None:
        skbtrace.hook("ip_frag_reasm", skb)
    return skb
