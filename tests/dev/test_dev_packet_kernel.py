"""AF_PACKET without PACKET_VNET_HDR against the kernel on a veth: the
kernel's end sends MSS frames with finished checksums (kernel_peer turns
its TSO/GSO and transmit checksum offload off), so a TCP bulk transfer
reaches pynet whole with no frame lost to the ring's MTU-sized slots; and a
frame the kernel does leave with a partial checksum (TP_STATUS_CSUMNOTREADY)
arrives as CHECKSUM_PARTIAL at the right place."""
import hashlib
import os
import random
import select
import socket
import struct
import sys

import pytest

from oracle import ones_sum
from pynet.checksum import skb_checksum_help
from pynet.netns import TX_OFFLOADS, get_features, kernel_peer, set_features
from pynet.skbuff import CHECKSUM_PARTIAL

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "tcp"))
from kernelkit import kernel_to_pynet  # noqa: E402

pytestmark = pytest.mark.priv
NBYTES = 8 << 20


def test_kernel_tcp_bulk_reaches_af_packet_without_vnet_hdr_in_mss_frames():
    data = random.Random(3).randbytes(NBYTES)
    with kernel_peer("veth") as peer:
        feats = peer.ns.run_in(get_features, peer.ifname, TX_OFFLOADS)
        sink, _ = kernel_to_pynet(peer, data)
        kstats = peer.ns.link_stats(peer.ifname)
        st = peer.dev.stats
    assert feats and not any(feats.values())        # nothing left on: no GSO frames
    assert sink.n == NBYTES and sink.sha.hexdigest() == hashlib.sha256(data).hexdigest()
    assert st.rx_errors == 0 and st.rx_dropped == 0
    # one veth packet per MSS (a GSO skb would count once for up to 64 KB)
    assert kstats["tx_packets"] >= NBYTES // 1448
    assert st.rx_packets >= NBYTES // 1448


def test_partial_checksum_from_the_kernel_arrives_as_checksum_partial():
    payload = bytes(range(200))
    with kernel_peer("veth") as peer:
        dev = peer.dev
        # Give the kernel's end its checksum offload back (TSO/GSO stay off):
        # its UDP now leaves the checksum to "hardware", AF_PACKET flags it.
        assert peer.ns.run_in(set_features, peer.ifname, {"tx-checksum-ip-generic": True}) \
            == {"tx-checksum-ip-generic": True}
        with peer.ns.iproute() as ipr:    # the kernel knows pynet's MAC: no ARP round trip
            ipr.neigh("add", dst=peer.pynet_addr(), lladdr=dev.hwaddr.hex(":"),
                      ifindex=ipr.link_lookup(ifname=peer.ifname)[0], state="permanent")
        tx = peer.ns.run_in(socket.socket, socket.AF_INET, socket.SOCK_DGRAM)
        with tx:
            tx.bind((peer.kernel_addr, 4242))
            tx.sendto(payload, (peer.pynet_addr(), 9))
        frames = []
        while not frames and select.select([dev], [], [], 2)[0]:
            frames = dev.poll(64)
    assert len(frames) == 1 and dev.stats.rx_errors == 0
    skb = frames[0]
    assert skb.ip_summed == CHECKSUM_PARTIAL
    assert skb.csum_start == skb.data_offset + 14 + 20 and skb.csum_offset == 6
    frame = bytes(skb.data)
    ip, udp = frame[14:34], frame[34:]
    ulen = len(udp)
    pseudo = ip[12:20] + struct.pack("!HH", 17, ulen)
    # the field holds the pseudo-header sum, not inverted (not yet a checksum) ...
    assert struct.unpack("!H", udp[6:8])[0] == ones_sum(pseudo)
    # ... which pynet finishes in software into a valid one (RFC 768).
    skb_checksum_help(skb)
    frame = bytes(skb.data)
    assert ones_sum(pseudo + frame[34:]) == 0xFFFF
    assert frame[42:] == payload
