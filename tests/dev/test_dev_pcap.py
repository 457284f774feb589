"""PcapWriter: a capture of real traffic with the kernel that tcpdump decodes cleanly."""
import re
import select
import socket
import subprocess

import pytest

from frames import arp_request, udp_frame
from pynet.dev.netdevice import dev_queue_xmit
from pynet.dev.pcap import PcapWriter
from pynet.dev.pipe import pipe_pair
from pynet.netns import kernel_peer
from pynet.pcapfile import read_pcap
from pynet.skbuff import SKB


@pytest.mark.priv
def test_tcpdump_decodes_both_directions_without_complaint(tmp_path):
    path = tmp_path / "trace.pcap"
    with kernel_peer("tap", offload=True) as peer:
        with peer.ns.iproute() as ipr:
            ipr.neigh("add", dst=peer.pynet_addr(), lladdr=peer.dev.hwaddr.hex(":"),
                      ifindex=ipr.link_lookup(ifname=peer.ifname)[0], state="permanent")
        # Partial checksums go to an open port: an ICMP error would quote the
        # frame as it entered the kernel, before anyone finished the checksum.
        sink = peer.ns.run_in(socket.socket, socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind((peer.kernel_addr, 0))
        port = sink.getsockname()[1]
        dev = PcapWriter(peer.dev, str(path)).open()
        sent = [SKB.from_bytes(arp_request(dev.hwaddr, peer.pynet_addr(), peer.kernel_addr)),
                udp_frame(dev, peer, 9, b"closed port: the kernel answers with ICMP"),
                udp_frame(dev, peer, port, b"partial checksum" * 20, partial=True),
                udp_frame(dev, peer, port, bytes(range(256)) * 40, partial=True, gso_size=1400)]
        for skb in sent:
            skb.dev = dev
            dev_queue_xmit(skb)
        received = []
        while len(received) < 2 and select.select([dev], [], [], 1)[0]:
            received += dev.poll()
        dev.stop()
        sink.close()
    records = list(read_pcap(path))
    assert len(records) == len(sent) + len(received) == dev.stats.tx_packets + dev.stats.rx_packets
    assert len(received) == 2            # the ARP reply and one ICMP port unreachable
    ts = [t for t, _ in records]
    assert ts == sorted(ts) and ts[-1] - ts[0] < 60
    out = subprocess.run(["tcpdump", "-r", str(path), "-nn", "-vv"], capture_output=True,
                         text=True, check=True).stdout
    lines = [line for line in out.splitlines() if re.match(r"\d\d:\d\d:", line)]
    assert len(lines) == len(records), out
    for bad in ("bad cksum", "bad udp cksum", "malformed", "truncated", "[|"):
        assert bad not in out, out
    assert out.count("[udp sum ok]") >= 3 and f"Reply {peer.kernel_addr} is-at" in out and "port 9 unreachable" in out


def test_pipe_capture_records_what_each_end_saw_with_the_callers_clock(tmp_path):
    t = [1000.0]
    a, b = pipe_pair()
    cap = PcapWriter(a, str(tmp_path / "a.pcap"), clock=lambda: t[0]).open()
    skb = SKB.from_bytes(b"\x02" * 6 + a.hwaddr + b"\x88\xb5" + bytes(46))
    skb.dev = cap
    dev_queue_xmit(skb)
    (back,) = b.poll()
    back.data[0:6] = a.hwaddr
    back.dev = b
    t[0] = 1000.25
    dev_queue_xmit(back)
    assert len(cap.poll()) == 1
    cap.stop()
    assert list(read_pcap(tmp_path / "a.pcap")) == [(1000.0, skb.tobytes()), (1000.25, back.tobytes())]
