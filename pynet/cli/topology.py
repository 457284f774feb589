"""`pynet netns up|down` and the options every stack-running command shares.

`netns up NAME` makes the kernel-peer topology of the tests, but lasting: a
namespace NAME holding the kernel end of a persistent TAP (or of a veth with
--veth) with the first address of the CIDR, recorded in a state file. Any
command given `--netns NAME` then attaches pynet to that link with the
second address and the kernel as its gateway.
"""
import argparse
import errno
import ipaddress
import json
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass

DEFAULT_CIDR = "198.18.0.0/24"


def run_dir():
    """Where state files and control sockets live: /run/pynet as root, else
    $XDG_RUNTIME_DIR/pynet or /tmp/pynet-UID. PYNET_RUN_DIR overrides."""
    d = os.environ.get("PYNET_RUN_DIR")
    if not d:
        if os.geteuid() == 0:
            d = "/run/pynet"
        elif os.environ.get("XDG_RUNTIME_DIR"):
            d = os.path.join(os.environ["XDG_RUNTIME_DIR"], "pynet")
        else:
            d = f"/tmp/pynet-{os.getuid()}"
    os.makedirs(d, mode=0o700, exist_ok=True)
    return d


@dataclass
class NetnsState:
    """What `netns up` recorded about one namespace."""
    name: str
    kind: str               # "tap" or "veth"
    ifname: str             # the kernel's interface, inside the namespace
    outer_ifname: str       # veth: pynet's end in the root namespace; tap: ""
    network: str            # the CIDR
    kernel_addr: str        # first host, on the kernel's side
    pynet_addr: str         # second host, for pynet

    @staticmethod
    def path(name):
        return os.path.join(run_dir(), f"netns-{name}.json")

    def save(self):
        tmp = self.path(self.name) + ".tmp"
        with open(tmp, "w") as f:
            json.dump(asdict(self), f, indent=1)
        os.replace(tmp, self.path(self.name))

    @classmethod
    def load(cls, name):
        try:
            with open(cls.path(name)) as f:
                return cls(**json.load(f))
        except FileNotFoundError:
            raise SystemExit(f"pynet: no namespace {name!r} recorded; make it with "
                             f"`pynet netns up {name}`") from None


def netns_up(name, cidr=DEFAULT_CIDR, veth=False):
    from pynet import netns
    net = ipaddress.ip_network(cidr)
    if net.version != 4 or net.num_addresses < 4:
        raise ValueError(f"{cidr}: need an IPv4 network with at least two hosts")
    if os.path.exists(NetnsState.path(name)) or name in _netns_list():
        raise FileExistsError(errno.EEXIST, f"namespace {name} exists")
    ns = netns.NetNamespace(name).__enter__()
    try:
        ifname = netns.unique_name()
        outer = ""
        if veth:
            outer = netns.unique_name()
            netns._make_veth(ns, outer, ifname)
        else:
            from pynet.dev.tap import TapDevice
            tap = TapDevice(ifname, persist=True, netns=name)
            tap.open()          # born inside the namespace, persistent: outlives this process
            tap.stop()
        kernel_addr, _ = ns.configure(ifname, cidr)
        state = NetnsState(name, "veth" if veth else "tap", ifname, outer, str(net),
                           kernel_addr, str(net.network_address + 2))
        state.save()
    except BaseException:
        ns.close()
        raise
    return state


def netns_down(name):
    """Remove the namespace (its interfaces go with it) and the record."""
    from pynet import netns
    state = None
    try:
        state = NetnsState.load(name)
    except SystemExit:
        if name not in _netns_list():
            raise
    netns.NetNamespace(name).close()
    if state is not None and state.outer_ifname:
        _del_link(state.outer_ifname)
    try:
        os.unlink(NetnsState.path(name))
    except FileNotFoundError:
        pass


def _netns_list():
    from pyroute2 import netns as _netns
    return _netns.listnetns()


def _del_link(ifname):
    from pyroute2 import IPRoute
    with IPRoute() as ipr:
        idx = ipr.link_lookup(ifname=ifname)
        if idx:
            ipr.link("del", index=idx[0])


