"""Network namespaces holding the Linux kernel that pynet talks to.

    with kernel_peer("tap") as peer:          # a namespace pyn<random>
        dev = peer.dev                        # pynet's TapDevice, opened
        peer.kernel_addr                      # "198.18.0.1", on the kernel's end
        peer.ns.popen(["tcpdump", ...])       # a process inside the namespace

The namespace holds the kernel end of a TAP (opened from a thread that
entered the namespace, so the interface is born there; pynet's process stays
in the root namespace and keeps the descriptor) or of a veth pair (pynet's
end stays outside, with no address, for AF_PACKET). Everything is made with
pyroute2 and removed on exit, also when the body raises. Addresses come from
198.18.0.0/15 (RFC 2544's benchmarking range) and exist only inside the
namespace.
"""
from contextlib import contextmanager
from dataclasses import dataclass, field
import errno
import functools
import ipaddress
import os
import secrets
import subprocess
import threading

from pyroute2 import IPRoute
from pyroute2 import netns as _netns

__all__ = ["NetNamespace", "KernelPeer", "kernel_peer", "run_in_netns", "get_features",
           "set_features", "set_gso_ipv4_max_size", "unique_name", "TX_OFFLOADS"]


def unique_name(prefix="pyn"):
    """A name no other test running at the same time picks: pyn + 8 hex digits."""
    return prefix + secrets.token_hex(4)


def run_in_netns(name, fn, *args, **kwargs):
    """fn(*args, **kwargs) in a thread that entered namespace `name`.

    setns() moves only the calling thread, so the rest of the process stays
    where it is; descriptors the function opens stay bound to the namespace.
    """
    box = {}

    def body():
        try:
            _netns.setns(name, flags=0, fork=False)
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=body, name=f"netns-{name}")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


# ethtool's feature names (its ETH_SS_FEATURES strings) that let a device hand
# its peer frames larger than the MTU (TSO, GSO, USO) or with the checksum left
# for hardware (tx-checksum-*): `ethtool -K dev tx off tso off gso off`.
TX_OFFLOADS = ("tx-checksum-ip-generic", "tx-checksum-ipv4", "tx-checksum-ipv6",
               "tx-generic-segmentation", "tx-tcp-segmentation", "tx-tcp-ecn-segmentation",
               "tx-tcp-mangleid-segmentation", "tx-tcp6-segmentation", "tx-udp-segmentation")


def get_features(ifname, names):
    """`ethtool -k`: {name: active} of ifname's features among `names` that the
    device knows, in the calling thread's namespace (call it through run_in_netns)."""
    from pyroute2.ethtool.ioctl import IoctlEthtool
    eth = IoctlEthtool(ifname)
    try:
        feats = eth.get_features()
        return {n: feats.is_active(n) for n in names if n in feats}
    finally:
        eth.close()


def set_features(ifname, wanted):
    """`ethtool -K`: switch the named features of ifname ({name: bool}) in the
    calling thread's namespace (call it through run_in_netns). Features the
    device cannot change are left alone. Returns get_features() of the names
    afterwards: the kernel also turns off what depends on a feature turned
    off (TSO without checksum offload)."""
    from pyroute2.ethtool.ioctl import IoctlEthtool
    eth = IoctlEthtool(ifname)
    try:
        feats = eth.get_features()
        change = {n: bool(v) for n, v in wanted.items()
                  if n in feats and feats.is_available(n) and feats.is_active(n) != bool(v)}
        for name, on in change.items():
            feats.set_value(name, on)
        if change:
            eth.set_features(feats)
    finally:
        eth.close()
    return get_features(ifname, wanted)


