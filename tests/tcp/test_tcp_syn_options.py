"""tcp_v4_rcv reads a SYN's options through a fixed-layout shortcut when
they are laid out as Linux's (and pynet's) SYNs are; every layout must give
what the full TcpRepr.parse gives."""
import itertools

from tcpkit import A_IP, B_IP, frame
from pynet.tcp.tcp import TcpSkbCb
from pynet.tcp.tcp_ipv4 import tcp_parse_syn_options
from pynet.wire.tcp import TcpPacket, TcpRepr, tcp_hdr_parse


def parsed(th):
    skb = frame(B_IP, A_IP, th)
    tcb = TcpSkbCb()
    tcp_parse_syn_options(skb, tcp_hdr_parse(skb)[6], tcb)
    return tcb.mss, tcb.wscale, bool(tcb.sack_ok), tcb.fastopen


def test_every_option_combination_reads_as_tcprepr_does():
    n = 0
    for mss, wscale, sack_perm, ts, tfo in itertools.product(
            (None, 536, 1460, 65495), (None, 0, 7, 14), (False, True), (None, (7, 0)),
            (None, (b"", False), (b"\x01\x02\x03\x04", True))):
        th = TcpRepr(4000, 80, 1, 0, 2, 65535, mss=mss, wscale=wscale, sack_perm=sack_perm,
                     timestamp=ts, fastopen=tfo[0] if tfo else None,
                     fastopen_exp=tfo[1] if tfo else False)
        if len(th.options_bytes()) > 40:
            continue
        ref = TcpRepr.parse(TcpPacket(frame(B_IP, A_IP, th).data))
        want = (ref.mss, ref.wscale, ref.sack_perm,
                None if ref.fastopen is None else (ref.fastopen, ref.fastopen_exp))
        assert parsed(th) == want, th
        n += 1
    assert n > 100


def test_linux_syn_layout_with_other_values_in_its_fixed_bytes_is_not_mistaken():
    # same length as Linux's layout, but NOPs where SACK-permitted would be
    th = TcpRepr(4000, 80, 1, 0, 2, 65535, mss=1460, wscale=7, timestamp=(7, 0))
    assert len(th.options_bytes()) == 20
    assert parsed(th) == (1460, 7, False, None)
