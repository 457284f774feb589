"""The neighbour subsystem: IPv4 -> link address, with the NUD state machine
(net/core/neighbour.c; the ARP half is pynet/arp.py, as net/ipv4/arp.c).

A neighbour moves through its states on timers, never on `if state ==` tests
in the IP layer: the IP layer calls `neigh_output(neigh, skb)`, and the
neighbour's `output` is swapped by state, `neigh_connected_output` while the
link address is confirmed (NUD_CONNECTED) and `neigh_resolve_output` otherwise.

    NONE --send--> INCOMPLETE --reply--> REACHABLE --reachable_time--> STALE
    STALE --send--> DELAY --delay_probe_time--> PROBE --probes fail--> FAILED
    INCOMPLETE --probes fail--> FAILED (queued skbs dropped, senders told EHOSTUNREACH)

While INCOMPLETE, skbs wait on the neighbour's bounded arp_queue; when it is
full the oldest is dropped and counted (unres_discards).
"""
import dataclasses

from pynet import skbtrace
from pynet.skbuff import SKBQueue
from pynet.timer import Timer
from pynet.wire.ipv4 import ip_ntoa

NUD_NONE = 0x00
NUD_INCOMPLETE = 0x01
NUD_REACHABLE = 0x02
NUD_STALE = 0x04
NUD_DELAY = 0x08
NUD_PROBE = 0x10
NUD_FAILED = 0x20
NUD_NOARP = 0x40
NUD_PERMANENT = 0x80
NUD_IN_TIMER = NUD_INCOMPLETE | NUD_REACHABLE | NUD_DELAY | NUD_PROBE
NUD_VALID = NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE | NUD_PROBE | NUD_STALE | NUD_DELAY
NUD_CONNECTED = NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE

NUD_NAMES = {NUD_NONE: "NONE", NUD_INCOMPLETE: "INCOMPLETE", NUD_REACHABLE: "REACHABLE",
             NUD_STALE: "STALE", NUD_DELAY: "DELAY", NUD_PROBE: "PROBE", NUD_FAILED: "FAILED",
             NUD_NOARP: "NOARP", NUD_PERMANENT: "PERMANENT"}

NEIGH_UPDATE_F_OVERRIDE = 0x1
NEIGH_UPDATE_F_ADMIN = 0x2

MIN_TIMER = 0.01                 # HZ/100: no neighbour timer fires sooner than this


@dataclasses.dataclass
class NeighParms:
    """Per-table parameters, with Linux's ARP defaults (net.ipv4.neigh.default.*)."""
    mcast_probes: int = 3
    ucast_probes: int = 3
    app_probes: int = 0
    mcast_reprobes: int = 0
    retrans_time: float = 1.0
    base_reachable_time: float = 30.0
    delay_probe_time: float = 5.0
    gc_staletime: float = 60.0
    locktime: float = 1.0
    unres_qlen: int = 101
    queue_len_bytes: int = 212992   # SK_WMEM_MAX


class Neighbour:
    """One neighbour entry (struct neighbour)."""

    __slots__ = ("tbl", "dev", "primary_key", "ha", "nud_state", "output", "timer", "probes",
                 "confirmed", "updated", "used", "arp_queue", "hh", "dead")

    def __init__(self, tbl, dev, key, now):
        self.tbl = tbl
        self.dev = dev
        self.primary_key = key
        self.ha = None
        self.nud_state = NUD_NONE
        self.output = neigh_resolve_output
        self.timer = Timer(tbl.timers, lambda t, n=self: neigh_timer_handler(n, t))
        self.probes = 0
        p = tbl.parms
        self.confirmed = now - 2 * p.base_reachable_time
        self.updated = now
        self.used = now
        self.arp_queue = SKBQueue(limit=p.unres_qlen, byte_limit=p.queue_len_bytes)
        self.hh = None
        self.dead = False

    @property
    def state_name(self):
        return NUD_NAMES.get(self.nud_state, hex(self.nud_state))

    def __repr__(self):
        ha = self.ha.hex(":") if self.ha else "-"
        return f"<Neighbour {ip_ntoa(self.primary_key)} dev {self.dev.name} lladdr {ha} {self.state_name}>"


