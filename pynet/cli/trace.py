"""`pynet trace connect HOST:PORT`: the first SYN's way down and the SYN-ACK's
way back up, as a function graph with the skb's geometry at each step.

Two sources make the graph, as ftrace has two: the IPv4 path's static trace
points (pynet.skbtrace.hook, placed by the IP layer) and, for the functions
without one (TCP's, the driver's start_xmit), probes: while tracing, the
function is replaced in the module namespaces that bind it by a wrapper that
records its entry and nesting — what a kprobe does — and restored after.
"""
import sys
import time

from pynet import skbtrace
from pynet.skbuff import SKB
from pynet.wire.ethernet import ETH_HLEN, ETH_P_ARP, ETH_P_IP
from pynet.wire.ipv4 import IPPROTO_TCP, ip_aton, ip_ntoa

# (module, function) probed because no static trace point covers them
PROBES = (
    ("pynet.tcp.tcp_output", "tcp_connect"),
    ("pynet.tcp.tcp_output", "tcp_transmit_skb"),
    ("pynet.tcp.tcp_output", "tcp_send_ack"),
    ("pynet.tcp.tcp_ipv4", "tcp_v4_rcv"),
    ("pynet.tcp.tcp_input", "tcp_rcv_state_process"),
    ("pynet.tcp.tcp_input", "tcp_rcv_synsent_state_process"),
)
# A packet arriving from the device starts a new chain of calls at the top.
CHAIN_ROOTS = {"netif_receive_skb"}


def describe_frame(frame):
    """'ARP who-has 198.18.0.1' / 'TCP 198.18.0.2:40000 > 198.18.0.1:80 SYN' for a frame."""
    from pynet.wire.tcp import flags_str
    if len(frame) < ETH_HLEN:
        return ""
    proto = int.from_bytes(frame[12:14], "big")
    if proto == ETH_P_ARP and len(frame) >= ETH_HLEN + 28:
        op = int.from_bytes(frame[ETH_HLEN + 6:ETH_HLEN + 8], "big")
        tpa = ip_ntoa(int.from_bytes(frame[ETH_HLEN + 24:ETH_HLEN + 28], "big"))
        spa = ip_ntoa(int.from_bytes(frame[ETH_HLEN + 14:ETH_HLEN + 18], "big"))
        return f"ARP who-has {tpa}" if op == 1 else f"ARP reply {spa} is-at"
    if proto == ETH_P_IP and len(frame) >= ETH_HLEN + 20:
        ip = frame[ETH_HLEN:]
        ihl = (ip[0] & 15) * 4
        src, dst = ip_ntoa(int.from_bytes(ip[12:16], "big")), ip_ntoa(int.from_bytes(ip[16:20], "big"))
        if ip[9] == IPPROTO_TCP and len(ip) >= ihl + 14:
            sport, dport = int.from_bytes(ip[ihl:ihl + 2], "big"), int.from_bytes(ip[ihl + 2:ihl + 4], "big")
            flags = ((ip[ihl + 12] & 1) << 8) | ip[ihl + 13]
            return f"TCP {src}:{sport} > {dst}:{dport} {flags_str(flags)}"
        return f"IPv4 {src} > {dst} proto {ip[9]}"
    return f"ethertype {proto:#06x}"


