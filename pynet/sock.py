"""The common socket base: Linux's struct sock and struct inet_sock.

Protocol sockets (UDP here, TCP in pynet.tcp, ping in pynet.icmp) subclass
`Sock`. Addresses and ports are host-order ints, as everywhere inside pynet;
the stdlib-shaped API (strings, tuples) is the protocol classes' surface.
"""
import errno

IP_PMTUDISC_DONT = 0    # never set DF
IP_PMTUDISC_WANT = 1    # DF when the datagram fits the path MTU (the default)
IP_PMTUDISC_DO = 2      # always DF
IP_PMTUDISC_PROBE = 3   # DF, ignore the path MTU

# sk_state values (include/net/tcp_states.h); UDP uses ESTABLISHED and CLOSE.
TCP_ESTABLISHED = 1
TCP_SYN_SENT = 2
TCP_SYN_RECV = 3
TCP_FIN_WAIT1 = 4
TCP_FIN_WAIT2 = 5
TCP_TIME_WAIT = 6
TCP_CLOSE = 7
TCP_CLOSE_WAIT = 8
TCP_LAST_ACK = 9
TCP_LISTEN = 10
TCP_CLOSING = 11

SK_MEM_MAX = 212992        # net.core.rmem_default / wmem_default
# net.core.busy_read: microseconds a blocking receive polls the devices before it sleeps
# (pynet.runner.Runner.poll_wait); off by default as in Linux, which suggests 50 where
# latency matters more than a core: the spinning reader competes with its peer for CPU.
SYSCTL_BUSY_READ = 0


class Sock:
    """struct sock + struct inet_sock: what every IPv4 socket has."""

    def __init__(self, net, protocol, type):
        self.net = net
        self.sk_protocol = protocol
        self.sk_type = type
        self.state = TCP_CLOSE
        self.saddr = 0             # inet_saddr: source used on the wire
        self.rcv_saddr = 0         # inet_rcv_saddr: the bound address
        self.daddr = 0
        self.sport = 0
        self.dport = 0
        self.bound_dev_if = 0
        self.tos = 0
        self.ttl = -1              # -1: net.ipv4.ip_default_ttl
        self.pmtudisc = IP_PMTUDISC_WANT
        self.inet_id = net.rng.getrandbits(16)
        self.sk_reuse = False
        self.sk_err = 0
        self.sk_err_soft = 0
        self.sk_rcvbuf = SK_MEM_MAX
        self.sk_sndbuf = SK_MEM_MAX
        self.sk_rmem_alloc = 0
        self.sk_drops = 0
        self.sk_dst_cache = None
        self.sk_ll_usec = SYSCTL_BUSY_READ   # SO_BUSY_POLL
        self.sk_error_report = None     # callback(sk): an error was set (sk_error_report)
        self.sk_data_ready = None       # callback(sk): data arrived (sk_data_ready)

    def sock_error(self):
        """Take the pending error (0 if none), as sock_error() does."""
        err, self.sk_err = self.sk_err, 0
        return err

    def raise_pending_error(self):
        err = self.sock_error()
        if err:
            raise OSError(err, errno.errorcode.get(err, str(err)))

    def report_error(self, err):
        """Set sk_err and wake whoever waits (sk->sk_err = err; sk_error_report(sk))."""
        self.sk_err = err
        if self.sk_error_report is not None:
            self.sk_error_report(self)


def __sk_dst_check(sk):
    """The socket's cached dst if the routing it came from is unchanged, else None (and forget it)."""
    dst = sk.sk_dst_cache
    if dst is not None and dst.check() is None:
        sk.sk_dst_cache = None
        return None
    return dst


def sk_setup_caps(sk, dst):
    """Cache dst on the socket (sk_setup_caps / sk_dst_set)."""
    sk.sk_dst_cache = dst


def sk_dst_reset(sk):
    sk.sk_dst_cache = None