class NeighTable:
    """The neighbour table of one protocol (struct neigh_table), bounded with GC.

    `ops` supplies the protocol half (pynet.arp.ArpOps): constructor (initial
    state for an address), solicit (send a probe), error_report (tell the
    sender its skb died), and `now()` reads the stack's current time.
    """

    def __init__(self, timers, ops, rng, parms=None, gc_interval=30.0,
                 gc_thresh1=128, gc_thresh2=512, gc_thresh3=1024):
        self.timers = timers
        self.ops = ops
        self.rng = rng
        self.parms = parms or NeighParms()
        self.gc_interval = gc_interval
        self.gc_thresh1 = gc_thresh1
        self.gc_thresh2 = gc_thresh2
        self.gc_thresh3 = gc_thresh3
        self.entries = {}
        self.last_flush = 0.0
        self.last_rand = 0.0
        self.reachable_time = neigh_rand_reach_time(self)
        self.stats = dict(allocs=0, destroys=0, lookups=0, hits=0, res_failed=0,
                          unres_discards=0, failed_discards=0, forced_gc_runs=0,
                          periodic_gc_runs=0, table_fulls=0)
        self.gc_timer = Timer(timers, self._periodic_work)

    def start(self, now):
        self.last_rand = now
        self.gc_timer.mod(now + self.parms.base_reachable_time / 2)

    def lookup(self, dev, key):
        self.stats["lookups"] += 1
        n = self.entries.get((dev.ifindex, key))
        if n is not None:
            self.stats["hits"] += 1
        return n

    def create(self, dev, key, now):
        """__neigh_create: a new entry, after a forced GC if the table is over its thresholds."""
        n = self.entries.get((dev.ifindex, key))
        if n is not None:
            return n
        count = len(self.entries)
        if count >= self.gc_thresh3 or (count >= self.gc_thresh2 and now > self.last_flush + 5.0):
            if not self._forced_gc(now) and count >= self.gc_thresh3:
                self.stats["table_fulls"] += 1
                return None
        n = Neighbour(self, dev, key, now)
        self.ops.constructor(n)
        self.entries[(dev.ifindex, key)] = n
        self.stats["allocs"] += 1
        return n

    def lookup_or_create(self, dev, key, now):
        return self.lookup(dev, key) or self.create(dev, key, now)

    def _release(self, n):
        n.dead = True
        n.timer.delete()
        self.stats["unres_discards"] += n.arp_queue.purge()    # never resolved, now never sent
        self.entries.pop((n.dev.ifindex, n.primary_key), None)
        self.stats["destroys"] += 1

    def _forced_gc(self, now):
        """neigh_forced_gc: shrink to gc_thresh2, dropping FAILED and long-unused entries."""
        self.stats["forced_gc_runs"] += 1
        self.last_flush = now
        excess = len(self.entries) - self.gc_thresh2
        shrunk = 0
        for n in list(self.entries.values()):
            if shrunk >= excess:
                break
            if n.nud_state & NUD_PERMANENT or n.arp_queue:
                continue
            if n.nud_state == NUD_FAILED or n.updated <= now - 5.0 or not n.nud_state & NUD_VALID:
                self._release(n)
                shrunk += 1
        return shrunk

    def _periodic_work(self, now):
        """neigh_periodic_work: re-randomise reachable_time every 300 s, drop stale and failed entries."""
        self.stats["periodic_gc_runs"] += 1
        if now > self.last_rand + 300.0:
            self.last_rand = now
            self.reachable_time = neigh_rand_reach_time(self)
        if len(self.entries) >= self.gc_thresh1:
            for n in list(self.entries.values()):
                state = n.nud_state
                if state & (NUD_PERMANENT | NUD_IN_TIMER):
                    continue
                if state == NUD_FAILED or now > n.used + self.parms.gc_staletime:
                    self._release(n)
        self.gc_timer.mod(now + self.parms.base_reachable_time / 2)

    def flush_dev(self, dev):
        for n in [n for n in self.entries.values() if n.dev is dev]:
            self._release(n)

    def __len__(self):
        return len(self.entries)

    def __iter__(self):
        return iter(list(self.entries.values()))


