"""Where an skb went: an opt-in record of the functions it passed through.

Every step of the IPv4 path starts with

    if skbtrace.hook is not None: skbtrace.hook("ip_output", skb)

so with tracing off (the default) the cost is one module attribute test.
`Tracer` is the usual hook: it keeps (function, (head, data, tail, end)) per
step, the geometry as `skb.geometry()` reports it at that moment.

    with Tracer() as t:
        sock.sendto(b"x", ("198.18.0.1", 9))
        stack.poll(now)
    t.functions()   # ['udp_sendmsg', 'ip_build_and_send_pkt', 'ip_local_out', ...]
"""

hook = None


class Tracer:
    """Records (function, geometry) for every traced step while installed."""

    def __init__(self, limit=10000):
        self.events = []
        self.limit = limit           # bounded like every other queue: later steps are dropped
        self.dropped = 0
        self._previous = None

    def __call__(self, function, skb):
        if len(self.events) >= self.limit:
            self.dropped += 1
            return
        self.events.append((function, skb.geometry()))

    def functions(self):
        return [f for f, _ in self.events]

    def __enter__(self):
        global hook
        self._previous = hook
        hook = self
        return self

    def __exit__(self, *exc):
        global hook
        hook = self._previous
        return False
