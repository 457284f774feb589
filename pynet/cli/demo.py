"""`pynet demo`: show pynet working. Until the socket API lands (issue 7)
this is the compiled core at work; then two stacks and an HTTP GET."""


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


def add_parser(sub):
    p = sub.add_parser("demo", help="show pynet working")
    p.set_defaults(func=cmd_demo)