def neigh_rand_reach_time(tbl):
    """Uniform in [base/2, 3*base/2) (RFC 4861 s6.3.2's RANDOM_FACTOR, as Linux uses for ARP)."""
    base = tbl.parms.base_reachable_time
    return base / 2 + tbl.rng.random() * base


def neigh_max_probes(n):
    p = n.tbl.parms
    return p.ucast_probes + p.app_probes + (
        p.mcast_reprobes if n.nud_state & NUD_PROBE else p.mcast_probes)


def neigh_connect(n):
    n.output = neigh_connected_output


def neigh_suspect(n):
    n.output = neigh_resolve_output


def _set_timer(n, when, now):
    n.timer.mod(max(when, now + MIN_TIMER))


def neigh_probe(n):
    skb = n.arp_queue.peek() if n.arp_queue else None
    n.probes += 1
    n.tbl.ops.solicit(n, skb)


def neigh_invalidate(n):
    """Resolution failed: each waiting skb is reported to its sender and dropped."""
    while n.arp_queue:
        skb = n.arp_queue.dequeue()
        n.tbl.stats["failed_discards"] += 1
        n.tbl.ops.error_report(n, skb)


def neigh_timer_handler(n, now):
    state = n.nud_state
    if not state & NUD_IN_TIMER:
        return
    p = n.tbl.parms
    nxt = now + p.retrans_time
    if state & NUD_REACHABLE:
        if now <= n.confirmed + n.tbl.reachable_time:
            nxt = n.confirmed + n.tbl.reachable_time
        elif now <= n.used + p.delay_probe_time:
            n.nud_state = NUD_DELAY
            n.updated = now
            neigh_suspect(n)
            nxt = now + p.delay_probe_time
        else:
            n.nud_state = NUD_STALE
            n.updated = now
            neigh_suspect(n)
    elif state & NUD_DELAY:
        if now <= n.confirmed + p.delay_probe_time:
            n.nud_state = NUD_REACHABLE
            n.updated = now
            neigh_connect(n)
            nxt = n.confirmed + n.tbl.reachable_time
        else:
            n.nud_state = NUD_PROBE
            n.updated = now
            n.probes = 0
            nxt = now + max(p.retrans_time, MIN_TIMER)
    if n.nud_state & (NUD_INCOMPLETE | NUD_PROBE) and n.probes >= neigh_max_probes(n):
        n.nud_state = NUD_FAILED
        n.updated = now
        neigh_suspect(n)
        n.tbl.stats["res_failed"] += 1
        neigh_invalidate(n)
        return
    if n.nud_state & NUD_IN_TIMER:
        _set_timer(n, nxt, now)
    if n.nud_state & (NUD_INCOMPLETE | NUD_PROBE):
        neigh_probe(n)


def neigh_event_send(n, skb, now):
    """__neigh_event_send: True when the skb was taken (queued or dropped), False to send it now."""
    n.used = now
    state = n.nud_state
    if state & (NUD_CONNECTED | NUD_DELAY | NUD_PROBE):
        return False
    if n.dead:
        return True
    p = n.tbl.parms
    immediate_probe = False
    if not state & (NUD_STALE | NUD_INCOMPLETE):
        if p.mcast_probes + p.app_probes:
            n.probes = p.ucast_probes
            n.nud_state = NUD_INCOMPLETE
            n.updated = now
            _set_timer(n, now + max(p.retrans_time, MIN_TIMER), now)   # the probe goes now
            immediate_probe = True
        else:
            n.nud_state = NUD_FAILED
            n.updated = now
            n.tbl.stats["failed_discards"] += 1
            n.tbl.ops.error_report(n, skb)
            return True
    elif state & NUD_STALE:
        n.nud_state = NUD_DELAY
        n.updated = now
        _set_timer(n, now + p.delay_probe_time, now)
    if n.nud_state == NUD_INCOMPLETE:
        n.tbl.stats["unres_discards"] += len(n.arp_queue.enqueue_evict(skb))
        if immediate_probe:
            neigh_probe(n)
        return True
    return False


