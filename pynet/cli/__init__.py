"""The `pynet` command: a user-space TCP/IP stack from the shell.

    pynet demo                       two stacks, an HTTP GET, the figures
    pynet netns up pyn0              a kernel peer to talk to (root)
    pynet ping --netns pyn0 198.18.0.1
"""
import argparse
import os
import signal
import sys


def cmd_netns(args):
    from pynet.cli.output import emit_json
    from pynet.cli.topology import netns_down, netns_up
    if args.action == "up":
        try:
            st = netns_up(args.name, args.cidr, args.veth)
        except (OSError, ValueError) as exc:
            print(f"pynet netns up: {exc}", file=sys.stderr)
            return 1
        if args.json:
            from dataclasses import asdict
            emit_json(asdict(st))
        else:
            link = f"veth {st.outer_ifname} <-> {st.ifname}" if st.kind == "veth" else f"TAP {st.ifname}"
            print(f"namespace {st.name}: kernel {st.kernel_addr} on {link}; "
                  f"pynet uses {st.pynet_addr} (--netns {st.name})")
    else:
        try:
            netns_down(args.name)
        except OSError as exc:
            print(f"pynet netns down: {exc}", file=sys.stderr)
            return 1
        if not args.json:
            print(f"namespace {args.name} removed")
    return 0


def build_parser():
    from pynet.cli import control, demo, http, ping, plot, trace
    from pynet.cli.topology import DEFAULT_CIDR, add_stack_options
    parser = argparse.ArgumentParser(prog="pynet", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    add_stack_options(common)

    demo.add_parser(sub)
    http.add_parsers(sub, common)

    p = sub.add_parser("netns", help="make or remove a kernel peer in a namespace (root)")
    nsub = p.add_subparsers(dest="action", required=True)
    up = nsub.add_parser("up", help="namespace NAME with the kernel end of a TAP (or veth)")
    up.add_argument("name")
    up.add_argument("--cidr", default=DEFAULT_CIDR, help=f"network (default {DEFAULT_CIDR})")
    up.add_argument("--veth", action="store_true", help="a veth pair (pynet uses AF_PACKET)")
    up.add_argument("--json", action="store_true")
    down = nsub.add_parser("down", help="remove namespace NAME and its links")
    down.add_argument("name")
    down.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_netns)

    ping.add_parser(sub, common)
    trace.add_parser(sub, common)
    control.add_parsers(sub)
    plot.add_parser(sub)
    from pynet import benchmark
    benchmark.add_parser(sub)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    # SIGTERM (timeout, kill) unwinds like ^C: namespaces, devices and
    # control sockets are removed by the same `finally` blocks. Only in this
    # process: a child forked by a library (pyroute2 does) must not run our
    # clean-ups, so it just exits.
    pid = os.getpid()

    def on_sigterm(signum, frame):
        if os.getpid() != pid:
            os._exit(128 + signum)
        sys.exit(128 + signum)
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 141


if __name__ == "__main__":
    sys.exit(main())
