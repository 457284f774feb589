"""`pynet ping`: ICMP echo through pynet, printed as iputils ping prints it.

Exit status as iputils: 0 when at least one reply came, 1 when none did,
2 on other errors.
"""
import math
import os
import time

from pynet.wire.ipv4 import ip_aton, ip_ntoa


def cmd_ping(args):
    from pynet.cli.control import ControlServer
    from pynet.cli.output import emit_json
    from pynet.cli.topology import open_host
    try:
        daddr = ip_ntoa(ip_aton(args.host))
    except (ValueError, OSError):
        print(f"ping: {args.host}: Name or service not known")
        return 2
    if args.count is not None and args.count < 1:
        print(f"ping: invalid argument: '{args.count}': out of range: 1 <= value")
        return 2
    payload = bytes((8 + i) & 0xFF for i in range(args.size))
    with open_host(args) as host, ControlServer(host.stack, "ping") as ctl:
        stack = host.stack
        ping = stack.ping(daddr, payload=payload)
        ping.seq = 1               # iputils numbers from 1
        if not args.json:
            print(f"PING {daddr} ({daddr}) {args.size}({args.size + 28}) bytes of data.")
        start = time.monotonic()
        next_send = start
        linger_until = None
        sent = shown = errors = 0
        try:
            while True:
                now = time.monotonic()
                more = args.count is None or sent < args.count
                if more and now >= next_send:
                    stack.poll(now)
                    try:
                        ping.send(now)
                    except OSError as exc:          # no route, unresolved neighbour
                        errors += 1
                        if not args.json:
                            print(f"From {host.addr} icmp_seq={ping.seq - 1} {exc.strerror or exc}")
                    sent += 1
                    next_send += args.interval
                    more = args.count is None or sent < args.count
                if more:
                    wait_until = next_send
                else:
                    if not ping.sent:               # every request answered
                        break
                    if linger_until is None:
                        linger_until = now + args.timeout
                    if now >= linger_until:
                        break
                    wait_until = linger_until
                stack.run_until(lambda: len(ping.replies) > shown or ping.sk_err or ctl.serve(),
                                timeout=max(0.0, wait_until - time.monotonic()))
                while shown < len(ping.replies):
                    seq, rtt, ttl = ping.replies[shown]
                    shown += 1
                    if not args.json:
                        print(f"{args.size + 8} bytes from {daddr}: icmp_seq={seq} ttl={ttl} "
                              f"time={_ms(rtt)} ms", flush=True)
                err = ping.sock_error()
                if err:                             # an ICMP error for one of ours
                    errors += 1
                    if not args.json:
                        print(f"From {daddr} icmp_seq={ping.seq - 1} {os.strerror(err)}", flush=True)
        except KeyboardInterrupt:
            pass
        elapsed = time.monotonic() - start
        ping.close()
    rtts = [r[1] * 1000 for r in ping.replies]
    received = len(rtts)
    loss = 100.0 * (sent - received) / sent if sent else 0.0
    summary = dict(host=daddr, transmitted=sent, received=received, errors=errors,
                   duplicates=ping.duplicates, loss_percent=round(loss, 1), time_ms=int(elapsed * 1000))
    if rtts:
        avg = sum(rtts) / received
        mdev = math.sqrt(max(sum(r * r for r in rtts) / received - avg * avg, 0.0))
        summary.update(rtt_min_ms=min(rtts), rtt_avg_ms=avg, rtt_max_ms=max(rtts), rtt_mdev_ms=mdev)
    if args.json:
        emit_json(summary)
    else:
        extra = f"+{errors} errors, " if errors else ""
        dup = f"+{ping.duplicates} duplicates, " if ping.duplicates else ""
        print(f"\n--- {daddr} ping statistics ---")
        print(f"{sent} packets transmitted, {received} received, {dup}{extra}{loss:.0f}% packet loss, "
              f"time {summary['time_ms']}ms")
        if rtts:
            print(f"rtt min/avg/max/mdev = {summary['rtt_min_ms']:.3f}/{avg:.3f}/"
                  f"{summary['rtt_max_ms']:.3f}/{mdev:.3f} ms")
    return 0 if received else 1


def add_parser(sub, common):
    p = sub.add_parser("ping", parents=[common], help="ICMP echo, like iputils ping")
    p.add_argument("host")
    p.add_argument("-c", dest="count", type=int, default=None, help="stop after N requests")
    p.add_argument("-s", dest="size", type=int, default=56, help="payload bytes (default 56)")
    p.add_argument("-i", dest="interval", type=float, default=1.0, help="seconds between requests")
    p.add_argument("-W", dest="timeout", type=float, default=10.0,
                   help="seconds to wait for replies after the last request (default 10)")
    p.add_argument("--json", action="store_true", help="the summary as JSON")
    p.set_defaults(func=cmd_ping)


def _ms(seconds):
    """A round-trip time as iputils prints it: three decimals below 1 ms, fewer above,
    whole milliseconds from 100 ms (never an exponent)."""
    ms = seconds * 1000
    return f"{ms:.3f}" if ms < 1 else f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 100 \
        else f"{ms:.0f}"

