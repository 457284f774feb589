"""Opening and refusing connections, segment by segment (RFC 9293 §3.5)."""
import errno

from tcpkit import A_IP, B_IP, Host, Seg, link
from pynet.tcp.tcp import TcpState
from pynet.tcp.tcp_ipv4 import tcp_v4_connect
from pynet.tcp.tcp_user import inet_accept, inet_listen, tcp_close, tcp_recvmsg


def test_active_open_exact_segments():
    a = Host(A_IP)
    sk = a.sock()
    tcp_v4_connect(sk, B_IP, 80, 0.0)
    syn, = a.take()
    assert syn.flags == "S" and syn.seq == sk.iss and syn.ack == 0
    assert 32768 <= sk.sport <= 60999
    # SYN options (Linux's order is TcpRepr's): MSS from the MTU, timestamps, window
    # scale for a 6 MB buffer; the SYN's window is min(rcv_wnd, 65535), unscaled
    assert syn.th.mss == 1460 and syn.th.wscale == 7 and syn.th.timestamp[1] == 0
    assert syn.th.sack_perm and syn.win == 65535
    assert sk.state == TcpState.SYN_SENT and sk.sk_wmem_queued > 0 and len(sk.rtx_queue) == 1
    a.run(0.999)
    assert a.take() == []                              # nothing before the RTO
    tsval = syn.th.timestamp[0]
    a.deliver(Seg("SA", 7000, sk.iss + 1, 29200, sport=80, dport=sk.sport, mss=1400,
                  wscale=2, timestamp=(55, tsval)), 0.05)
    ack, = a.take()
    assert sk.state == TcpState.ESTABLISHED
    assert (ack.flags, ack.seq, ack.ack) == ("A", sk.iss + 1, 7001)
    # scaled from now on; half the buffer is window until received
    # segments measure payload per buffer byte (Linux's scaling_ratio)
    assert ack.win == (3 << 20) >> 7
    assert ack.th.timestamp[1] == 55 and ack.th.mss is None
    assert sk.mss_cache == 1400 - 12 and sk.snd_wnd == 29200 and sk.rx_opt.snd_wscale == 2
    # 4 * 0.025 < the 200 ms floor on the variance term: RTO = 0.05 + 0.2 (Linux)
    assert abs(sk.srtt - 0.05) < 1e-9 and abs(sk.rto - 0.25) < 1e-9
    assert not sk.rtx_queue and sk.sk_wmem_queued == 0 and sk.snd_cwnd == 10
    a.run(5.0)
    assert a.take() == []


def test_passive_open_exact_segments_and_backlog():
    a = Host(A_IP)
    ls = a.sock()
    inet_listen(ls, a.hashinfo, A_IP, 80, 1)
    a.deliver(Seg("S", 100, 0, 8192, mss=1200, timestamp=(9, 0)), 1.0)
    synack, = a.take()
    assert synack.flags == "SA" and synack.ack == 101 and synack.win == 65535
    assert synack.th.mss == 1460 and synack.th.wscale is None   # peer offered no scaling
    assert synack.th.timestamp[1] == 9
    a.deliver(Seg("A", 101, synack.seq + 1, 8192, payload=b"hello",
                  timestamp=(10, synack.th.timestamp[0])), 1.2)
    child = inet_accept(ls)
    assert child.state == TcpState.ESTABLISHED and child.mss_cache == 1200 - 12
    assert tcp_recvmsg(child, 100, 1.2) == b"hello"
    assert abs(child.srtt - 0.2) < 1e-9
    assert [s.flags for s in a.take()] == ["A"]        # quick ACK for the first data
    # backlog 1: a second handshake completes but its child waits in the queue;
    # a third SYN while the queue is full is dropped and counted
    a.deliver(Seg("S", 500, 0, 8192, sport=4001), 2.0)
    synack2, = a.take()
    a.deliver(Seg("A", 501, synack2.seq + 1, 8192, sport=4001), 2.1)
    a.deliver(Seg("S", 900, 0, 8192, sport=4002), 2.2)
    assert a.take() == [] and ls.listen_drops == 1
    assert inet_accept(ls).dport == 4001


def test_synack_retransmitted_then_given_up():
    a = Host(A_IP)
    ls = a.sock()
    inet_listen(ls, a.hashinfo, A_IP, 80, 8)
    a.deliver(Seg("S", 100, 0, 8192), 0.0)
    a.take()
    times = []
    for t in range(1, 80):
        a.run(float(t))
        times += [t for _ in a.take()]
    assert times == [1, 3, 7, 15, 31]                  # 1 s doubling, 5 retries
    assert not ls.syn_queue


