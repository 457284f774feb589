"""The `pynet` command."""
import argparse
import sys


def cmd_demo(args):
    """Show the compiled core at work: an skb built, cloned and taken apart."""
    from pynet.skbuff import SKB

    skb = SKB(2048)
    skb.reserve(128)
    skb.put_data(b"GET / HTTP/1.1\r\n\r\n")
    print(f"payload       {skb!r}")
    skb.push_data(b"\x00" * 20)
    print(f"+ TCP header  {skb!r}")
    skb.push_data(b"\x45" + b"\x00" * 19)
    print(f"+ IP header   {skb!r}")
    clone = skb.clone()
    print(f"clone shares the buffer: cloned={clone.cloned}")
    clone.pull(40)
    print(f"clone pulled  {clone!r} -> {clone.tobytes()!r}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="pynet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="show pynet working")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
