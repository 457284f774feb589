"""Test vocabulary for the IPv4 layer: two pynet stacks on an in-memory wire,
a fake clock, and frame builders for hostile input."""
from pynet.dev.pipe import pipe_pair
from pynet.neighbour import NeighParms
from pynet.stack import Stack
from pynet.wire.ethernet import ETH_P_IP
from pynet.wire.ipv4 import Ipv4Repr
from pynet.skbuff import SKB

A_ADDR, B_ADDR = "198.18.0.1", "198.18.0.2"


class Pair:
    """Stacks a and b joined by a pipe; `run(dt)` advances the fake clock."""

    def __init__(self, seed=1, neigh_parms=None, **kwargs):
        self.da, self.db = pipe_pair(("pyna", "pynb"))
        self.a = Stack(seed=seed, neigh_parms=neigh_parms, **kwargs)
        self.b = Stack(seed=seed + 1, neigh_parms=neigh_parms, **kwargs)
        self.a.add_device(self.da)
        self.b.add_device(self.db)
        self.a.add_address(self.da, A_ADDR + "/24")
        self.b.add_address(self.db, B_ADDR + "/24")
        self.now = 0.0
        self.run(0.01)

    def step(self, dt=0.001):
        self.now += dt
        self.a.poll(self.now)
        self.b.poll(self.now)

    def run(self, seconds, dt=0.001):
        """Advance the clock, polling both stacks every dt (and at every timer due)."""
        end = self.now + seconds
        while self.now < end - 1e-9:
            nxt = [t for t in (self.a.next_timer(), self.b.next_timer()) if t is not None]
            self.step(min([dt, end - self.now] + [max(t - self.now, 1e-6) for t in nxt]))

    def neigh_a(self):
        return self.a.neighbour(self.da, B_ADDR)


def fast_nud(**kw):
    """NUD timers short enough for tests (Linux's defaults are seconds to minutes)."""
    p = dict(base_reachable_time=0.2, delay_probe_time=0.1, retrans_time=0.05)
    p.update(kw)
    return NeighParms(**p)


def inject(stack, dev, frame):
    """Hand a raw Ethernet frame to stack as if dev had received it."""
    skb = SKB.from_bytes(frame, headroom=64)
    skb.dev = dev
    skb.reset_mac_header()
    stack.netif_receive_skb(skb)


def eth(dst, src, payload, proto=ETH_P_IP):
    return dst + src + proto.to_bytes(2, "big") + payload


def ipv4(saddr, daddr, protocol, payload, ident=1, mf=False, offset=0, df=False, ttl=64):
    hdr = bytearray(20)
    Ipv4Repr(saddr, daddr, protocol, len(payload), ttl=ttl, id=ident, mf=mf, df=df,
             frag_offset=offset).emit(hdr)
    return bytes(hdr) + payload
