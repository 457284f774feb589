"""The tables Linux users know, for a pynet stack: `ss -ti`, `ip neigh`,
`ip route`, `nstat`. Each function takes a Stack and returns plain data
(lists of dicts), which the commands print and the control socket sends.

    from pynet.cli.views import ss, neigh, route, nstat
    for row in ss(stack): print(row["state"], row["local"], row["info"]["rtt_ms"])
"""
from pynet.wire.ipv4 import ip_ntoa

_SS_STATE = {"ESTABLISHED": "ESTAB", "SYN_SENT": "SYN-SENT", "SYN_RECV": "SYN-RECV",
             "FIN_WAIT1": "FIN-WAIT-1", "FIN_WAIT2": "FIN-WAIT-2", "TIME_WAIT": "TIME-WAIT",
             "CLOSE": "UNCONN", "CLOSE_WAIT": "CLOSE-WAIT", "LAST_ACK": "LAST-ACK",
             "LISTEN": "LISTEN", "CLOSING": "CLOSING"}
_CA_STATE = ("open", "disorder", "cwr", "recovery", "loss")


def tcp_info(sk):
    """The fields of Linux's struct tcp_info that pynet keeps (times in ms)."""
    rx = sk.rx_opt
    ms = lambda s: None if s is None else round(s * 1000, 3)   # noqa: E731
    return dict(
        state=sk.state.name, ca_state=_CA_STATE[sk.ca_state] if sk.ca_state < 5 else sk.ca_state,
        retransmits=sk.retransmits, backoff=sk.backoff, probes=sk.probes_out,
        ts=bool(rx.tstamp_ok), sack=bool(rx.sack_ok), wscale_ok=bool(rx.wscale_ok),
        snd_wscale=rx.snd_wscale if rx.wscale_ok else None,
        rcv_wscale=rx.rcv_wscale if rx.wscale_ok else None,
        rto_ms=ms(sk.rto), rtt_ms=ms(sk.srtt), rttvar_ms=ms(sk.rttvar) if sk.srtt else None,
        snd_mss=sk.mss_cache, rcv_mss=sk.rcv_mss, advmss=sk.advmss, pmtu=sk.pmtu,
        unacked=sk.packets_out, sacked=sk.sacked_out, lost=sk.lost_out, retrans=sk.retrans_out,
        snd_cwnd=sk.snd_cwnd,
        snd_ssthresh=None if sk.snd_ssthresh >= 0x7FFFFFFF else sk.snd_ssthresh,
        reordering=sk.reordering, snd_wnd=sk.snd_wnd, rcv_wnd=sk.rcv_wnd,
        bytes_acked=(sk.snd_una - sk.iss - 1) & 0xFFFFFFFF if sk.snd_una else 0,
        bytes_received=(sk.rcv_nxt - sk.irs - 1) & 0xFFFFFFFF if sk.rcv_nxt else 0,
        segs_in=sk.stats["InSegs"], segs_out=sk.stats["OutSegs"],
        total_retrans=sk.stats["RetransSegs"], ofo_drops=sk.ofo_drops,
        congestion=getattr(sk.ca_ops, "name", type(sk.ca_ops).__name__),
        # Fast Open: tcpi_options' TCPI_OPT_SYN_DATA, tcpi_fastopen_client_fail
        syn_data_acked=sk.syn_data_acked, fastopen_client_fail=sk.fastopen_client_fail,
    )


def _endpoint(addr, port):
    return f"{ip_ntoa(addr) if addr else '0.0.0.0'}:{port if port else '*'}"


def ss(stack):
    """Every TCP socket of the stack: listeners, then connections (ss -tani)."""
    h = getattr(stack, "tcp_hashinfo", None)
    if h is None:
        return []
    socks = list(h.lhash.values()) + list(h.ehash.values())
    rows = []
    for sk in socks:
        listening = sk.state.name == "LISTEN"
        if sk.state.name == "TIME_WAIT":
            # a TIME_WAIT sock keeps no queues and no tcp_info (ss prints none)
            rows.append(dict(state="TIME-WAIT", recv_q=0, send_q=0,
                             local=_endpoint(sk.saddr, sk.sport),
                             peer=_endpoint(sk.daddr, sk.dport), info=None))
            continue
        rows.append(dict(
            state=_SS_STATE.get(sk.state.name, sk.state.name),
            recv_q=len(sk.accept_queue) if listening else sk.sk_rmem_alloc,
            send_q=sk.backlog if listening else (sk.write_seq - sk.snd_una) & 0xFFFFFFFF,
            local=_endpoint(sk.saddr, sk.sport),
            peer=_endpoint(sk.daddr, sk.dport) if not listening else "0.0.0.0:*",
            info=None if listening else tcp_info(sk)))
    return rows


