"""A seeded fault injector that wraps any device (smoltcp's FaultInjector).

    dev = FaultInjector(TapDevice(...), seed=1, drop=0.01, reorder=0.02)
    dev = FaultInjector(lower, seed=1, tx=Faults(delay=0.05), rx=Faults(corrupt=0.001))

Each direction has its own Faults and its own random stream derived from the
seed, so the same seed and the same frames give the same faults. Per frame,
in this order: rate limit (token bucket, excess dropped), drop, corrupt (one
random bit flipped), CE mark (ECN-capable IPv4 only, RFC 3168 section 5;
the header checksum is updated, RFC 1624), duplicate, reorder (held back and
sent after the next frame, or at the next poll), delay (+ uniform jitter).

The injector never reads a clock: time is the `now` the caller passes to
poll() (seconds, any epoch). Frames sent between polls are stamped with the
last `now` seen; delayed frames leave at the first poll at or after their
due time. Counters per direction are in `tx_faults` / `rx_faults`.
"""
from dataclasses import asdict, dataclass
import heapq
import itertools
import random

from pynet.checksum import csum_replace2
from pynet.dev.netdevice import NETDEV_TX_BUSY, NETDEV_TX_OK, DeviceWrapper


@dataclass
class Faults:
    """What to do to one direction's frames. Probabilities are per frame."""
    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    corrupt: float = 0.0
    ce_mark: float = 0.0
    delay: float = 0.0          # seconds every frame waits
    jitter: float = 0.0         # plus uniform [0, jitter)
    rate: float = None          # frames per second; None: unlimited
    burst: int = 1              # token bucket depth for `rate`

    def __post_init__(self):
        for name in ("drop", "duplicate", "reorder", "corrupt", "ce_mark"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], not {p}")
        if self.delay < 0 or self.jitter < 0:
            raise ValueError("delay and jitter must be >= 0")
        if self.rate is not None and (self.rate <= 0 or self.burst < 1):
            raise ValueError("rate must be > 0 and burst >= 1")


@dataclass
class FaultStats:
    frames: int = 0          # frames that entered the injector
    dropped: int = 0
    rate_dropped: int = 0
    corrupted: int = 0
    ce_marked: int = 0
    duplicated: int = 0
    reordered: int = 0
    delayed: int = 0
    overflow: int = 0        # dropped because the injector's own queue was full

    def as_dict(self):
        return asdict(self)


def _ecn_capable(d):
    """An IPv4 packet in an Ethernet frame marked ECT(0) or ECT(1)."""
    return (len(d) >= 34 and d[12] == 0x08 and d[13] == 0x00 and d[14] >> 4 == 4
            and d[15] & 3 in (1, 2))


def _set_ce(skb):
    d = skb.data
    old = (d[14] << 8) | d[15]
    d[15] |= 3
    check = csum_replace2((d[24] << 8) | d[25], old, old | 3)
    d[24], d[25] = check >> 8, check & 0xFF


