"""Hostile and random segments never crash TCP or break its counters."""
import random

import pytest

from tcpkit import A_IP, Host, Seg, client
from pynet.tcp.tcp import TcpState
from pynet.tcp.tcp_user import inet_listen, tcp_close, tcp_recvmsg, tcp_sendmsg


def invariants(sk):
    assert 0 <= sk.sacked_out <= max(sk.packets_out, 0)
    assert sk.packets_out >= 0 and sk.retrans_out >= 0 and sk.lost_out >= 0
    assert sk.packets_out == sum(s.cb.pcount for s in sk.rtx_queue)
    assert sk.sk_rmem_alloc == (sum(s.truesize for s in sk.receive_queue) +
                                sum(s.truesize for s in sk.out_of_order_queue))
    assert len(sk.out_of_order_queue) <= sk.ofo_limit


@pytest.mark.parametrize("seed", range(6))
def test_random_segments_against_an_established_socket(seed):
    rnd = random.Random(seed)
    a = Host(A_IP)
    sk, peer = client(a, sack_perm=bool(seed % 2), peer_wscale=rnd.choice([0, 7]))
    t = 1.0
    idle = 0
    for i in range(1500):
        t += rnd.choice([0.0, 0.001, 0.05, 0.3])
        if rnd.random() < 0.3 and sk.state in (TcpState.ESTABLISHED, TcpState.CLOSE_WAIT):
            tcp_sendmsg(sk, bytes(rnd.randrange(1, 5000)), t)
        flags = rnd.choices(["A", "PA", "FA", "R", "S", "SA", "RA", ""],
                            [40, 40, 1, 1, 2, 2, 1, 2])[0]
        # mostly near the window edges, sometimes anywhere
        rcv = (sk.rcv_nxt - peer.iss) & 0xFFFFFFFF
        una, nxt = (sk.snd_una - sk.iss) & 0xFFFFFFFF, (sk.snd_nxt - sk.iss) & 0xFFFFFFFF
        near = rnd.random() < 0.9
        seq = rcv + rnd.randrange(-3000, 9000) if near else rnd.randrange(1 << 32)
        ack = rnd.randrange(una - 3000, nxt + 3000) if near else rnd.randrange(1 << 32)
        opts = {}
        if rnd.random() < 0.5:
            opts["timestamp"] = (rnd.randrange(900, 2000), rnd.randrange(1 << 32))
        if rnd.random() < 0.3:
            s0 = sk.snd_una + rnd.randrange(-2000, 30000)
            opts["sack"] = ((s0 & 0xFFFFFFFF, (s0 + rnd.randrange(1, 9000)) & 0xFFFFFFFF),)
        payload = bytes(rnd.randrange(0, 3000)) if rnd.random() < 0.5 else b""
        a.deliver(peer(flags, seq=seq, ack=ack, win=rnd.randrange(0, 65536),
                       payload=payload, **opts), t)
        a.run(t)
        a.take()
        if rnd.random() < 0.2:
            try:
                tcp_recvmsg(sk, rnd.randrange(1, 100000), t)
            except (BlockingIOError, OSError):
                pass
        invariants(sk)
        idle = idle + 1 if sk.state != TcpState.ESTABLISHED else 0
        if sk.state == TcpState.CLOSE or idle > 50:
            tcp_close(sk, t)
            a.take()
            sk, peer = client(a, t0=t, sack_perm=bool(seed % 2))
            idle = 0
    tcp_close(sk, t)
    a.run(t + 200)


def test_random_segments_against_a_listener():
    rnd = random.Random(99)
    a = Host(A_IP)
    ls = a.sock()
    inet_listen(ls, a.hashinfo, A_IP, 80, 4)
    t = 0.0
    for i in range(3000):
        t += 0.01
        flags = rnd.choice(["S", "A", "SA", "R", "FA", "PA"])
        a.deliver(Seg(flags, rnd.randrange(1 << 32), rnd.randrange(1 << 32), rnd.randrange(65536),
                      payload=bytes(rnd.randrange(0, 100)), sport=rnd.randrange(1000, 1010)), t)
        a.run(t)
        a.take()
        assert len(ls.syn_queue) <= ls.max_syn_backlog and len(ls.accept_queue) <= ls.backlog