@functools.cache
def _ifinfmsg_big_tcp():
    """pyroute2's ifinfmsg with the attribute it does not know yet (0.9.7):
    Linux 6.3's IFLA_GSO_IPV4_MAX_SIZE, 63 (62 and 64 named for the order)."""
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
    names = [name for name, _ in ifinfmsg.nla_map]
    if "IFLA_GSO_IPV4_MAX_SIZE" in names:
        return ifinfmsg
    if len(names) != 62:
        raise OSError(errno.ENOTSUP, "pyroute2's IFLA_* table is not the one expected")

    class ifinfmsg_big_tcp(ifinfmsg):
        nla_map = ifinfmsg.nla_map + (("IFLA_DEVLINK_PORT", "hex"),
                                      ("IFLA_GSO_IPV4_MAX_SIZE", "uint32"),
                                      ("IFLA_GRO_IPV4_MAX_SIZE", "uint32"))
        # pyroute2 compiles a table once per class and the flag is inherited:
        # without this the base's table would encode, dropping the new names
        _nlmsg_base__compiled_nla = False
    return ifinfmsg_big_tcp


def set_gso_ipv4_max_size(ifname, size, netns=None):
    """`ip link set dev ifname gso_ipv4_max_size size` (BIG TCP: the kernel
    then sends IPv4 GSO packets up to size through it), inside netns (None:
    this one). OSError if the kernel did not take it (a TAP's tso_max_size
    is 65536, a veth's 524280)."""
    from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST
    from pyroute2.netlink.rtnl import RTM_NEWLINK
    big = _ifinfmsg_big_tcp()
    with IPRoute(netns=netns) if netns else IPRoute() as ipr:
        index = ipr.link_lookup(ifname=ifname)
        if not index:
            raise OSError(errno.ENODEV, f"no interface {ifname!r}")
        msg = big()
        msg["index"] = index[0]
        msg["attrs"] = [("IFLA_GSO_IPV4_MAX_SIZE", size)]
        ipr.put(msg, msg_type=RTM_NEWLINK, msg_flags=NLM_F_REQUEST | NLM_F_ACK)
        list(ipr.get())
        # pyroute2 0.9.7 neither reports a refusal here nor decodes the
        # attribute in its replies: read it back through the same class
        reply = ipr.link("get", index=index[0])[0]
        got = big(reply.data, offset=reply.offset)
        got.decode()
        kept = got.get_attr("IFLA_GSO_IPV4_MAX_SIZE")
        if kept != size:
            raise OSError(errno.EINVAL, f"{ifname}: the kernel kept gso_ipv4_max_size {kept}, "
                                        f"not {size}")


def _write_sysctl(path, value):
    try:
        with open(path, "w") as f:
            f.write(value)
    except FileNotFoundError:   # kernel without IPv6: nothing to turn off
        pass


def _parse_proc_table(text):
    """/proc/net/snmp and netstat: pairs of 'Proto: names' / 'Proto: values' lines."""
    out = {}
    lines = text.splitlines()
    for head, vals in zip(lines[::2], lines[1::2]):
        proto, names = head.split(":", 1)
        _, values = vals.split(":", 1)
        out[proto] = dict(zip(names.split(), map(int, values.split())))
    return out


def _read_counters():
    snmp = {}
    for name in ("snmp", "netstat"):
        with open(f"/proc/thread-self/net/{name}") as f:
            snmp.update(_parse_proc_table(f.read()))
    return snmp


def _read_net_dev():
    """/proc/net/dev as {ifname: {rx_bytes, rx_packets, ..., tx_...}}."""
    keys = ["bytes", "packets", "errs", "drop", "fifo", "frame", "compressed", "multicast"]
    tkeys = ["bytes", "packets", "errs", "drop", "fifo", "colls", "carrier", "compressed"]
    out = {}
    with open("/proc/thread-self/net/dev") as f:
        for line in f.readlines()[2:]:
            name, rest = line.split(":", 1)
            v = list(map(int, rest.split()))
            d = {f"rx_{k}": x for k, x in zip(keys, v[:8])}
            d.update({f"tx_{k}": x for k, x in zip(tkeys, v[8:])})
            out[name.strip()] = d
    return out