def test_closed_port_gets_rst_and_connect_is_refused():
    a, b = Host(A_IP), Host(B_IP)
    sk = a.sock()
    tcp_v4_connect(sk, B_IP, 81, 0.0)
    syn, = a.take()
    b.deliver(syn, 0.01)
    rst, = b.take()
    assert rst.flags == "RA" and rst.seq == 0 and rst.ack == syn.seq + 1
    a.deliver(rst, 0.02)
    assert sk.state == TcpState.CLOSE and sk.sk_err == errno.ECONNREFUSED
    assert not a.hashinfo.ehash
    # an ACK for no connection gets a RST with the ACK's number (RFC 9293 §3.10.7.1)
    b.deliver(Seg("A", 1, 777, saddr=A_IP, daddr=B_IP, dport=81), 0.03)
    rst, = b.take()
    assert rst.flags == "R" and rst.seq == 777


def test_syn_retransmission_backoff_then_etimedout():
    a = Host(A_IP)
    sk = a.sock()
    tcp_v4_connect(sk, B_IP, 80, 0.0)
    a.take()
    times = []
    for ms in range(1, 130_000, 250):
        a.run(ms / 1000 - 0.001 if ms > 1 else 0.0)
        a.run(ms / 1000)
        times += [round(ms / 1000)] * len(a.take())
    assert times == [1, 3, 7, 15, 31, 63]              # RFC 6298 §5.5 doubling from 1 s
    assert sk.state == TcpState.CLOSE and sk.sk_err == errno.ETIMEDOUT


def test_simultaneous_open():
    a, b = Host(A_IP), Host(B_IP)
    sa, sb = a.sock(sport=5000), b.sock(sport=6000)
    tcp_v4_connect(sa, B_IP, 6000, 0.0)
    tcp_v4_connect(sb, A_IP, 5000, 0.0)
    syn_a, = a.take()
    syn_b, = b.take()
    a.deliver(syn_b, 0.01)
    b.deliver(syn_a, 0.01)
    assert sa.state == sb.state == TcpState.SYN_RECV
    sa_synack, = a.take()
    sb_synack, = b.take()
    assert sa_synack.flags == "SA" and sa_synack.seq == sa.iss and sa_synack.ack == sb.iss + 1
    a.deliver(sb_synack, 0.02)
    b.deliver(sa_synack, 0.02)
    assert sa.state == sb.state == TcpState.ESTABLISHED
    assert [s.flags for s in a.take()] == ["A"] and [s.flags for s in b.take()] == ["A"]
    assert sa.snd_una == sa.iss + 1 and sa.rcv_nxt == sb.iss + 1


def test_established_pair_over_link_and_graceful_close():
    a, b = Host(A_IP), Host(B_IP)
    ls = b.sock()
    inet_listen(ls, b.hashinfo, B_IP, 80, 4)
    c = a.sock()
    tcp_v4_connect(c, B_IP, 80, 0.0)
    link(a, b, 0.01)
    s = inet_accept(ls)
    tcp_close(c, 0.1)
    link(a, b, 0.1)
    assert c.state == TcpState.FIN_WAIT2 and s.state == TcpState.CLOSE_WAIT
    assert tcp_recvmsg(s, 10, 0.1) == b""
    tcp_close(s, 0.2)
    link(a, b, 0.2)
    assert c.state == TcpState.CLOSE and s.state == TcpState.CLOSE
    assert not b.hashinfo.ehash and a.tw(c).state == TcpState.TIME_WAIT
    a.run(60.1)
    assert a.take() == [] and a.tw(c) is not None
    a.run(60.2)
    assert not a.hashinfo.ehash


def test_malformed_segments_are_counted_and_dropped():
    from tcpkit import frame
    from pynet.tcp.tcp_ipv4 import tcp_v4_rcv
    from pynet.skbuff import SKB
    a = Host(A_IP)
    ls = a.sock()
    inet_listen(ls, a.hashinfo, A_IP, 80, 4)
    seg = Seg("S", 100, 0, 8192, mss=1460)
    good = frame(seg.saddr, seg.daddr, seg.th).tobytes()
    bad_sum = bytearray(good)
    bad_sum[4] ^= 0xFF                                  # seq changed, checksum not
    for payload in (bytes(bad_sum), good[:12], good[:20] + b"\x02\x09"):
        skb = SKB.from_bytes(bytes(12) + B_IP.to_bytes(4, "big") + A_IP.to_bytes(4, "big")
                             + payload)
        skb.network_header = 0
        skb.pull(20)
        tcp_v4_rcv(a.hashinfo, skb, 1.0)
    assert a.hashinfo.stats["InErrs"] == 3 and a.take() == [] and not ls.syn_queue
    a.deliver(seg, 1.0)
    assert [s.flags for s in a.take()] == ["SA"]
