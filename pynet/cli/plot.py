"""`pynet plot CAPTURE.pcap`: a Stevens time-sequence graph of one TCP connection.

x: seconds since the connection's first packet; y: sequence number relative
to the sender's ISN. Each data segment is a vertical bar from its first to
its last byte (retransmissions in red), the receiver's cumulative ACK is a
step line, ACK + advertised window (scaled, RFC 7323) the upper line, and
SACK blocks (RFC 2018) short bars beside the ACK line.
"""
import sys
from collections import Counter

from pynet.pcapfile import read_pcap
from pynet.wire import WireError
from pynet.wire.ethernet import ETH_HLEN, ETH_P_IP
from pynet.wire.ipv4 import IPPROTO_TCP, Ipv4Packet, ip_ntoa
from pynet.wire.tcp import TCPHDR_SYN, TcpPacket, TcpRepr


def tcp_segments(path):
    """(time, saddr, daddr, TcpRepr, payload length) for every TCP segment in the capture."""
    out = []
    for ts, frame in read_pcap(path):
        if len(frame) < ETH_HLEN or int.from_bytes(frame[12:14], "big") != ETH_P_IP:
            continue
        try:
            ip = Ipv4Packet(frame[ETH_HLEN:])
            if ip.protocol != IPPROTO_TCP or ip.frag_off & 0x3FFF:
                continue
            tp = TcpPacket(ip.payload)
            th = TcpRepr.parse(tp)
        except WireError:
            continue                      # a cut-off or malformed frame: not part of the graph
        out.append((ts, ip.saddr, ip.daddr, th, len(tp.payload)))
    return out


def _seq_rel(x, isn):
    return (x - isn) & 0xFFFFFFFF


def analyse(segments):
    """The busiest connection's sender-side series, as plain lists."""
    volume = Counter()
    for _, s, d, th, n in segments:
        volume[(s, th.source, d, th.dest)] += n
    if not volume or volume.most_common(1)[0][1] == 0:
        raise ValueError("no TCP data segments in the capture")
    (s, sp, d, dp), _ = volume.most_common(1)[0]
    fwd = [(t, th, n) for t, a, b, th, n in segments if (a, th.source, b, th.dest) == (s, sp, d, dp)]
    rev = [(t, th, n) for t, a, b, th, n in segments if (a, th.source, b, th.dest) == (d, dp, s, sp)]
    syn = next((th for _, th, _ in fwd if th.flags & TCPHDR_SYN), None)
    isn = syn.seq if syn else min(th.seq for _, th, n in fwd if n)
    # the receiver's window is scaled by the shift its SYN announced, if both sides did
    rsyn = next((th for _, th, _ in rev if th.flags & TCPHDR_SYN), None)
    wscale = rsyn.wscale if (syn and rsyn and syn.wscale is not None and rsyn.wscale is not None) else 0
    t0 = min(t for t, *_ in fwd + rev)
    data, retrans, acks, wins, sacks = [], [], [], [], []
    highest = 0
    for t, th, n in fwd:
        if not n:
            continue
        start = _seq_rel(th.seq, isn)
        end = start + n
        (retrans if end <= highest or start < highest else data).append((t - t0, start, end))
        highest = max(highest, end)
    for t, th, _ in rev:
        if th.flags & TCPHDR_SYN or not th.flags & 0x10:
            continue
        ack = _seq_rel(th.ack_seq, isn)
        acks.append((t - t0, ack))
        wins.append((t - t0, ack + (th.window << wscale)))
        for left, right in th.sack:
            sacks.append((t - t0, _seq_rel(left, isn), _seq_rel(right, isn)))
    return dict(connection=f"{ip_ntoa(s)}:{sp} > {ip_ntoa(d)}:{dp}", data=data, retrans=retrans,
                acks=acks, windows=wins, sacks=sacks,
                duration=max(t for t, *_ in fwd + rev) - t0, bytes=highest)


def plot(series, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    fig, ax = plt.subplots(figsize=(10, 6), dpi=100)
    if series["data"]:
        ax.add_collection(LineCollection([[(t, a), (t, b)] for t, a, b in series["data"]],
                                         colors="tab:blue", linewidths=1.2, label="data"))
    if series["retrans"]:
        ax.add_collection(LineCollection([[(t, a), (t, b)] for t, a, b in series["retrans"]],
                                         colors="red", linewidths=2.0, label="retransmission"))
        ax.plot([t for t, a, b in series["retrans"]], [b for t, a, b in series["retrans"]],
                "rx", markersize=5)
    if series["acks"]:
        ax.step(*zip(*series["acks"]), where="post", color="tab:green", linewidth=1, label="ACK")
        ax.step(*zip(*series["windows"]), where="post", color="tab:olive", linewidth=0.8,
                linestyle="--", label="ACK + window")
    if series["sacks"]:
        ax.add_collection(LineCollection([[(t, a), (t, b)] for t, a, b in series["sacks"]],
                                         colors="tab:purple", linewidths=3, label="SACK"))
    ax.autoscale()
    # the sequence range fills the graph; a window far above it would squash the data
    top = max([b for _, _, b in series["data"] + series["retrans"]] + [a for _, a in series["acks"]])
    ax.set_ylim(-0.02 * top, min(max([w for _, w in series["windows"]] + [top]), 1.5 * top) * 1.02)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("relative sequence number (bytes)")
    ax.set_title(f"time-sequence graph {series['connection']}")
    ax.legend(loc="upper left")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, format="png")
    plt.close(fig)


def cmd_plot(args):
    from pynet.cli.output import emit_json
    from pynet.pcapfile import PcapError
    try:
        series = analyse(tcp_segments(args.capture))
    except (OSError, PcapError, ValueError) as exc:
        print(f"pynet plot: {exc}", file=sys.stderr)
        return 1
    out = args.output or args.capture.rsplit(".", 1)[0] + ".png"
    try:
        plot(series, out)
    except ImportError:
        print("pynet plot: needs matplotlib (pip install 'pynet[plot]')", file=sys.stderr)
        return 1
    summary = dict(connection=series["connection"], output=out, data_segments=len(series["data"]),
                   retransmissions=len(series["retrans"]), acks=len(series["acks"]),
                   sack_blocks=len(series["sacks"]), bytes=series["bytes"],
                   duration_s=round(series["duration"], 6))
    if args.json:
        emit_json(summary)
    else:
        print(f"{out}: {summary['connection']}, {summary['bytes']} bytes in "
              f"{summary['duration_s']:.3f} s, {summary['data_segments']} data segments, "
              f"{summary['retransmissions']} retransmissions, {summary['sack_blocks']} SACK blocks")
    return 0


def add_parser(sub):
    p = sub.add_parser("plot", help="time-sequence graph of a TCP connection in a capture (PNG)")
    p.add_argument("capture", metavar="CAPTURE.pcap")
    p.add_argument("-o", dest="output", metavar="graph.png", help="default: CAPTURE.png")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plot)