# Names of the namespaces, and of the links in the root namespace (a veth's
# outer end), this process made and has not removed yet: what a test suite
# checks to prove nothing outlived a test.
_live = set()
_live_links = set()


def live_namespaces():
    return frozenset(_live)


def live_links():
    """Links this process created in the root namespace and has not deleted."""
    return frozenset(_live_links)


class NetNamespace:
    """A named network namespace (pyn + random suffix), removed on exit with
    everything in it. IPv6 is off inside so that the kernel sends nothing on
    its own (no router solicitations, no MLD): counters then count only what
    the test caused."""

    def __init__(self, name=None):
        self.name = name or unique_name()
        self._cleanups = []

    def __enter__(self):
        _netns.create(self.name)
        _live.add(self.name)
        try:
            self.run_in(self._prepare)
        except BaseException:
            _netns.remove(self.name)
            _live.discard(self.name)
            raise
        return self

    @staticmethod
    def _prepare():
        for conf in ("all", "default"):
            _write_sysctl(f"/proc/sys/net/ipv6/conf/{conf}/disable_ipv6", "1")
        with IPRoute() as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Run the registered clean-ups (newest first), then remove the namespace."""
        errors = []
        while self._cleanups:
            try:
                self._cleanups.pop()()
            except Exception as exc:   # keep cleaning; report the first failure
                errors.append(exc)
        try:
            _netns.remove(self.name)
        except FileNotFoundError:
            pass
        _live.discard(self.name)
        if errors:
            raise errors[0]

    def on_close(self, fn):
        """Call fn() when the namespace is torn down (before it is removed)."""
        self._cleanups.append(fn)

    def run_in(self, fn, *args, **kwargs):
        return run_in_netns(self.name, fn, *args, **kwargs)

    def iproute(self):
        """An IPRoute bound to this namespace (close it, or use `with`)."""
        return IPRoute(netns=self.name)

    # A child inherits the namespaces of the thread that starts it, so these
    # start it from a thread inside the namespace. A preexec_fn doing setns
    # would run Python between fork and exec, which deadlocks in a process
    # with other threads (seen under ASan: the child stuck before exec).
    def popen(self, args, **kwargs):
        """subprocess.Popen of args inside the namespace."""
        return self.run_in(subprocess.Popen, args, **kwargs)

    def run(self, args, **kwargs):
        """subprocess.run of args inside the namespace."""
        return self.run_in(subprocess.run, args, **kwargs)

    def counters(self):
        """The namespace's /proc/net/snmp and netstat: {"Ip": {...}, "Udp": {...}, "TcpExt": {...}}."""
        return self.run_in(_read_counters)

    def links(self):
        """Names of the interfaces inside the namespace."""
        return sorted(self.run_in(_read_net_dev))

    def link_stats(self, ifname):
        """The kernel's counters of ifname (/proc/net/dev): rx_packets, tx_bytes, ..."""
        return self.run_in(_read_net_dev)[ifname]

    def configure(self, ifname, cidr):
        """Give ifname (inside) the first host of cidr and bring it up: (addr, prefixlen)."""
        net = ipaddress.ip_network(cidr)
        addr = str(next(net.hosts()))
        with self.iproute() as ipr:
            idx = ipr.link_lookup(ifname=ifname)[0]
            ipr.addr("add", index=idx, address=addr, prefixlen=net.prefixlen)
            ipr.link("set", index=idx, state="up")
        return addr, net.prefixlen

    def hwaddr(self, ifname):
        with self.iproute() as ipr:
            link = ipr.link("get", ifname=ifname)[0]
            return bytes.fromhex(link.get("IFLA_ADDRESS").replace(":", ""))


