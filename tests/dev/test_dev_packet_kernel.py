"""AF_PACKET without PACKET_VNET_HDR against the kernel on a veth: the
kernel's end sends MSS frames with finished checksums (kernel_peer turns
its TSO/GSO and transmit checksum offload off), so a TCP bulk transfer
reaches pynet whole with no frame lost to the ring's MTU-sized slots; and a
frame the kernel does leave with a partial checksum (TP_STATUS_CSUMNOTREADY)
arrives as CHECKSUM_PARTIAL at the right place. And what the kernel drops
because pynet's receive queue (ring or socket buffer) is full is counted."""
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


def kernel_udp_to_pynet(peer):
    """A UDP socket of the kernel's, bound to its address, which knows
    pynet's MAC (a permanent neighbour: no ARP round trip)."""
    with peer.ns.iproute() as ipr:
        ipr.neigh("add", dst=peer.pynet_addr(), lladdr=peer.dev.hwaddr.hex(":"),
                  ifindex=ipr.link_lookup(ifname=peer.ifname)[0], state="permanent")
    tx = peer.ns.run_in(socket.socket, socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind((peer.kernel_addr, 4242))
    return tx


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
        with kernel_udp_to_pynet(peer) as tx:
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


@pytest.mark.parametrize("offload, dev_kwargs", [
    (False, {"block_size": 4096, "block_nr": 1}),          # a ring of two frames
    (True, {"rcvbuf": 32 << 10}),                          # recvmsg, a small socket buffer
], ids=["ring", "recvmsg"])
def test_frames_the_kernel_had_no_room_for_are_counted_as_dropped(offload, dev_kwargs):
    """While pynet does not read, the kernel's queue towards it (the ring, or
    the socket buffer) fills and the kernel drops the rest. The drops are
    not silent: they show in rx_dropped once pynet has read the queue dry,
    and with what arrived they add up to what was sent."""
    sent = 300
    with kernel_peer("veth", offload=offload, **dev_kwargs) as peer:
        dev = peer.dev
        assert dev.rx.ring == (not offload)
        with kernel_udp_to_pynet(peer) as tx:
            for i in range(sent):
                tx.sendto(struct.pack("!I", i) + bytes(996), (peer.pynet_addr(), 9))
        got = set()
        while select.select([dev], [], [], 0.5)[0]:
            for skb in dev.poll(64):
                frame = bytes(skb.data)
                if frame[12:14] == b"\x08\x00" and frame[23] == 17 and frame[36:38] == b"\0\x09":
                    got.add(struct.unpack("!I", frame[42:46])[0])
        dev.poll(64)                        # one more read that finds the queue dry
        dropped = dev.stats.rx_dropped
    assert 0 < len(got) < sent and dev.stats.rx_errors == 0
    # other frames (the kernel's IPv6 chatter) may have been dropped too
    assert sent - len(got) <= dropped <= sent - len(got) + 10


def test_reading_without_the_ring_needs_vnet_hdr():
    """Without a virtio header only the ring's frame status tells a checksum
    the kernel left partial from a broken one."""
    from pynet.dev.packet import PacketDevice
    with pytest.raises(ValueError, match="rx_ring=False needs vnet_hdr"):
        PacketDevice("lo", rx_ring=False)
    assert PacketDevice("lo", vnet_hdr=True, rx_ring=True)._rx_args["ring"]


def test_a_link_bounce_does_not_take_the_recvmsg_reader_down():
    """Taking the veth down makes the next recvmsg fail once with ENETDOWN;
    the reader ends its batch there (as on EAGAIN) instead of raising, which
    would have made the stack stop the device for good, and frames read
    again once the link is back up."""
    from pyroute2 import IPRoute
    with kernel_peer("veth", offload=True) as peer:
        dev = peer.dev
        assert not dev.rx.ring
        with IPRoute() as ipr:
            index = ipr.link_lookup(ifname=peer.outer_ifname)[0]
            ipr.link("set", index=index, state="down")
            ipr.link("set", index=index, state="up")
        assert dev.poll(64) == [] and dev.up
        got = []
        with kernel_udp_to_pynet(peer) as tx:
            for _ in range(40):
                try:
                    tx.sendto(b"after the bounce", (peer.pynet_addr(), 9))
                except OSError:         # the kernel's end may not have its carrier back yet
                    pass
                if select.select([dev], [], [], 0.05)[0]:
                    got = [bytes(skb.data) for skb in dev.poll(64)]
                    if any(f.endswith(b"after the bounce") for f in got):
                        break
    assert any(f.endswith(b"after the bounce") for f in got)
    assert dev.stats.rx_errors == 0