def neigh_update(n, lladdr, new, flags, now):
    """__neigh_update: a new link address and/or state learned (ARP, admin)."""
    old = n.nud_state
    if old & (NUD_NOARP | NUD_PERMANENT) and not flags & NEIGH_UPDATE_F_ADMIN:
        return
    if n.dead:
        return
    if not new & NUD_VALID:
        n.timer.delete()
        if old & NUD_CONNECTED:
            neigh_suspect(n)
        n.nud_state = new
        n.updated = now
        if old & (NUD_INCOMPLETE | NUD_PROBE) and new & NUD_FAILED:
            neigh_invalidate(n)
        return
    if lladdr is None:
        if not old & NUD_VALID:
            return
        lladdr = n.ha
    if new & NUD_CONNECTED:
        n.confirmed = now
    if old & NUD_VALID and lladdr != n.ha and not flags & NEIGH_UPDATE_F_OVERRIDE:
        return                      # a different address inside locktime: keep ours
    if old & NUD_VALID and lladdr == n.ha and new == NUD_STALE and not flags & NEIGH_UPDATE_F_ADMIN:
        new = old                   # hearing from it again says nothing about reachability
    n.updated = now
    if new != old:
        n.timer.delete()
        if new & NUD_PROBE:
            n.probes = 0
        if new & NUD_IN_TIMER:
            _set_timer(n, now + (n.tbl.reachable_time if new & NUD_REACHABLE else 0), now)
        n.nud_state = new
    if lladdr != n.ha:
        n.ha = lladdr
        n.hh = None if n.hh is None else n.tbl.ops.hard_header(n)
        if not new & NUD_CONNECTED:
            n.confirmed = now - 2 * n.tbl.parms.base_reachable_time
    if new & NUD_CONNECTED and n.hh is None:
        n.hh = n.tbl.ops.hard_header(n)       # neigh_hh_init, once the address is known
    if new != old:
        if new & NUD_CONNECTED:
            neigh_connect(n)
        else:
            neigh_suspect(n)
    if not old & NUD_VALID:
        # The address is known: release what waited for it, through the new output.
        while n.nud_state & NUD_VALID and n.arp_queue:
            skb = n.arp_queue.dequeue()
            if skbtrace.hook is not None:
                skbtrace.hook("neigh_update:release", skb)
            n.output(n, skb)
        n.arp_queue.purge()


def dst_confirm_neigh(net, dst):
    """An upper layer saw forward progress through dst (TCP: new data acked): its
    next hop is reachable without asking ARP (RFC 1122 s2.3.2.1, RFC 4861 s7.3.1)."""
    n = net.arp_tbl.entries.get((dst.dev.ifindex, dst.nexthop()))
    if n is not None:
        n.confirmed = net.now


# -- output functions, swapped by state ---------------------------------------------

def neigh_resolve_output(n, skb):
    """Output while the address is unconfirmed: resolve first; the skb may wait."""
    if skbtrace.hook is not None:
        skbtrace.hook("neigh_resolve_output", skb)
    if neigh_event_send(n, skb, n.tbl.ops.now()):
        return 0
    if n.hh is None:
        n.hh = n.tbl.ops.hard_header(n)       # neigh_hh_init
    skb.push_data(n.tbl.ops.hard_header(n))
    return n.tbl.ops.queue_xmit(skb)


def neigh_connected_output(n, skb):
    """Output while the address is confirmed: build the link header and send."""
    if skbtrace.hook is not None:
        skbtrace.hook("neigh_connected_output", skb)
    skb.push_data(n.tbl.ops.hard_header(n))
    return n.tbl.ops.queue_xmit(skb)


def neigh_hh_output(n, skb):
    """Copy the cached link header in front of the skb and send (no lookup, no build)."""
    if skbtrace.hook is not None:
        skbtrace.hook("neigh_hh_output", skb)
    skb.push_data(n.hh)
    return n.tbl.ops.queue_xmit(skb)


def neigh_output(n, skb, skip_cache=False):
    if n.nud_state & NUD_CONNECTED and n.hh is not None and not skip_cache:
        return neigh_hh_output(n, skb)
    return n.output(n, skb)