# -- the shared stack options ----------------------------------------------------------
def add_stack_options(p):
    g = p.add_argument_group("stack")
    where = g.add_mutually_exclusive_group()
    where.add_argument("--netns", metavar="NAME", help="attach to the link of `pynet netns up NAME`")
    where.add_argument("--tap", metavar="IF", help="open (or create) TAP interface IF")
    where.add_argument("--packet", metavar="IF", help="AF_PACKET on existing interface IF")
    g.add_argument("--addr", metavar="CIDR", help="pynet's address with --tap/--packet")
    g.add_argument("--gw", metavar="IP", help="default gateway with --tap/--packet")
    g.add_argument("--mtu", type=int, default=1500, help="device MTU (default 1500)")
    g.add_argument("--no-offload", action="store_true",
                   help="no checksum/GSO offload on the device (plain MTU-sized frames)")
    g.add_argument("--pcap", metavar="FILE", help="record every frame to FILE")
    g.add_argument("--drop", type=_probability, default=0.0, metavar="P",
                   help="drop each frame with probability P (both directions)")
    g.add_argument("--reorder", type=_probability, default=0.0, metavar="P",
                   help="hold back each frame with probability P (both directions)")
    g.add_argument("--seed", type=int, default=None, help="seed of the stack and the faults")


def _probability(s):
    p = float(s)
    if not 0.0 <= p <= 1.0:
        raise argparse.ArgumentTypeError(f"{s} is not a probability in [0, 1]")
    return p


@dataclass
class Host:
    """A configured stack on one device."""
    stack: object
    dev: object          # what the stack holds (wrappers included)
    addr: str            # pynet's address, without prefix
    gw: str              # default gateway or None


def wrap_device(dev, args):
    """The --pcap and --drop/--reorder wrappers, faults outermost so the
    capture shows what really crossed the link."""
    if args.pcap:
        from pynet.dev.pcap import PcapWriter
        dev = PcapWriter(dev, args.pcap)
    if args.drop or args.reorder:
        from pynet.dev.fault import FaultInjector
        dev = FaultInjector(dev, seed=args.seed or 0, drop=args.drop, reorder=args.reorder)
    return dev


def _device(args):
    """(device, cidr, gateway) from --netns / --tap / --packet."""
    offload = not args.no_offload
    if args.netns:
        st = NetnsState.load(args.netns)
        plen = ipaddress.ip_network(st.network).prefixlen
        if st.kind == "tap":
            from pynet.dev.tap import TapDevice
            dev = TapDevice(st.ifname, persist=True, netns=st.name, offload=offload, mtu=args.mtu)
        else:
            from pynet.dev.packet import PacketDevice
            from pynet.netns import TX_OFFLOADS, run_in_netns, set_features
            # without a vnet header pynet takes only MSS frames with finished checksums:
            # the kernel's end must not send it 64 KB GSO frames (kernel_peer does the same)
            run_in_netns(st.name, set_features, st.ifname, dict.fromkeys(TX_OFFLOADS, offload))
            dev = PacketDevice(st.outer_ifname, vnet_hdr=offload, mtu=args.mtu)
        return dev, f"{st.pynet_addr}/{plen}", args.gw or st.kernel_addr
    if not args.addr:
        raise SystemExit("pynet: give --netns NAME (see `pynet netns up`), or --tap IF / "
                         "--packet IF with --addr CIDR")
    if args.tap:
        from pynet.dev.tap import TapDevice
        dev = TapDevice(args.tap, offload=offload, mtu=args.mtu)
    elif args.packet:
        from pynet.dev.packet import PacketDevice
        dev = PacketDevice(args.packet, vnet_hdr=offload, mtu=args.mtu)
    else:
        raise SystemExit("pynet: --addr needs --tap IF or --packet IF")
    return dev, args.addr, args.gw


@contextmanager
def open_host(args):
    """The Stack the options describe, TCP registered, devices stopped on exit."""
    from pynet.stack import Stack
    from pynet.tcp.tcp_ipv4 import tcp_v4_init
    lower, cidr, gw = _device(args)
    dev = wrap_device(lower, args)
    stack = Stack(seed=args.seed)
    try:
        stack.add_device(dev)
    except OSError as exc:        # no such interface, no privilege for TAP / AF_PACKET
        raise SystemExit(f"pynet: cannot open {lower.name or 'the device'}: {exc}") from None
    try:
        stack.add_address(dev, cidr)
        if gw:
            stack.add_route("0.0.0.0/0", via=gw)
        tcp_v4_init(stack)
        yield Host(stack, dev, cidr.partition("/")[0], gw)
    finally:
        stack.remove_device(dev)
        dev.stop()


def privileged():
    """Whether this process can make namespaces and TAPs (root with /dev/net/tun)."""
    return os.geteuid() == 0 and os.path.exists("/dev/net/tun")