class GraphTracer:
    """Records (depth, function, geometry, note) from trace points and probes."""

    def __init__(self, limit=2000):
        self.events = []
        self.limit = limit
        self.dropped = 0
        self._frames = [[0, 0]]       # per open probe: [base indent, chain length]
        self._restore = []
        self._previous = None

    def _record(self, function, skb, note=""):
        frame = self._frames[-1]
        indent = frame[0] + frame[1]
        if len(self.events) >= self.limit:
            self.dropped += 1
        else:
            geo = skb.geometry() if isinstance(skb, SKB) else None
            self.events.append(dict(depth=indent, function=function, note=note,
                                    head=geo[0] if geo else None, data=geo[1] if geo else None,
                                    tail=geo[2] if geo else None, end=geo[3] if geo else None))
        return indent

    def __call__(self, function, skb):          # the static trace points
        if function in CHAIN_ROOTS:
            self._frames = [[0, 0]]
            note = describe_frame(skb.tobytes())
        else:
            note = ""
        self._record(function, skb, note)
        self._frames[-1][1] += 1

    def probe(self, name, fn, note=None):
        def wrapper(*args, **kwargs):
            skb = next((a for a in args if isinstance(a, SKB)), None)
            indent = self._record(name, skb, note(skb) if note and skb is not None else "")
            self._frames.append([indent + 1, 0])
            try:
                return fn(*args, **kwargs)
            finally:
                self._frames.pop()
        wrapper.__wrapped__ = fn
        return wrapper

    def attach(self, module_name, name):
        """Probe `name` wherever a pynet module binds that function."""
        target = getattr(sys.modules[module_name], name)
        wrapper = self.probe(name, target)
        for mod in [m for k, m in list(sys.modules.items()) if k.startswith("pynet") and m]:
            if getattr(mod, name, None) is target:
                setattr(mod, name, wrapper)
                self._restore.append((mod, name, target))

    def attach_device(self, dev):
        """start_xmit of the device the stack holds (instance attribute, removed after)."""
        dev.ndo_start_xmit = self.probe("start_xmit", dev.ndo_start_xmit,
                                        note=lambda skb: describe_frame(skb.tobytes()))
        self._restore.append((dev, "ndo_start_xmit", None))

    def __enter__(self):
        import importlib
        for module_name, name in PROBES:
            importlib.import_module(module_name)
            self.attach(module_name, name)
        self._previous = skbtrace.hook
        skbtrace.hook = self
        return self

    def __exit__(self, *exc):
        skbtrace.hook = self._previous
        for obj, name, original in reversed(self._restore):
            if original is None:
                delattr(obj, name)
            else:
                setattr(obj, name, original)
        self._restore.clear()
        return False

    def functions(self):
        return [e["function"] for e in self.events]


def render(events):
    rows = []
    for e in events:
        geo = ("" if e["head"] is None else
               f"{e['head']:>4} {e['data']:>5} {e['tail']:>5} {e['end']:>5} {e['data'] - e['head']:>8}")
        rows.append((("  " * e["depth"]) + e["function"] + "()", geo, e["note"]))
    width = max([len(r[0]) for r in rows] + [8])
    print(f"{'function':<{width}}  head  data  tail   end headroom  packet")
    for name, geo, note in rows:
        print(f"{name:<{width}}  {geo:<29}  {note}".rstrip())


def cmd_trace(args):
    from pynet.cli.output import emit_json
    from pynet.cli.topology import open_host
    from pynet.tcp.tcp import TcpState
    from pynet.tcp.tcp_ipv4 import tcp_v4_connect, tcp_v4_init_sock
    from pynet.tcp.tcp_user import tcp_close
    host_s, _, port_s = args.target.rpartition(":")
    try:
        daddr, port = ip_aton(host_s), int(port_s)
    except (ValueError, OSError):
        print(f"pynet trace: {args.target!r} is not IPv4-ADDRESS:PORT", file=sys.stderr)
        return 2
    with open_host(args) as host:
        stack = host.stack
        now = time.monotonic()
        stack.poll(now)
        sk = tcp_v4_init_sock(stack)
        with GraphTracer() as tracer:
            tracer.attach_device(host.dev)
            try:
                tcp_v4_connect(sk, daddr, port, now)
            except OSError as exc:
                print(f"pynet trace: connect: {exc}", file=sys.stderr)
                return 1
            # the handshake's last ACK leaves while the SYN-ACK is processed
            stack.run_until(lambda: sk.state != TcpState.SYN_SENT, timeout=args.timeout)
            state = sk.state
        tcp_close(sk, time.monotonic(), linger0=True)     # a RST: leave nothing open at the peer
        stack.poll(time.monotonic())
    ok = state == TcpState.ESTABLISHED
    if args.json:
        emit_json(dict(target=args.target, established=ok, state=state.name,
                       dropped_events=tracer.dropped, events=tracer.events))
    else:
        render(tracer.events)
        print(f"\nconnection {'established' if ok else 'not established: ' + state.name}; "
              f"{len(tracer.events)} steps" + (f", {tracer.dropped} not recorded" if tracer.dropped else ""))
    return 0 if ok else 1


def add_parser(sub, common):
    p = sub.add_parser("trace", help="trace a packet's path through the stack")
    tsub = p.add_subparsers(dest="what", required=True)
    c = tsub.add_parser("connect", parents=[common],
                        help="the SYN's way down and the SYN-ACK's way up, as a function graph")
    c.add_argument("target", metavar="HOST:PORT")
    c.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the SYN-ACK")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_trace)
