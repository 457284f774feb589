"""IPv4 routing: the FIB, route lookups and dst entries (net/ipv4/fib_*.c, route.c).

The FIB is two tables, as Linux's: `local` (our addresses and broadcasts, /32
entries, RTN_LOCAL / RTN_BROADCAST) consulted first, then `main` (connected
routes, static routes, the default route). A lookup is longest-prefix match;
among routes of one prefix the lowest metric wins.

Every route change bumps `fib.genid`. A dst (`Rtable`) remembers the genid it
was made under, so a dst cached on a socket is found stale on the socket's
next packet (`sock.__sk_dst_check`) and the socket routes again: a new, more
specific route takes effect at once. Path-MTU learned from ICMP lives in
next-hop exceptions keyed by destination (Linux's fnhe), which every dst to
that destination reads, and expires after `mtu_expires` (ip_rt_mtu_expires).
"""
import errno

from pynet.timer import Timer
from pynet.wire.ipv4 import ip_ntoa

RTN_UNICAST = 1
RTN_LOCAL = 2
RTN_BROADCAST = 3

RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
RT_SCOPE_HOST = 254

IP_RT_MTU_EXPIRES = 600.0      # net.ipv4.route.mtu_expires
IP_RT_MIN_PMTU = 552            # net.ipv4.route.min_pmtu
FNHE_MAX = 2048                 # PMTU exceptions kept; the oldest goes first
INADDR_BROADCAST = 0xFFFFFFFF