def neigh(stack):
    """The ARP table (ip neigh)."""
    rows = []
    for n in stack.arp_tbl.entries.values():
        rows.append(dict(dst=ip_ntoa(n.primary_key), dev=n.dev.name,
                         lladdr=n.ha.hex(":") if n.ha else None, state=n.state_name))
    return sorted(rows, key=lambda r: r["dst"])


def route(stack):
    """The main table (ip route): prefix, gateway, device, source, metric."""
    rows = []
    for r in stack.fib.main:
        rows.append(dict(dst="default" if r.plen == 0 else f"{ip_ntoa(r.dst)}/{r.plen}",
                         gateway=ip_ntoa(r.gw) if r.gw else None, dev=r.dev.name if r.dev else None,
                         scope="link" if not r.gw and r.plen else None,
                         prefsrc=ip_ntoa(r.prefsrc) if r.prefsrc else None,
                         metric=r.metric or None, mtu=r.mtu or None))
    return rows


def nstat(stack):
    """SNMP counters as nstat names them (IpInReceives, IcmpOutEchos, ...),
    plus the device counters as LinkRxPackets and the like."""
    counters = {}
    for group, fields in stack.mib.as_dict().items():
        for name, value in fields.items():
            counters[group + name] = value
    h = getattr(stack, "tcp_hashinfo", None)
    if h is not None:
        # TCP counts its segments in its own tables; fold them in under the MIB names
        for name, value in h.stats.items():
            key = "Tcp" + name
            if key in counters:
                counters[key] = max(counters[key], value)
    for dev in stack.devices.values():
        for name, value in dev.stats.as_dict().items():
            counters[f"Link_{dev.name}_{name}"] = value
    return counters


def info_line(i):
    """tcp_info as `ss -ti` prints it."""
    parts = [i["congestion"]]
    if i["ts"]:
        parts.append("ts")
    if i["sack"]:
        parts.append("sack")
    if i["wscale_ok"]:
        parts.append(f"wscale:{i['snd_wscale']},{i['rcv_wscale']}")
    parts.append(f"rto:{i['rto_ms']:g}")
    if i["rtt_ms"] is not None:
        parts.append(f"rtt:{i['rtt_ms']:g}/{i['rttvar_ms']:g}")
    parts += [f"mss:{i['snd_mss']}", f"pmtu:{i['pmtu']}", f"rcvmss:{i['rcv_mss']}",
              f"advmss:{i['advmss']}", f"cwnd:{i['snd_cwnd']}"]
    if i["snd_ssthresh"] is not None:
        parts.append(f"ssthresh:{i['snd_ssthresh']}")
    parts += [f"bytes_acked:{i['bytes_acked']}", f"bytes_received:{i['bytes_received']}",
              f"segs_out:{i['segs_out']}", f"segs_in:{i['segs_in']}",
              f"unacked:{i['unacked']}", f"retrans:{i['retrans']}/{i['total_retrans']}",
              f"snd_wnd:{i['snd_wnd']}", f"rcv_wnd:{i['rcv_wnd']}"]
    return " ".join(parts)


def render(view, data, json_out):
    """Print one view's data as ss / ip / nstat would (or as JSON)."""
    from pynet.cli.output import emit_json, print_table
    if json_out:
        emit_json(data)
        return
    if view == "ss":
        print_table(["State", "Recv-Q", "Send-Q", "Local Address:Port", "Peer Address:Port", "Info"],
                    [[r["state"], r["recv_q"], r["send_q"], r["local"], r["peer"],
                      info_line(r["info"]) if r["info"] else ""] for r in data])
    elif view == "neigh":
        for r in data:
            ll = f"lladdr {r['lladdr']} " if r["lladdr"] else ""
            print(f"{r['dst']} dev {r['dev']} {ll}{r['state']}")
    elif view == "route":
        for r in data:
            line = r["dst"]
            if r["gateway"]:
                line += f" via {r['gateway']}"
            line += f" dev {r['dev']}"
            if r["scope"]:
                line += f" proto kernel scope {r['scope']}"
            if r["prefsrc"]:
                line += f" src {r['prefsrc']}"
            if r["metric"]:
                line += f" metric {r['metric']}"
            if r["mtu"]:
                line += f" mtu {r['mtu']}"
            print(line)
    elif view == "nstat":
        print_table(["#counter", "value"], [[k, v] for k, v in data.items() if v])
