"""FaultInjector over the in-memory pipe: rates, replay, delay and rate limit
on a fake clock."""
from collections import Counter
import math
import struct

import pytest

from pynet.dev.fault import Faults, FaultInjector
from pynet.dev.netdevice import dev_queue_xmit
from pynet.dev.pipe import pipe_pair
from pynet.skbuff import SKB

from frames import ipv4_header, ones_sum

N = 100_000


def ipv4_frame(seq, tos=0x02):
    """An ECT(0) IPv4/UDP frame whose payload is its sequence number."""
    src, dst = bytes([198, 18, 0, 2]), bytes([198, 18, 0, 1])
    ip = ipv4_header(tos, 32, 17, src, dst, flags_frag=0)
    payload = struct.pack("!I", seq)
    check = 0xFFFF - ones_sum(src + dst + struct.pack("!HHHHHH", 17, 12, 1, 2, 12, 0) + payload)
    return ETH + ip + struct.pack("!HHHH", 1, 2, 12, check or 0xFFFF) + payload


ETH = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"


def intact(f):
    """Every bit checked: Ethernet header fixed, IPv4 and UDP checksums valid
    (one flipped bit always changes a ones'-complement sum)."""
    return (len(f) == 46 and f[:14] == ETH and ones_sum(f[14:34]) == 0xFFFF
            and ones_sum(f[26:34] + struct.pack("!HH", 17, 12) + f[34:]) == 0xFFFF)


def run(seed, n, **faults):
    a, b = pipe_pair(rx_queue_len=n * 2 + 10)
    fi = FaultInjector(a, seed=seed, rx=Faults(), tx=Faults(**faults)).open()
    for i in range(n):
        skb = SKB.from_bytes(ipv4_frame(i))
        skb.dev = fi
        dev_queue_xmit(skb)
    fi.poll(now=0.0)
    fi.poll(now=0.0)             # a frame held for reordering leaves at the second idle poll
    return fi, [s.tobytes() for s in b.poll(budget=n * 3)]


def within(k, n, p, sigmas=5):
    return abs(k - n * p) <= sigmas * math.sqrt(n * p * (1 - p)) + 1


def test_observed_rates_match_the_configured_ones():
    conf = dict(drop=0.05, corrupt=0.01, ce_mark=0.04, duplicate=0.03, reorder=0.02)
    fi, got = run(11, N, **conf)
    st = fi.tx_faults
    assert st.frames == N
    assert within(st.dropped, N, conf["drop"])
    kept = N - st.dropped
    for name, counter in (("corrupt", "corrupted"), ("ce_mark", "ce_marked"),
                          ("duplicate", "duplicated"), ("reorder", "reordered")):
        assert within(getattr(st, counter), kept, conf[name]), (name, getattr(st, counter))
    # What the receiver saw agrees with the counters.
    assert len(got) == kept + st.duplicated
    good = [f for f in got if intact(f)]
    bad = {f for f in got if not intact(f)}     # a corrupted frame's duplicate is the same bytes
    assert len(bad) == st.corrupted
    ce = sum(1 for f in set(good) if f[15] & 3 == 3)
    assert ce > 0 and within(ce, kept, conf["ce_mark"] * (1 - conf["corrupt"]))
    seqs = [struct.unpack("!I", f[42:46])[0] for f in good]
    late = sum(1 for x, y in zip(seqs, seqs[1:]) if y < x)
    assert within(late, kept, conf["reorder"])
    counts = Counter(seqs)
    assert set(counts.values()) <= {1, 2}              # once, or twice when duplicated
    assert sum(c == 2 for c in counts.values()) <= st.duplicated
    assert set(counts) <= set(range(N))
    assert len(counts) == kept - st.corrupted          # every kept, intact sequence arrived


def test_same_seed_replays_the_same_faults():
    conf = dict(drop=0.1, corrupt=0.05, duplicate=0.05, reorder=0.05)
    _, first = run(5, 5000, **conf)
    _, again = run(5, 5000, **conf)
    _, other = run(6, 5000, **conf)
    assert first == again
    assert first != other


def test_receive_direction_has_its_own_faults():
    a, b = pipe_pair(rx_queue_len=20000)
    fi = FaultInjector(b, seed=3, rx=Faults(drop=0.2)).open()
    for i in range(10000):
        skb = SKB.from_bytes(ipv4_frame(i))
        skb.dev = a
        dev_queue_xmit(skb)
    got = fi.poll(budget=20000, now=0.0)
    assert fi.rx_faults.frames == 10000 and fi.tx_faults.frames == 0
    assert len(got) == 10000 - fi.rx_faults.dropped
    assert within(fi.rx_faults.dropped, 10000, 0.2)
    assert fi.stats.rx_packets == len(got)


def test_delay_follows_the_callers_clock():
    a, b = pipe_pair()
    fi = FaultInjector(a, seed=1, tx=Faults(delay=0.010)).open()
    fi.poll(now=100.0)
    for i in range(3):
        skb = SKB.from_bytes(ipv4_frame(i))
        skb.dev = fi
        dev_queue_xmit(skb)
    assert b.poll() == []
    fi.poll(now=100.009)
    assert b.poll() == []
    fi.poll(now=100.010)
    assert [s.tobytes() for s in b.poll()] == [ipv4_frame(i) for i in range(3)]
    assert fi.tx_faults.delayed == 3


def test_rate_limit_is_a_token_bucket_on_the_callers_clock():
    a, b = pipe_pair(rx_queue_len=2000)
    fi = FaultInjector(a, seed=1, tx=Faults(rate=100.0, burst=10)).open()
    for ms in range(1000):                     # one frame a millisecond for a second
        fi.poll(now=ms / 1000)
        skb = SKB.from_bytes(ipv4_frame(ms))
        skb.dev = fi
        dev_queue_xmit(skb)
    passed = len(b.poll(budget=2000))
    assert 105 <= passed <= 111                # the burst, then 100 a second
    assert fi.tx_faults.rate_dropped == 1000 - passed


def test_bad_probabilities_are_rejected():
    with pytest.raises(ValueError):
        Faults(drop=1.5)
    with pytest.raises(ValueError):
        Faults(rate=0)


def test_received_frames_wait_out_their_delay_and_reorder_overtakes():
    a, b = pipe_pair()
    fi = FaultInjector(b, seed=2, rx=Faults(delay=0.5, reorder=1.0)).open()
    for i in range(3):
        skb = SKB.from_bytes(ipv4_frame(i))
        skb.dev = a
        dev_queue_xmit(skb)
    assert fi.poll(now=10.0) == [] and fi.poll(now=10.4) == []
    got = [struct.unpack("!I", s.tobytes()[42:46])[0] for s in fi.poll(now=10.5)]
    assert got == [1, 0, 2]                       # 1 overtook 0; 2 waited for a poll with no newer frame
    assert fi.rx_faults.reordered == 2 and fi.rx_faults.delayed == 3