def inet_make_mask(plen):
    return (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF if plen else 0


_MASKS = tuple(inet_make_mask(plen) for plen in range(33))


class FibRoute:
    """One route: prefix/plen -> device, optional gateway, type, scope, source."""

    __slots__ = ("dst", "plen", "dev", "gw", "type", "scope", "prefsrc", "metric", "mtu",
                 "rth_input")

    def __init__(self, dst, plen, dev, gw=0, type=RTN_UNICAST, scope=RT_SCOPE_UNIVERSE,
                 prefsrc=0, metric=0, mtu=0):
        if not 0 <= plen <= 32:
            raise ValueError(f"prefix length {plen} out of range 0..32")
        self.dst = dst & inet_make_mask(plen)
        self.plen = plen
        self.dev = dev
        self.gw = gw
        self.type = type
        self.scope = scope
        self.prefsrc = prefsrc
        self.metric = metric
        self.mtu = mtu              # RTAX_MTU; 0 = the device's
        self.rth_input = None       # the dst local input through this route uses (nh_rth_input)

    def __repr__(self):
        via = f" via {ip_ntoa(self.gw)}" if self.gw else ""
        return f"<FibRoute {ip_ntoa(self.dst)}/{self.plen}{via} dev {self.dev.name} metric {self.metric}>"


class FibTable:
    """Routes by prefix length. A lookup probes only the lengths that hold
    routes, longest first: a host's tables have two or three, so a lookup
    is that many dict probes, not 33."""

    def __init__(self):
        self._by_len = [dict() for _ in range(33)]
        self._lens = ()             # ((mask, routes by prefix), ...), longest prefix first

    def _update_lens(self):
        self._lens = tuple((_MASKS[plen], self._by_len[plen])
                           for plen in range(32, -1, -1) if self._by_len[plen])

    def insert(self, route):
        routes = self._by_len[route.plen].setdefault(route.dst, [])
        routes.append(route)
        routes.sort(key=lambda r: r.metric)
        self._update_lens()

    def remove(self, dst, plen, gw=None, dev=None):
        """Remove the routes for dst/plen matching gw and dev (when given); return how many."""
        table = self._by_len[plen]
        key = dst & inet_make_mask(plen)
        routes = table.get(key, [])
        keep = [r for r in routes if (gw is not None and r.gw != gw) or (dev is not None and r.dev is not dev)]
        removed = len(routes) - len(keep)
        if keep:
            table[key] = keep
        else:
            table.pop(key, None)
        self._update_lens()
        return removed

    def remove_dev(self, dev):
        removed = 0
        for table in self._by_len:
            for key in list(table):
                keep = [r for r in table[key] if r.dev is not dev]
                removed += len(table[key]) - len(keep)
                if keep:
                    table[key] = keep
                else:
                    del table[key]
        self._update_lens()
        return removed

    def lookup(self, daddr, oif=0):
        for mask, table in self._lens:
            routes = table.get(daddr & mask)
            if routes:
                for r in routes:
                    if not oif or r.dev.ifindex == oif:
                        return r
        return None

    def __iter__(self):
        for _, table in self._lens:
            for routes in table.values():
                yield from routes


class Fnhe:
    """A next-hop exception: the path MTU learned for one destination (RFC 1191)."""

    __slots__ = ("daddr", "pmtu", "expires", "timer")

    def __init__(self, daddr, pmtu, expires, timer):
        self.daddr = daddr
        self.pmtu = pmtu
        self.expires = expires
        self.timer = timer


class Rtable:
    """A dst entry: where a packet to `daddr` goes (struct rtable / dst_entry).

    `output` and `input` are the next functions (ip_output, ip_local_deliver),
    installed by the stack, as rt->dst.output / dst.input.
    """

    __slots__ = ("fib", "dev", "daddr", "gw", "saddr", "type", "route_mtu", "genid",
                 "output", "input")

    def __init__(self, fib, route, daddr, saddr, type):
        self.fib = fib
        self.dev = route.dev if route is not None else None
        self.daddr = daddr
        self.gw = route.gw if route is not None else 0
        self.saddr = saddr
        self.type = type
        self.route_mtu = route.mtu if route is not None else 0
        self.genid = fib.genid
        self.output = fib.output
        self.input = fib.input

    @property
    def mtu(self):
        """dst_mtu: the learned path MTU if any and unexpired, else the route's or device's."""
        mtu = self.route_mtu or self.dev.mtu
        fnhe = self.fib.fnhe.get(self.daddr)
        if fnhe is not None and fnhe.pmtu < mtu:
            return fnhe.pmtu
        return mtu

    def nexthop(self):
        """rt_nexthop: the gateway, or the destination itself when it is on-link."""
        return self.gw or self.daddr

    def check(self):
        """dst_check: self while the FIB has not changed since this dst was made, else None."""
        if self.genid != self.fib.genid:
            return None
        return self

    def __repr__(self):
        via = f" via {ip_ntoa(self.gw)}" if self.gw else ""
        return (f"<Rtable {ip_ntoa(self.daddr)}{via} dev {self.dev.name if self.dev else None} "
                f"src {ip_ntoa(self.saddr)} mtu {self.mtu if self.dev else 0}>")


class Fib:
    """The stack's routing state: tables, addresses, PMTU exceptions, genid."""

    def __init__(self, timers, output=None, input=None):
        self.timers = timers
        self.local = FibTable()
        self.main = FibTable()
        self.genid = 0
        self.fnhe = {}
        self.mtu_expires = IP_RT_MTU_EXPIRES
        self.output = output
        self.input = input
        self.ifaddrs = []          # (dev, addr, plen) in the order added: primary first

    def rt_cache_flush(self):
        """Invalidate every dst made so far (rt_cache_flush bumps rt_genid)."""
        self.genid += 1

    # -- addresses (fib_add_ifaddr / fib_del_ifaddr) ---------------------------
    def add_ifaddr(self, dev, addr, plen):
        if any(d is dev and a == addr for d, a, _ in self.ifaddrs):
            raise OSError(errno.EEXIST, "address already assigned")
        self.ifaddrs.append((dev, addr, plen))
        mask = inet_make_mask(plen)
        self.local.insert(FibRoute(addr, 32, dev, type=RTN_LOCAL, scope=RT_SCOPE_HOST, prefsrc=addr))
        if plen < 31:
            self.local.insert(FibRoute(addr | ~mask & 0xFFFFFFFF, 32, dev, type=RTN_BROADCAST,
                                       scope=RT_SCOPE_LINK, prefsrc=addr))
        if plen < 32:
            self.main.insert(FibRoute(addr & mask, plen, dev, scope=RT_SCOPE_LINK, prefsrc=addr))
        self.rt_cache_flush()

    def del_ifaddr(self, dev, addr, plen):
        before = len(self.ifaddrs)
        self.ifaddrs = [x for x in self.ifaddrs if not (x[0] is dev and x[1] == addr)]
        if len(self.ifaddrs) == before:
            raise OSError(errno.EADDRNOTAVAIL, "no such address")
        mask = inet_make_mask(plen)
        self.local.remove(addr, 32, dev=dev)
        if plen < 31:
            self.local.remove(addr | ~mask & 0xFFFFFFFF, 32, dev=dev)
        if plen < 32:
            self.main.remove(addr & mask, plen, gw=0, dev=dev)
        self.rt_cache_flush()

    def flush_dev(self, dev):
        self.ifaddrs = [x for x in self.ifaddrs if x[0] is not dev]
        self.local.remove_dev(dev)
        self.main.remove_dev(dev)
        self.rt_cache_flush()

    def inet_select_addr(self, dev, dst=0):
        """A source address on dev: one in dst's subnet if any, else dev's primary (inet_select_addr)."""
        first = 0
        for d, addr, plen in self.ifaddrs:
            if d is not dev:
                continue
            if plen and (addr ^ dst) & inet_make_mask(plen) == 0:
                return addr
            first = first or addr
        return first

    def is_local(self, addr):
        r = self.local.lookup(addr)
        return r is not None and r.plen == 32 and r.dst == addr and r.type == RTN_LOCAL

    def is_broadcast(self, addr, dev=None):
        if addr == INADDR_BROADCAST:
            return True
        r = self.local.lookup(addr)
        return (r is not None and r.plen == 32 and r.dst == addr and r.type == RTN_BROADCAST
                and (dev is None or r.dev is dev))

    # -- routes (fib_table_insert / fib_table_delete) ---------------------------
    def add_route(self, dst, plen, gw=0, dev=None, metric=0, mtu=0, prefsrc=0):
        if gw:
            # fib_check_nh: the gateway must be on a connected (link-scope) route.
            via = self.main.lookup(gw, dev.ifindex if dev else 0)
            if via is None or via.gw:
                raise OSError(errno.ENETUNREACH, "Network is unreachable (gateway not on-link)")
            dev = via.dev
        elif dev is None:
            raise ValueError("a route needs a gateway or a device")
        route = FibRoute(dst, plen, dev, gw=gw, metric=metric, mtu=mtu, prefsrc=prefsrc,
                         scope=RT_SCOPE_UNIVERSE if gw else RT_SCOPE_LINK)
        self.main.insert(route)
        self.rt_cache_flush()
        return route

    def del_route(self, dst, plen, gw=None, dev=None):
        if not self.main.remove(dst, plen, gw=gw, dev=dev):
            raise OSError(errno.ESRCH, "No such process (no such route)")
        self.rt_cache_flush()

    # -- lookups -----------------------------------------------------------------
    def ip_route_output(self, daddr, saddr=0, oif=0):
        """ip_route_output_key: the dst for a locally generated packet, or OSError(ENETUNREACH)."""
        if daddr == INADDR_BROADCAST:
            route = self.main.lookup(saddr, oif) if saddr else None
            if route is None and oif:
                route = next((r for r in self.main if r.dev.ifindex == oif and not r.gw), None)
            if route is None:
                raise OSError(errno.ENETUNREACH, "Network is unreachable")
            return Rtable(self, route, daddr, saddr or self.inet_select_addr(route.dev), RTN_BROADCAST)
        local = self.local.lookup(daddr, oif)
        if local is not None and local.plen == 32 and local.type == RTN_BROADCAST:
            return Rtable(self, local, daddr, saddr or local.prefsrc, RTN_BROADCAST)
        route = self.main.lookup(daddr, oif)
        if route is None:
            raise OSError(errno.ENETUNREACH, "Network is unreachable")
        if not saddr:
            saddr = route.prefsrc or self.inet_select_addr(route.dev, route.gw or daddr)
        return Rtable(self, route, daddr, saddr, RTN_UNICAST)

    def ip_route_input(self, daddr, saddr, dev):
        """ip_route_input_noref for a host that does not forward: a local or broadcast dst, or None."""
        if daddr == INADDR_BROADCAST:
            return Rtable(self, None, daddr, saddr, RTN_BROADCAST)
        r = self.local.lookup(daddr)
        if r is None or r.plen != 32 or r.dst != daddr:
            return None
        if r.type == RTN_BROADCAST and r.dev is not dev:
            return None
        # one dst per local route, made again only after a FIB change: every
        # received packet needs it, and it does not depend on the sender
        # (Linux caches it in the next hop, nh_rth_input)
        rt = r.rth_input
        if rt is None or rt.genid != self.genid:
            rt = r.rth_input = Rtable(self, r, daddr, 0, r.type)
        return rt

    # -- path MTU (RFC 1191) -------------------------------------------------------
    def update_pmtu(self, daddr, mtu, now):
        """__ip_rt_update_pmtu: remember a smaller path MTU to daddr for mtu_expires seconds."""
        mtu = max(mtu, IP_RT_MIN_PMTU)
        fnhe = self.fnhe.get(daddr)
        if fnhe is None:
            if len(self.fnhe) >= FNHE_MAX:
                self.fnhe.pop(next(iter(self.fnhe))).timer.delete()
            fnhe = Fnhe(daddr, mtu, now + self.mtu_expires, None)
            fnhe.timer = Timer(self.timers, lambda _now, d=daddr: self.fnhe.pop(d, None))
            self.fnhe[daddr] = fnhe
        elif mtu >= fnhe.pmtu and now < fnhe.expires:
            return fnhe.pmtu                     # RFC 1191 s6.3: only decrease on ICMP
        fnhe.pmtu = mtu
        fnhe.expires = now + self.mtu_expires
        fnhe.timer.mod(fnhe.expires)
        return mtu