class _Direction:
    """The faults of one direction: frames in, frames out (now or later)."""

    def __init__(self, faults, rng, limit):
        self.f = faults
        self.rng = rng
        self.stats = FaultStats()
        self.limit = limit
        self.held = None              # a frame waiting to be reordered behind the next
        self.delayed = []             # heap of (due, seq, skb)
        self.seq = itertools.count()
        self.fresh = False            # a frame came since the last release()
        self.tokens = float(faults.burst)
        self.last = None

    def _admit(self, now):
        f = self.f
        if f.rate is None:
            return True
        if self.last is not None and now > self.last:
            self.tokens = min(float(f.burst), self.tokens + (now - self.last) * f.rate)
        self.last = now if self.last is None else max(self.last, now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def process(self, skb, now, out):
        """Apply the faults to skb; append what leaves now to `out`."""
        f, rng, st = self.f, self.rng, self.stats
        st.frames += 1
        self.fresh = True
        # A fixed number of draws per frame: a frame's fate depends only on its
        # position in the stream, so one seed replays the same faults.
        r_drop, r_corrupt, r_ce, r_dup, r_reorder, r_jit = (rng.random() for _ in range(6))
        if not self._admit(now):
            st.rate_dropped += 1
            return
        if r_drop < f.drop:
            st.dropped += 1
            return
        if r_corrupt < f.corrupt and len(skb):
            skb = skb.copy()                  # the sender may still hold the buffer
            pos = rng.randrange(len(skb) * 8)
            skb.data[pos >> 3] ^= 1 << (pos & 7)
            st.corrupted += 1
        if r_ce < f.ce_mark and _ecn_capable(skb.data):
            skb = skb.copy()
            _set_ce(skb)
            st.ce_marked += 1
        frames = [skb]
        if r_dup < f.duplicate:
            frames.append(skb.copy())
            st.duplicated += 1
        for s in frames:
            self._reorder(s, r_reorder < f.reorder, now + f.delay + r_jit * f.jitter, now, out)
            r_reorder = 1.0                   # the duplicate is not held back too

    def _reorder(self, skb, hold, due, now, out):
        if hold and self.held is None:
            self.held = (skb, due)
            self.stats.reordered += 1
            return
        self._delay(skb, due, now, out)
        if self.held is not None:
            held, hdue = self.held
            self.held = None
            self._delay(held, max(hdue, due), now, out)

    def _delay(self, skb, due, now, out):
        if due > now:
            if len(self.delayed) >= self.limit:
                self.stats.overflow += 1
                return
            self.stats.delayed += 1
            heapq.heappush(self.delayed, (due, next(self.seq), skb))
        else:
            out.append(skb)

    def release(self, now, out):
        """Frames due by `now`, and a frame held for reordering when no frame
        came to overtake it since the last release."""
        if self.held is not None and not self.fresh:
            held, hdue = self.held
            self.held = None
            self._delay(held, hdue, now, out)
        self.fresh = False
        d = self.delayed
        while d and d[0][0] <= now:
            out.append(heapq.heappop(d)[2])


class FaultInjector(DeviceWrapper):
    """FaultInjector(lower, seed=0, tx=None, rx=None, queue_len=1000, **faults).

    Keyword faults (drop=..., delay=..., ...) apply to both directions unless
    tx= or rx= gives that direction its own Faults.
    """

    def __init__(self, lower, seed=0, tx=None, rx=None, queue_len=1000, **faults):
        super().__init__(lower)
        both = Faults(**faults)
        self.seed = seed
        self._tx = _Direction(tx or both, random.Random(f"{seed}/tx"), queue_len)
        self._rx = _Direction(rx or both, random.Random(f"{seed}/rx"), queue_len)
        self._pending = []            # tx frames the lower device was too busy for
        self.queue_len = queue_len
        self._now = 0.0

    @property
    def tx_faults(self):
        return self._tx.stats

    @property
    def rx_faults(self):
        return self._rx.stats

    def _flush(self):
        """Hand pending frames to the lower device; False if it is still busy."""
        pend = self._pending
        while pend:
            if self.lower.ndo_start_xmit(pend[0]) == NETDEV_TX_BUSY:
                return False
            pend.pop(0)
        return True

    def ndo_start_xmit(self, skb):
        # Refuse before drawing any randomness: the stack requeues the frame
        # and its faults are decided once, when it is really taken.
        if not self._flush():
            return NETDEV_TX_BUSY
        out = []
        self._tx.process(skb, self._now, out)
        self.stats.tx_packets += 1
        self.stats.tx_bytes += len(skb)
        self._send(out)
        return NETDEV_TX_OK

    def _send(self, frames):
        for s in frames:
            if len(self._pending) >= self.queue_len:
                self._tx.stats.overflow += 1
            else:
                self._pending.append(s)
        self._flush()

    def ndo_poll(self, budget, now):
        if now is not None:
            self._now = now
        out = []
        self._tx.release(self._now, out)
        self._send(out)
        out = []
        for skb in self.lower.rx_batch(budget, now):
            self._rx.process(skb, self._now, out)
        self._rx.release(self._now, out)
        return out