@dataclass
class KernelPeer:
    """What kernel_peer() yields."""
    ns: NetNamespace
    ifname: str                 # the kernel's interface, inside ns
    kernel_addr: str            # its IPv4 address (first host of cidr)
    kernel_hwaddr: bytes
    prefixlen: int
    network: ipaddress.IPv4Network
    dev: object = None          # pynet's device (TapDevice / PacketDevice), opened
    outer_ifname: str = None    # veth only: pynet's end, in the root namespace
    extra: dict = field(default_factory=dict)

    def pynet_addr(self, n=2):
        """The n-th host of the network, for pynet's own address."""
        return str(self.network.network_address + n)


def _random_cidr():
    # 198.18.0.0/15 holds 512 /24s; namespaces isolate them anyway, a random
    # one just makes captures from parallel tests tell apart.
    return f"198.{18 + secrets.randbelow(2)}.{secrets.randbelow(256)}.0/24"


@contextmanager
def kernel_peer(kind="tap", cidr=None, *, offload=False, persist=False, **dev_kwargs):
    """A namespace whose kernel sits at the far end of pynet's device.

    kind "tap": pynet gets a TapDevice (offload=True: IFF_VNET_HDR and
    TUNSETOFFLOAD); kind "veth": a veth pair, pynet gets a PacketDevice on
    the root-namespace end, which has no address and no IPv6. Without
    offload the kernel's veth end has its TSO, GSO and transmit checksum
    offload turned off, as a NIC without them: it sends MSS frames with
    finished checksums, which a PacketDevice without PACKET_VNET_HDR can
    take (a veth would otherwise pass it 64 KB GSO frames).
    """
    cidr = cidr or _random_cidr()
    with NetNamespace() as ns:
        ifname = unique_name()
        if kind == "tap":
            from pynet.dev.tap import TapDevice
            dev = TapDevice(ifname, offload=offload, persist=persist, netns=ns.name, **dev_kwargs)
            ns.on_close(dev.stop)
            dev.open()                     # the TAP is born inside ns
            outer = None
        elif kind == "veth":
            from pynet.dev.packet import PacketDevice
            from pynet.dev.tap import TAP_BIG_TCP_MAX_SIZE, kernel_takes_big_tcp
            outer = unique_name()
            _make_veth(ns, outer, ifname)
            if not offload:
                ns.run_in(set_features, ifname, dict.fromkeys(TX_OFFLOADS, False))
            if offload and kernel_takes_big_tcp():
                # pynet's 256 KB super-segments leave through the outer end (the
                # kernel's end keeps 64 KB, the longest frame pynet's receive skbs hold)
                set_gso_ipv4_max_size(outer, TAP_BIG_TCP_MAX_SIZE)
                dev_kwargs.setdefault("gso_ipv4_max_size", TAP_BIG_TCP_MAX_SIZE)
            dev = PacketDevice(outer, vnet_hdr=offload, **dev_kwargs)
            ns.on_close(dev.stop)
            dev.open()
        else:
            raise ValueError(f"kind must be 'tap' or 'veth', not {kind!r}")
        addr, plen = ns.configure(ifname, cidr)
        yield KernelPeer(ns=ns, ifname=ifname, kernel_addr=addr,
                         kernel_hwaddr=ns.hwaddr(ifname), prefixlen=plen,
                         network=ipaddress.ip_network(cidr), dev=dev, outer_ifname=outer)


def _make_veth(ns, outer, inner):
    """veth pair: `outer` in the root namespace (up, no address, no IPv6),
    `inner` inside ns."""
    with IPRoute() as ipr:
        ipr.link("add", ifname=outer, kind="veth", peer={"ifname": inner, "net_ns_fd": ns.name})
        _live_links.add(outer)

        def delete():
            with IPRoute() as ipr2:
                idx = ipr2.link_lookup(ifname=outer)
                if idx:
                    ipr2.link("del", index=idx[0])
            _live_links.discard(outer)
        ns.on_close(delete)
        _write_sysctl(f"/proc/sys/net/ipv6/conf/{outer}/disable_ipv6", "1")
        ipr.link("set", index=ipr.link_lookup(ifname=outer)[0], state="up")
